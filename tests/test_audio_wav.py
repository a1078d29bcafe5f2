"""WAV decoding, the resampler (soxr) and the record operations of the audio plugin (no Beam)."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from data_paths import SPOKEN_DIGITS

from beamline.ingest import META_KEY, Reject
from beamline_plugins.audio import ops
from beamline_plugins.audio.resample import recipe, resample
from beamline_plugins.audio.wav import WavError, encode_pcm16, encode_wav, read_wav

A_CLIP = SPOKEN_DIGITS / "7" / "7_george_3.wav"


def sine(freq: float, rate: int, seconds: float = 1.0, amplitude: float = 0.5) -> np.ndarray:
    """A sine wave sampled at ``rate``."""
    t = np.arange(round(rate * seconds)) / rate
    return amplitude * np.sin(2 * np.pi * freq * t)


def peak_hz(x: np.ndarray, rate: int) -> float:
    """The frequency of the largest FFT bin of ``x`` (Hann windowed)."""
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1.0 / rate)[spectrum.argmax()])


def test_importing_the_plugin_imports_no_heavy_library(heavy_imports) -> None:
    assert heavy_imports("import beamline_plugins.audio", also=("numpy",)) == []


def test_real_fsdd_clip_decodes_like_tensorflow_and_reencodes_byte_identical() -> None:
    import tensorflow as tf

    data = A_CLIP.read_bytes()
    wav = read_wav(data)
    assert (wav.sample_rate, wav.channels, wav.bits, wav.encoding) == (8000, 1, 16, "pcm")
    audio, rate = tf.audio.decode_wav(data)
    assert int(rate) == 8000
    np.testing.assert_array_equal(wav.samples, audio.numpy())
    assert read_wav(encode_pcm16(wav.samples, 8000)).samples.tolist() == wav.samples.tolist()


@pytest.mark.parametrize(
    ("bits", "fmt", "tolerance"),
    [(8, "pcm", 1 / 128), (16, "pcm", 1 / 32768), (24, "pcm", 2**-23), (32, "pcm", 2**-31),
     (32, "float", 1e-7), (64, "float", 1e-12)],
)  # fmt: skip
def test_every_supported_sample_format_decodes_to_the_same_signal(bits, fmt, tolerance) -> None:
    stereo = np.stack([sine(440, 16000, 0.1), sine(880, 16000, 0.1)], axis=1)
    wav = read_wav(encode_wav(stereo, 16000, bits=bits, fmt=fmt))
    assert (wav.sample_rate, wav.channels, wav.frames, wav.bits) == (16000, 2, 1600, bits)
    np.testing.assert_allclose(wav.samples, stereo, atol=tolerance)


def test_wave_format_extensible_pcm_is_read() -> None:
    plain = encode_wav(sine(440, 8000, 0.05), 8000, bits=16)
    fmt = struct.pack("<HHIIHH", 0xFFFE, 1, 8000, 16000, 2, 16) + struct.pack("<HHI", 22, 16, 4)
    fmt += struct.pack("<H", 1) + b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + plain[36:]
    data = b"RIFF" + struct.pack("<I", len(body)) + body
    np.testing.assert_array_equal(read_wav(data).samples, read_wav(plain).samples)


def _with_format_tag(data: bytes, tag: int) -> bytes:
    return data[:20] + struct.pack("<H", tag) + data[22:]


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty file (0 bytes)"),
        (b"this is not audio, just text\n", "not a WAV file: no RIFF/WAVE header"),
        (A_CLIP.read_bytes()[:2000], "truncated WAV: the data chunk declares"),
        (_with_format_tag(A_CLIP.read_bytes(), 7), "unsupported WAV encoding: mu-law"),
        (_with_format_tag(A_CLIP.read_bytes(), 0x55), "unsupported WAV encoding: MP3"),
        (encode_wav(np.zeros(0), 8000), "no audio samples"),
        (b"RIFX" + A_CLIP.read_bytes()[4:], "big-endian WAV (RIFX) is not supported"),
    ],
    ids=["empty", "text", "truncated", "mu-law", "mp3", "no-samples", "rifx"],
)
def test_bad_wav_data_raises_with_a_reason(data: bytes, reason: str) -> None:
    with pytest.raises(WavError, match="^" + reason.replace("(", r"\(").replace(")", r"\)")):
        read_wav(data)


@pytest.mark.parametrize(
    ("rate_in", "rate_out", "freq"),
    [(16000, 8000, 1000.0), (8000, 16000, 3000.0), (44100, 16000, 440.0), (22050, 8000, 2500.0)],
)
def test_resampled_sine_keeps_its_frequency_and_amplitude(rate_in, rate_out, freq) -> None:
    out = resample(sine(freq, rate_in), rate_in, rate_out)
    assert len(out) == rate_out
    assert peak_hz(out, rate_out) == pytest.approx(freq, abs=1.0)
    # away from the edges the amplitude is kept (pass band is flat)
    assert np.abs(out[200:-200]).max() == pytest.approx(0.5, abs=0.005)


def test_downsampling_removes_content_above_the_new_nyquist_instead_of_aliasing() -> None:
    # 6 kHz cannot exist at 8 kHz: a naive decimation would fold it to 2 kHz at full level.
    tone = sine(1000, 16000) + sine(6000, 16000)
    out = resample(tone, 16000, 8000)
    spectrum = np.abs(np.fft.rfft(out * np.hanning(len(out))))
    freqs = np.fft.rfftfreq(len(out), 1 / 8000)
    kept = spectrum[np.abs(freqs - 1000) < 20].max()
    alias = spectrum[np.abs(freqs - 2000) < 20].max()
    assert 20 * np.log10(kept / alias) > 80  # the alias is at least 80 dB down


def test_quality_picks_a_soxr_recipe_and_every_recipe_keeps_the_tone() -> None:
    qualities = (2, 4, 5, 8, 9, 16, 17, 64)
    assert [recipe(q) for q in qualities] == ["LQ", "LQ", "MQ", "MQ", "HQ", "HQ", "VHQ", "VHQ"]
    for quality in (2, 8, 16, 64):
        out = resample(sine(1000, 16000), 16000, 8000, quality=quality)
        assert len(out) == 8000 and out.dtype == np.float32
        assert peak_hz(out, 8000) == pytest.approx(1000, abs=1.0)


def test_equal_rates_return_a_float32_copy() -> None:
    samples = sine(440, 8000, 0.1)
    out = resample(samples, 8000, 8000)
    assert out.dtype == np.float32 and out is not samples
    np.testing.assert_array_equal(out, samples.astype(np.float32))


def test_multichannel_resampling_treats_channels_independently() -> None:
    stereo = np.stack([sine(500, 16000), sine(1500, 16000)], axis=1)
    out = resample(stereo, 16000, 8000)
    assert out.shape == (8000, 2)
    assert [peak_hz(out[:, c], 8000) for c in range(2)] == pytest.approx([500, 1500], abs=1)


def test_record_stages_mix_resample_and_fix_length() -> None:
    stereo = np.stack([sine(440, 16000, 0.5), -sine(440, 16000, 0.5) * 0.5], axis=1)
    record = {"audio": encode_wav(stereo, 16000, bits=24), "label": "a", "__source__": "x.wav"}
    decoded = ops.decode_record(record, "audio", min_seconds=0.0, max_seconds=0.0)
    assert decoded[META_KEY]["audio"]["channels"] == 2
    mono = ops.mono_record(decoded, "audio", channel=-1)
    resampled = ops.resample_record(mono, "audio", rate=8000)
    fixed = ops.fix_length_record(resampled, "audio", seconds=1.0, align="center")
    assert fixed[META_KEY]["audio"] == {
        "format": "wav",
        "encoding": "pcm16",
        "sample_rate": 8000,
        "channels": 1,
        "samples": 8000,
    }
    wav = read_wav(fixed["audio"])
    assert wav.bits == 16 and wav.frames == 8000
    # 4000 samples of a 0.125-amplitude sine (mean of 0.5 and -0.25), 2000 zeros each side
    assert not wav.samples[:1990].any() and not wav.samples[-1990:].any()
    assert peak_hz(wav.samples[2000:6000, 0], 8000) == pytest.approx(440, abs=2)
    assert np.abs(wav.samples[2100:5900]).max() == pytest.approx(0.125, abs=0.003)
    assert record["audio"] == encode_wav(stereo, 16000, bits=24)  # input record unchanged


def test_fix_length_trims_centred_or_from_the_start() -> None:
    x = np.arange(10, dtype=np.float32)[:, None]
    assert ops.fix_length(x, 4, "center")[:, 0].tolist() == [3, 4, 5, 6]
    assert ops.fix_length(x, 4, "left")[:, 0].tolist() == [0, 1, 2, 3]
    assert ops.fix_length(x[:3], 6, "center")[:, 0].tolist() == [0, 0, 1, 2, 0, 0]
    assert ops.fix_length(x[:3], 6, "left")[:, 0].tolist() == [0, 1, 2, 0, 0, 0]


def test_stages_reject_with_reasons_naming_the_problem() -> None:
    clip = {"audio": A_CLIP.read_bytes(), "__source__": "7.wav"}
    with pytest.raises(Reject, match="too short"):
        ops.decode_record(clip, "audio", min_seconds=5.0, max_seconds=0.0)
    with pytest.raises(Reject, match="too long"):
        ops.decode_record(clip, "audio", min_seconds=0.0, max_seconds=0.1)
    with pytest.raises(Reject, match=r"no channel 3: the file has 2 channel\(s\)"):
        ops.mono_record({**clip, "audio": encode_wav(np.zeros((8, 2)) + 0.1, 8000)}, "audio", 3)
    with pytest.raises(Reject, match=r"not a WAV file.*put decode_audio before resample"):
        ops.resample_record({**clip, "audio": b"text"}, "audio", rate=8000)
    loud = encode_wav(np.full(100, 1.5), 8000, bits=32, fmt="float")
    with pytest.raises(Reject, match="outside \\[-1, 1\\]"):
        ops.decode_record({**clip, "audio": loud}, "audio", min_seconds=0.0, max_seconds=0.0)


def test_tensorflow_waveform_matches_the_beam_fix_length() -> None:
    import tensorflow as tf

    from beamline_plugins.audio.features import waveform

    samples = read_wav(A_CLIP.read_bytes()).samples
    for target in (len(samples) - 301, len(samples) + 301):
        for align in ("center", "left"):
            beam_side = ops.fix_length(samples, target, align)[:, 0]
            tf_side = waveform(tf.constant(A_CLIP.read_bytes()), 8000, target, align).numpy()
            np.testing.assert_array_equal(tf_side, beam_side)
    with pytest.raises(tf.errors.InvalidArgumentError, match="differs from the model's 16000 Hz"):
        waveform(tf.constant(A_CLIP.read_bytes()), 16000, 16000)
