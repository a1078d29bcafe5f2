"""spoken_numbers.yaml on a slice of its corpus: ingest with a bad row, a tiny CTC fit that
learns, WER/CER with the worst clips, beam search against greedy, the export and predict; the
fit killed (SIGKILL) and resumed ends with the uninterrupted weights, and the export of the same
weights is the same bytes."""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from data_paths import DATA, PIPELINES

import beamline
from beamline.examples import rejected_records

CORPUS = DATA / "spoken_numbers"
PER_SPLIT = {"train": 40, "eval": 8, "test": 8}
#: A tiny model and a short fit with dropout, shuffling and augmentation (as shipped).
OVERRIDES = {
    "steps.train.model.conv_filters": [32],
    "steps.train.model.conv_strides": [4],
    "steps.train.model.encoder": "transformer",
    "steps.train.model.transformer_layers": 1,
    "steps.train.model.heads": 2,
    "steps.train.model.ff_units": 64,
    "steps.train.input.augment": ["speed", "noise", "spec_mask"],
    "steps.train.epochs": 6,
    "steps.train.batch_size": 8,
    "steps.train.learning_rate": 0.003,
    "steps.train.early_stopping": 0,
    "steps.train.average_last": 3,
    "steps.evaluate.thresholds": {},
    "steps.evaluate.worst": 3,
}


