"""Audio operations on records, run inside Beam workers: decode, mono, resample, fix the length.

Each ``*_record`` function takes a record and returns a new one, or raises
``beamline.ingest.Reject`` with a reason a user can act on. Between stages the audio feature
holds WAV bytes, PCM 16-bit (what ``tf.audio.decode_wav`` reads), and ``__meta__`` records its
``format``, ``encoding``, ``sample_rate``, ``channels`` and ``samples`` (summarised into
features.json). numpy is imported inside the functions so that loading the plugin stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from beamline.ingest import Reject, with_meta

from .wav import Wav, WavError, encode_pcm16, read_wav

if TYPE_CHECKING:
    import numpy as np


def _data(record: dict[str, Any], feature: str) -> bytes:
    data = record.get(feature)
    if data is None:
        raise Reject(f"no '{feature}' feature in the record")
    if not isinstance(data, bytes):
        raise Reject(f"feature '{feature}' holds {type(data).__name__}, not WAV bytes")
    return data


def decode(record: dict[str, Any], feature: str) -> Wav:
    """The decoded audio of ``feature``; raise ``Reject`` when it is not a readable WAV."""
    try:
        return read_wav(_data(record, feature))
    except WavError as exc:
        raise Reject(str(exc)) from None


def _decoded(record: dict[str, Any], feature: str, stage: str) -> Wav:
    try:
        return decode(record, feature)
    except Reject as exc:
        raise Reject(f"{exc.reason} (put decode_audio before {stage} to check files)") from None


def store(record: dict[str, Any], feature: str, samples: np.ndarray, rate: int) -> dict[str, Any]:
    """A copy of ``record`` with ``samples`` [n, channels] stored as PCM 16-bit WAV bytes."""
    out = {**record, feature: encode_pcm16(samples, rate)}
    return with_meta(
        out,
        feature,
        format="wav",
        encoding="pcm16",
        sample_rate=int(rate),
        channels=int(samples.shape[1]),
        samples=int(samples.shape[0]),
    )


def decode_record(
    record: dict[str, Any], feature: str, min_seconds: float, max_seconds: float
) -> dict[str, Any]:
    """Check that ``feature`` decodes and re-encode it as PCM 16-bit WAV.

    Rejects files shorter than ``min_seconds`` or (when positive) longer than ``max_seconds``."""
    import numpy as np

    wav = decode(record, feature)
    seconds = wav.frames / wav.sample_rate
    if seconds < min_seconds:
        raise Reject(f"too short: {seconds:.3f} s of audio (min_seconds is {min_seconds})")
    if max_seconds > 0 and seconds > max_seconds:
        raise Reject(f"too long: {seconds:.3f} s of audio (max_seconds is {max_seconds})")
    peak = float(np.max(np.abs(wav.samples)))
    if wav.encoding == "float" and peak > 1.0:
        raise Reject(f"float samples outside [-1, 1] (peak {peak:.3f}): the file would clip")
    return store(record, feature, wav.samples, wav.sample_rate)


def mono_record(record: dict[str, Any], feature: str, channel: int) -> dict[str, Any]:
    """Mix ``feature`` down to one channel (the mean), or keep channel ``channel`` (>= 0)."""
    wav = _decoded(record, feature, "to_mono")
    if wav.channels == 1:
        return store(record, feature, wav.samples, wav.sample_rate)
    if channel >= 0:
        if channel >= wav.channels:
            raise Reject(f"no channel {channel}: the file has {wav.channels} channel(s)")
        mono = wav.samples[:, channel : channel + 1]
    else:
        mono = wav.samples.mean(axis=1, keepdims=True)
    return store(record, feature, mono, wav.sample_rate)


def resample_record(
    record: dict[str, Any], feature: str, rate: int, quality: int = 16
) -> dict[str, Any]:
    """Resample ``feature`` to ``rate`` Hz with soxr (``quality`` 2..64, see ``resample``)."""
    from . import resample

    wav = _decoded(record, feature, "resample")
    if wav.sample_rate == rate:
        return store(record, feature, wav.samples, rate)
    out = resample.resample(wav.samples, wav.sample_rate, rate, quality=quality)
    return store(record, feature, out, rate)


def fix_length(samples: np.ndarray, target: int, align: str) -> np.ndarray:
    """Trim or zero-pad ``samples`` [n, channels] to ``target`` samples.

    ``center`` pads ``(target - n) // 2`` zeros before (the rest after) and trims
    ``(n - target) // 2`` samples from the start; ``left`` keeps the start and pads at the end.
    ``beamline_plugins.audio.features.waveform`` does the same in TensorFlow."""
    import numpy as np

    n = samples.shape[0]
    if n >= target:
        start = (n - target) // 2 if align == "center" else 0
        return samples[start : start + target]
    before = (target - n) // 2 if align == "center" else 0
    return np.pad(samples, ((before, target - n - before), (0, 0)))


def fix_length_record(
    record: dict[str, Any], feature: str, seconds: float, align: str
) -> dict[str, Any]:
    """Trim or zero-pad ``feature`` to ``seconds`` (``align``: center or left)."""
    wav = _decoded(record, feature, "fix_length")
    target = max(1, round(seconds * wav.sample_rate))
    return store(record, feature, fix_length(wav.samples, target, align), wav.sample_rate)
