"""Speech and audio: WAV sources, Beam decode/resample stages, spectrogram input, audio models.

Modules: ``wav`` (read/write WAV without TensorFlow), ``resample`` (band-limited resampling
with soxr), ``ops`` (record functions run by the Beam stages), ``sources``
(``audio_folder``), ``transforms`` (``decode_audio``, ``to_mono``, ``resample``, ``fix_length``),
``features`` (the TensorFlow WAV -> spectrogram function shared by training and serving),
``inputs`` (``audio_input``) and ``models`` (``audio_cnn``). Speech to text:
``transcripts`` (``transcript_manifest``), ``transcript_vocabulary``, ``speech_input``,
``ctc_model`` (``ctc_speech``), ``ctc`` (loss and decoders), ``ctc_trainer``,
``transcript_evaluator`` (WER, CER) and ``transcript_exporter`` (WAV bytes -> text).
Importing this package imports neither TensorFlow, Keras, Beam nor numpy.
"""

from __future__ import annotations

from typing import Any

from beamline import hookimpl

from .ctc_model import CtcSpeech
from .ctc_trainer import CtcTrainer
from .inputs import AudioInput
from .models import AudioCnn
from .sources import AudioFolder
from .speech_input import SpeechInput
from .transcript_evaluator import TranscriptEvaluator
from .transcript_exporter import TranscriptExporter
from .transcript_vocabulary import TranscriptVocabulary
from .transcripts import TranscriptManifest
from .transforms import DecodeAudio, FixLength, Resample, ToMono

__all__ = [
    "AudioCnn",
    "AudioFolder",
    "AudioInput",
    "CtcSpeech",
    "CtcTrainer",
    "DecodeAudio",
    "FixLength",
    "Resample",
    "SpeechInput",
    "ToMono",
    "TranscriptEvaluator",
    "TranscriptExporter",
    "TranscriptManifest",
    "TranscriptVocabulary",
]


@hookimpl
def register_sources(register: Any) -> None:
    """Register ``audio_folder`` and ``transcript_manifest``."""
    register(AudioFolder)
    register(TranscriptManifest)


@hookimpl
def register_transforms(register: Any) -> None:
    """Register ``decode_audio``, ``to_mono``, ``resample``, ``fix_length`` and
    ``transcript_vocabulary``."""
    register(DecodeAudio)
    register(ToMono)
    register(Resample)
    register(FixLength)
    register(TranscriptVocabulary)


@hookimpl
def register_input_pipelines(register: Any) -> None:
    """Register ``audio_input`` and ``speech_input``."""
    register(AudioInput)
    register(SpeechInput)


@hookimpl
def register_models(register: Any) -> None:
    """Register ``audio_cnn`` and ``ctc_speech``."""
    register(AudioCnn)
    register(CtcSpeech)


@hookimpl
def register_trainers(register: Any) -> None:
    """Register ``ctc_trainer``."""
    register(CtcTrainer)


@hookimpl
def register_evaluators(register: Any) -> None:
    """Register ``transcript_evaluator``."""
    register(TranscriptEvaluator)


@hookimpl
def register_exporters(register: Any) -> None:
    """Register ``transcript_exporter``."""
    register(TranscriptExporter)