@pytest.fixture(scope="module")
def speech_run(tmp_path_factory: pytest.TempPathFactory) -> beamline.Run:
    """The pipeline on 40/8/8 sequences, a tiny model and 6 epochs (every step)."""
    root = tmp_path_factory.mktemp("spoken_numbers")
    shutil.copy(PIPELINES / "spoken_numbers.yaml", root)
    data = root / "data" / "spoken_numbers"
    with (CORPUS / "manifest.csv").open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    kept = [
        r for split, n in PER_SPLIT.items() for r in [r for r in rows if r["split"] == split][:n]
    ]
    for row in kept:
        (data / row["path"]).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(CORPUS / row["path"], data / row["path"])
    kept.append({**kept[0], "path": "train/lost.wav"})  # row 57: a file that is not there
    with (data / "manifest.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(kept[0]))
        writer.writeheader()
        writer.writerows(kept)
    result = beamline.run(root / "spoken_numbers.yaml", OVERRIDES, runs_dir=root / "runs")
    assert [r.status for r in result.records] == ["ran"] * 4
    return result.run


@pytest.mark.slow
def test_ingest_rejects_the_missing_file_by_manifest_row_and_keeps_the_splits(speech_run) -> None:
    ingest = speech_run.artifact("ingest")
    counts = ingest.meta["counts"]
    assert counts["read"] == 57 and counts["written"] == 56 and counts["rejected"] == 1
    (reject,) = rejected_records(ingest)
    assert reject["source"].endswith("manifest.csv:row 57")
    assert reject["reason"].startswith("listed file not found") and "lost.wav" in reject["reason"]
    vocabulary = json.loads(ingest.file("assets/transcripts/text.json").read_text())
    assert vocabulary["level"] == "word"  # the digits are the tokens: no space to emit
    assert vocabulary["tokens"] == list("0123456789") and vocabulary["blank"] == 10


@pytest.mark.slow
def test_a_tiny_ctc_fit_learns_and_the_evaluator_reports_error_rates(speech_run) -> None:
    history = json.loads(speech_run.artifact("train").file("report/history.json").read_text())
    untrained = history["initial"]["val_loss"]
    losses = [e["val_loss"] for e in history["epochs"]]
    # the eval CTC loss falls (from near the all-blank plateau, where the blank bias starts it)
    assert losses[-1] < 0.9 * untrained, (untrained, losses)
    averaged = history["averaged"]  # the last 3 epochs' weights averaged, then scored on eval
    assert averaged["epochs"] == [4, 6] and averaged["val_loss"] < 0.9 * untrained
    best = min(history["epochs"], key=lambda e: (e["val_wer"], e["val_loss"]))
    chosen = averaged if averaged["kept"] else best
    assert averaged["kept"] == (
        [averaged["val_wer"], averaged["val_loss"]] <= [best["val_wer"], best["val_loss"]]
    )
    assert speech_run.artifact("train").metrics["val_wer"] == chosen["val_wer"]
    metrics = json.loads(speech_run.artifact("evaluate").file("metrics.json").read_text())
    assert metrics["count"] == 8 and metrics["wer"] == metrics["beam_wer"]
    assert 0 <= metrics["cer"] and 0 <= metrics["wer"]
    predictions = _predictions(speech_run)
    assert {p["path"].split("/")[0] for p in predictions} == {"test"}
    assert all(set(p["reference"]) <= set(" 0123456789") for p in predictions)
    fragment = speech_run.artifact("evaluate").file("report/summary.html").read_text()
    assert "WER" in fragment
    if metrics["sentence_error_rate"] > 0:
        assert "data:audio/wav;base64,UklGR" in fragment  # "RIFF", an inline WAV per worst clip


def _predictions(run: beamline.Run) -> list[dict]:
    text = run.artifact("evaluate").file("predictions.jsonl").read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@pytest.mark.slow
def test_beam_search_finds_labellings_at_least_as_probable_as_greedy(speech_run) -> None:
    from beamline_plugins.audio.ctc import beam_decode, greedy_decode, labelling_log_probability
    from beamline_plugins.audio.transcript_evaluator import load_ctc_model
    from beamline_plugins.training.artifact import rebuild_input_pipeline

    train = speech_run.artifact("train")
    info = json.loads(train.file("model.json").read_text())
    pipeline = rebuild_input_pipeline(info, train.file("model.json"))
    model = load_ctc_model(train)
    batches = pipeline.dataset(
        speech_run.artifact("ingest"), "test", inputs=info["inputs"], batch_size=8
    )
    for features, _ in batches:
        out = model(features, training=False)
        logits, frames = out["logits"], out["frames"]
        scores = [
            labelling_log_probability(ids.to_tensor(default_value=-1), logits, frames).numpy()
            for ids in (greedy_decode(logits, frames), beam_decode(logits, frames, 16))
        ]
        assert np.all(scores[1] >= scores[0] - 1e-3), scores


@pytest.mark.slow
def test_the_blank_bias_starts_the_untrained_model_on_mostly_blanks(speech_run) -> None:
    import tensorflow as tf

    from beamline_plugins.audio.ctc_model import CtcSpeech
    from beamline_plugins.audio.speech_input import SpeechInput

    inputs = SpeechInput().model_inputs(speech_run.artifact("ingest"))
    name = next(n for n, spec in inputs.items() if spec.get("modality") == "audio")
    noise = tf.random.stateless_normal([2, 120, 40], [1, 2])  # 1.2 s and 0.9 s of frames
    features = {name: noise, name + "_frames": tf.constant([120, 90])}
    blank = {}
    for bias in (0.0, 3.0):
        model = CtcSpeech(
            conv_filters=[8],
            conv_strides=[4],
            encoder="transformer",
            transformer_layers=1,
            heads=1,
            ff_units=8,
            blank_bias=bias,
        )
        logits = model.build(inputs, 11)(features, training=False)["logits"]
        blank[bias] = float(tf.reduce_mean(tf.nn.softmax(logits)[..., -1]))
    # about 1/11 and e^3 / (e^3 + 10) = 2/3 (less: the untrained head's logits are not zero)
    assert blank[0.0] < 0.25 and blank[3.0] > 0.5, blank


@pytest.mark.slow
def test_predict_on_wav_files_gives_the_evaluator_transcripts(speech_run) -> None:
    import click
    from click.testing import CliRunner

    from beamline.plugins import load_plugins

    cli = click.Group("pipeline")
    load_plugins().manager.hook.register_commands(cli=cli)
    export = str(speech_run.artifact("export").path)
    evaluated = _predictions(speech_run)[:3]
    files = [str(CORPUS / p["path"]) for p in evaluated]
    result = CliRunner().invoke(cli, ["predict", export, *files, "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == [
        {"input": f, "text": p["beam"]} for f, p in zip(files, evaluated, strict=True)
    ]
    plain = CliRunner().invoke(cli, ["predict", export, files[0]])
    assert plain.output == f"{files[0]}: {evaluated[0]['beam']}\n"


def _root(run: beamline.Run) -> Path:
    return run.path.parents[2]  # <root>/runs/spoken_numbers/<run id>


def _scratch_epoch(root: Path) -> int:
    for state in (root / "runs" / "spoken_numbers" / ".scratch").glob("train-*/state.json"):
        try:
            return int(json.loads(state.read_text())["epoch"])
        except (OSError, ValueError):
            return 0
    return 0


@pytest.mark.slow
def test_a_fit_killed_after_two_epochs_resumes_to_the_uninterrupted_weights(speech_run) -> None:
    import keras
    from keras_support import python_env

    from beamline_plugins.audio.ctc_model import ctc_layers

    root = _root(speech_run)
    sets = [a for k, v in OVERRIDES.items() for a in ("--set", f"{k}={json.dumps(v)}")]
    command = [sys.executable, "-m", "beamline", "run", str(root / "spoken_numbers.yaml")]
    command += ["--runs-dir", str(root / "runs"), "--only", "train", "--force-step", "train"]
    child = subprocess.Popen(
        [*command, *sets], env=python_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 120
        while _scratch_epoch(root) < 2:
            assert child.poll() is None, "the fit ended before epoch 2 was checkpointed"
            assert time.monotonic() < deadline, "epoch 2 not checkpointed within 120 s"
            time.sleep(0.02)
        assert child.poll() is None, "the fit ended before it was killed"
    finally:
        child.kill()  # SIGKILL, inside epoch 3 (or its checkpoint)
        child.wait()
    resumed = beamline.run(
        root / "spoken_numbers.yaml", OVERRIDES, runs_dir=root / "runs", only="train", force=True
    ).run.artifact("train")
    history = json.loads(resumed.file("report/history.json").read_text())
    assert history["resumed_from_epoch"] >= 2
    straight = speech_run.artifact("train")
    expected = json.loads(straight.file("report/history.json").read_text())
    assert [e["val_wer"] for e in history["epochs"]] == [e["val_wer"] for e in expected["epochs"]]
    ctc_layers()
    mine, theirs = (
        keras.saving.load_model(str(a.file("model.keras")), compile=False).weights
        for a in (resumed, straight)
    )
    assert len(mine) == len(theirs) > 0
    for resumed_tensor, straight_tensor in zip(mine, theirs, strict=True):
        np.testing.assert_array_equal(resumed_tensor.numpy(), straight_tensor.numpy())
    # and the model file is the same bytes (layer names as a fresh process gives them)
    assert _digests(resumed.path)["model.keras"] == _digests(straight.path)["model.keras"]


@pytest.mark.slow
def test_exporting_the_same_weights_again_writes_the_same_bytes(speech_run) -> None:
    root = _root(speech_run)
    again = beamline.run(
        root / "spoken_numbers.yaml", OVERRIDES, runs_dir=root / "runs", only="export", force=True
    ).run.artifact("export")
    first, second = (
        _digests(a.path / "saved_model") for a in (speech_run.artifact("export"), again)
    )
    assert "variables/variables.data-00000-of-00001" in first and "saved_model.pb" in first
    assert first == second


def _digests(folder: Path) -> dict[str, str]:
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}
