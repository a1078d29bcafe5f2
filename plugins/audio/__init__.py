"""Speech and audio: WAV sources, Beam decode/resample stages, spectrogram input, audio models.

Modules: ``wav`` (read/write WAV without TensorFlow), ``resample`` (band-limited resampling
with soxr), ``ops`` (record functions run by the Beam stages), ``sources``
(``audio_folder``), ``transforms`` (``decode_audio``, ``to_mono``, ``resample``, ``fix_length``),
``features`` (the TensorFlow WAV -> spectrogram function shared by training and serving),
``inputs`` (``audio_input``) and ``models`` (``audio_cnn``). Importing this package imports
neither TensorFlow, Keras, Beam nor numpy.
"""

from __future__ import annotations

from typing import Any

from beamline import hookimpl

from .inputs import AudioInput
from .models import AudioCnn
from .sources import AudioFolder
from .transforms import DecodeAudio, FixLength, Resample, ToMono

__all__ = [
    "AudioCnn",
    "AudioFolder",
    "AudioInput",
    "DecodeAudio",
    "FixLength",
    "Resample",
    "ToMono",
]


@hookimpl
def register_sources(register: Any) -> None:
    """Register ``audio_folder``."""
    register(AudioFolder)


@hookimpl
def register_transforms(register: Any) -> None:
    """Register ``decode_audio``, ``to_mono``, ``resample`` and ``fix_length``."""
    register(DecodeAudio)
    register(ToMono)
    register(Resample)
    register(FixLength)


@hookimpl
def register_input_pipelines(register: Any) -> None:
    """Register ``audio_input``."""
    register(AudioInput)


@hookimpl
def register_models(register: Any) -> None:
    """Register ``audio_cnn``."""
    register(AudioCnn)
