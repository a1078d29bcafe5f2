"""The ``audio_folder`` source and the audio Beam stages, through a real ingest step."""

from __future__ import annotations

import json
import shutil
import textwrap
from pathlib import Path

import numpy as np
import pytest
from data_paths import SPEECH_COMMANDS as COMMANDS
from data_paths import SPOKEN_DIGITS as FSDD

import beamline
from beamline.examples import feature_spec, iter_examples, rejected_records
from beamline_plugins.audio.wav import encode_wav, read_wav

INGEST = """\
name: audio_ingest
steps:
  ingest:
    component: audio_folder
    root: clips
    group_pattern: "^[^_]+_([^_]+)_"
    path_feature: true
    transforms:
      - {component: decode_audio}
      - {component: to_mono}
      - {component: resample, rate: 8000}
      - {component: fix_length, seconds: 0.5, align: center}
    split: {train: 0.6, eval: 0.2, test: 0.2}
"""


def _copy(src: Path, dest: Path, count: int) -> list[Path]:
    dest.mkdir(parents=True, exist_ok=True)
    files = sorted(src.glob("*.wav"))[:count]
    for file in files:
        shutil.copy(file, dest / file.name)
    return [dest / f.name for f in files]


@pytest.fixture(scope="module")
def ingested(tmp_path_factory: pytest.TempPathFactory) -> beamline.Run:
    """One ingest of real FSDD (8 kHz) and Speech Commands (16 kHz) clips plus bad files."""
    root = tmp_path_factory.mktemp("audio_ingest")
    clips = root / "clips"
    for digit in ("3", "8"):
        _copy(FSDD / digit, clips / digit, 6)
    _copy(COMMANDS / "yes", clips / "yes", 4)
    one = read_wav((FSDD / "3" / "3_george_0.wav").read_bytes()).samples[:, 0]
    t = np.arange(24000) / 48000
    stereo = np.stack([0.3 * np.sin(2 * np.pi * 440 * t), 0.1 * np.sin(2 * np.pi * 440 * t)], 1)
    (clips / "yes" / "tone_synth_0.wav").write_bytes(encode_wav(stereo, 48000, bits=24))
    (clips / "8" / "8_float_0.wav").write_bytes(encode_wav(one, 8000, bits=32, fmt="float"))
    (clips / "3" / "3_empty_0.wav").write_bytes(b"")
    (clips / "3" / "3_notes_0.wav").write_text("this is a text file, not audio\n")
    cut = (FSDD / "8" / "8_jackson_0.wav").read_bytes()
    (clips / "8" / "8_cut_0.wav").write_bytes(cut[: len(cut) // 2])
    mulaw = bytearray((FSDD / "8" / "8_lucas_0.wav").read_bytes())
    mulaw[20:22] = (7).to_bytes(2, "little")  # format tag 7: mu-law, a compressed encoding
    (clips / "8" / "8_mulaw_0.wav").write_bytes(bytes(mulaw))
    (clips / "yes" / "readme.txt").write_text("not listed: wrong extension")
    path = root / "ingest.yaml"
    path.write_text(textwrap.dedent(INGEST), encoding="utf-8")
    result = beamline.run(path, runs_dir=root / "runs")
    return result.run


@pytest.mark.slow
def test_read_equals_written_plus_rejected_with_a_reason_per_bad_file(ingested) -> None:
    step = ingested.artifact("ingest")
    counts = step.meta["counts"]
    assert counts["read"] == 6 + 6 + 4 + 2 + 4  # readme.txt is not listed
    assert counts["read"] == counts["written"] + counts["rejected"]
    assert counts["rejected"] == 4
    reasons = {Path(r["source"]).name: (r["stage"], r["reason"]) for r in rejected_records(step)}
    assert reasons["3_empty_0.wav"] == ("decode_audio", "empty file (0 bytes)")
    assert reasons["3_notes_0.wav"] == ("decode_audio", "not a WAV file: no RIFF/WAVE header")
    stage, reason = reasons["8_cut_0.wav"]
    assert stage == "decode_audio" and reason.startswith("truncated WAV: the data chunk declares")
    stage, reason = reasons["8_mulaw_0.wav"]
    assert reason.startswith("unsupported WAV encoding: mu-law (format tag 7)")


@pytest.mark.slow
def test_every_written_clip_is_pcm16_mono_8khz_of_the_fixed_length(ingested) -> None:
    step = ingested.artifact("ingest")
    spec = feature_spec(step)
    audio = spec["features"]["audio"]
    assert audio["modality"] == "audio" and audio["dtype"] == "bytes"
    assert (audio["sample_rate"], audio["samples"], audio["channels"]) == (8000, 4000, 1)
    assert (audio["format"], audio["encoding"], audio["align"]) == ("wav", "pcm16", "center")
    assert spec["features"]["group"]["modality"] == "id"
    assert spec["label"] == "label" and spec["classes"] == ["3", "8", "yes"]
    seen = {}
    for split in spec["splits"]:
        for example in iter_examples(step, split):
            wav = read_wav(example["audio"][0])
            assert (wav.sample_rate, wav.channels, wav.frames, wav.bits) == (8000, 1, 4000, 16)
            seen[example["path"][0].decode()] = (example["group"][0].decode(), wav)
    assert len(seen) == 18
    assert seen["3/3_george_0.wav"][0] == "george"
    # the 48 kHz 24-bit stereo tone: averaged to 0.2 amplitude, resampled, still 440 Hz
    group, tone = seen["yes/tone_synth_0.wav"]
    assert group == "synth"
    x = tone.samples[:, 0]
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    assert np.fft.rfftfreq(len(x), 1 / 8000)[spectrum.argmax()] == pytest.approx(440, abs=2)
    assert np.abs(x[100:-100]).max() == pytest.approx(0.2, abs=0.002)
    # a 16 kHz Speech Commands clip was resampled (not just relabelled): 0.5 s = 4000 samples
    yes = [name for name in seen if name.startswith("yes/") and "synth" not in name]
    assert len(yes) == 4


@pytest.mark.slow
def test_a_16_bit_8khz_clip_passes_unchanged_apart_from_the_length(ingested) -> None:
    step = ingested.artifact("ingest")
    original = read_wav((FSDD / "3" / "3_george_0.wav").read_bytes()).samples[:, 0]
    for split in feature_spec(step)["splits"]:
        for example in iter_examples(step, split):
            if example["path"][0] == b"3/3_george_0.wav":
                stored = read_wav(example["audio"][0]).samples[:, 0]
                n = len(original)
                if n >= 4000:
                    start = (n - 4000) // 2
                    np.testing.assert_array_equal(stored, original[start : start + 4000])
                else:
                    before = (4000 - n) // 2
                    np.testing.assert_array_equal(stored[before : before + n], original)
                return
    raise AssertionError("3/3_george_0.wav was not written")


def test_a_manifest_lists_clips_and_names_the_group_column(tmp_path) -> None:
    clips = tmp_path / "clips"
    files = _copy(FSDD / "5", clips / "five", 3)
    rows = ["path,label,speaker"] + [f"five/{f.name},5,{f.name.split('_')[1]}" for f in files]
    rows += ["five/missing.wav,5,nobody", "five/x.wav,5"]
    (clips / "list.csv").write_text("\n".join(rows) + "\n")
    path = tmp_path / "m.yaml"
    path.write_text(
        "name: manifest\nsteps:\n  ingest:\n    component: audio_folder\n    root: clips\n"
        "    manifest: list.csv\n    group_column: speaker\n"
        "    transforms: [{component: decode_audio}]\n    split: {train: 1.0, eval: 0, test: 0}\n"
    )
    run = beamline.run(path, runs_dir=tmp_path / "runs").run
    step = run.artifact("ingest")
    assert step.meta["counts"]["read"] == 5 and step.meta["counts"]["written"] == 3
    reasons = sorted(r["reason"] for r in rejected_records(step))
    assert reasons[0] == "expected 3 fields, got 2"
    assert reasons[1].startswith("listed file not found")
    groups = {e["group"][0] for e in iter_examples(step, "train")}
    assert groups == {files[0].name.split("_")[1].encode()}
    meta = json.loads((step.path / "meta.json").read_text())
    assert meta["counts"]["rejected"] == 2
