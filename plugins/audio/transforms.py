"""Audio transforms: Beam stages that check, mix down, resample and trim the ``audio`` feature."""

from __future__ import annotations

import functools
from typing import Any, Literal

from beamline import ParamError, StepContext, Transform, param
from beamline.ingest import record_stage

from . import ops

Align = Literal["center", "left"]


def _set_audio(info: dict[str, Any], feature: str, **details: Any) -> dict[str, Any]:
    features = {k: dict(v) for k, v in info["features"].items()}
    features.setdefault(feature, {"modality": "audio"}).update(details)
    return {**info, "features": features}


class DecodeAudio(Transform):
    """Check that every file is a readable WAV and re-encode it as PCM 16-bit WAV.

    Reads PCM 8/16/24/32-bit and IEEE float 32/64-bit WAV (plain or WAVE_FORMAT_EXTENSIBLE), any
    number of channels. Rejects, each with its reason: empty (0-byte) files, files that are not
    WAV (a text file named .wav), truncated files (a data chunk cut short), compressed encodings
    (ADPCM, mu-law, MP3 in WAV), unsupported sample sizes, float files that clip, and clips shorter
    than ``min_seconds`` or longer than ``max_seconds``. The output is 16-bit PCM, the format the
    TensorFlow input pipeline and the exported model decode."""

    name = "decode_audio"
    feature: str = param("audio", help="the feature holding WAV bytes")
    min_seconds: float = param(0.0, help="reject clips shorter than this (seconds)", ge=0)
    max_seconds: float = param(
        0.0, help="reject clips longer than this (seconds; 0: no limit)", ge=0
    )

    def check(self) -> None:
        """``min_seconds <= max_seconds`` unless ``max_seconds`` is 0 (no limit)."""
        if self.max_seconds and self.max_seconds < self.min_seconds:
            raise ParamError(
                "max_seconds", f"is {self.max_seconds:g}, below min_seconds {self.min_seconds:g}"
            )

    def stage(self, ctx: StepContext) -> Any:
        """The Beam stage: decode, check, re-encode as PCM 16-bit; reject unreadable files."""
        fn = functools.partial(
            ops.decode_record,
            feature=self.feature,
            min_seconds=self.min_seconds,
            max_seconds=self.max_seconds,
        )
        return record_stage(self.name, fn)

    def feature_info(self, ctx: StepContext, info: dict[str, Any]) -> dict[str, Any]:
        """The audio feature is PCM 16-bit WAV."""
        return _set_audio(info, self.feature, modality="audio", format="wav", encoding="pcm16")


class ToMono(Transform):
    """Mix multi-channel audio down to one channel (the mean of the channels, or one of them)."""

    name = "to_mono"
    channel: int = param(
        -1, help="keep only this channel (0-based); -1: average all channels", ge=-1
    )
    feature: str = param("audio", help="the feature holding WAV bytes")

    def stage(self, ctx: StepContext) -> Any:
        """The Beam stage: mix down each clip."""
        fn = functools.partial(ops.mono_record, feature=self.feature, channel=self.channel)
        return record_stage(self.name, fn)

    def feature_info(self, ctx: StepContext, info: dict[str, Any]) -> dict[str, Any]:
        """The audio feature has one channel."""
        return _set_audio(info, self.feature, channels=1)


class Resample(Transform):
    """Resample audio to a target rate with a band-limited filter (soxr, the SoX resampler).

    Works for any pair of integer rates (8000 -> 16000, 44100 -> 16000, ...). Content above the
    new Nyquist frequency is filtered out rather than folded back (no aliasing)."""

    name = "resample"
    rate: int = param(16000, help="target sample rate in Hz", ge=1)
    quality: int = param(
        16, help="2-4 low, 5-8 medium, 9-16 high, 17-64 very high (slower)", ge=2, le=64
    )
    feature: str = param("audio", help="the feature holding WAV bytes")

    def stage(self, ctx: StepContext) -> Any:
        """The Beam stage: resample each clip."""
        fn = functools.partial(
            ops.resample_record, feature=self.feature, rate=self.rate, quality=self.quality
        )
        return record_stage(self.name, fn)

    def feature_info(self, ctx: StepContext, info: dict[str, Any]) -> dict[str, Any]:
        """The audio feature's sample rate."""
        return _set_audio(info, self.feature, sample_rate=self.rate)


class FixLength(Transform):
    """Trim or zero-pad every clip to a fixed duration, centred or aligned to the start."""

    name = "fix_length"
    seconds: float = param(1.0, help="duration of every clip after this stage", gt=0)
    align: Align = param("center", help="center: trim/pad both ends equally; left: keep the start")
    feature: str = param("audio", help="the feature holding WAV bytes")

    def stage(self, ctx: StepContext) -> Any:
        """The Beam stage: trim or pad each clip."""
        fn = functools.partial(
            ops.fix_length_record, feature=self.feature, seconds=self.seconds, align=self.align
        )
        return record_stage(self.name, fn)

    def feature_info(self, ctx: StepContext, info: dict[str, Any]) -> dict[str, Any]:
        """The audio feature's duration and alignment."""
        return _set_audio(info, self.feature, seconds=self.seconds, align=self.align)
