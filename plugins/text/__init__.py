"""Text: sources, Beam text stages, vocabulary, tokenising input, sequence models.

Modules: ``sources`` and ``readers`` (``text_table``, ``text_folder``), ``transforms`` and
``ops`` (``normalize_text``, ``filter_length``, ``text_vocabulary``), ``vocabulary`` (the Beam
analyzer and its asset), ``tokens`` and ``tf_ops`` (one tokenisation in Python and TensorFlow),
``inputs`` (``text_input``), ``models`` (``bow_classifier``, ``rnn_classifier``,
``transformer_classifier``, ``language_model``), ``lm_input`` and ``lm_steps`` (``lm_input``,
``lm_trainer``, ``lm_evaluator``). Importing this package imports neither TensorFlow, Keras nor
Beam.
"""

from __future__ import annotations

from typing import Any

from beamline import hookimpl

from .inputs import TextInput
from .lm_input import LmInput
from .lm_steps import LmEvaluator, LmTrainer
from .models import BowClassifier, LanguageModel, RnnClassifier, TransformerClassifier
from .sources import TextFolder, TextTable
from .transforms import FilterLength, NormalizeText, TextVocabulary

__all__ = [
    "BowClassifier",
    "FilterLength",
    "LanguageModel",
    "LmEvaluator",
    "LmInput",
    "LmTrainer",
    "NormalizeText",
    "RnnClassifier",
    "TextFolder",
    "TextInput",
    "TextTable",
    "TextVocabulary",
    "TransformerClassifier",
]


@hookimpl
def register_sources(register: Any) -> None:
    """Register ``text_table`` and ``text_folder``."""
    register(TextTable)
    register(TextFolder)


@hookimpl
def register_transforms(register: Any) -> None:
    """Register ``normalize_text``, ``filter_length`` and ``text_vocabulary``."""
    register(NormalizeText)
    register(FilterLength)
    register(TextVocabulary)


@hookimpl
def register_input_pipelines(register: Any) -> None:
    """Register ``text_input`` and ``lm_input``."""
    register(TextInput)
    register(LmInput)


@hookimpl
def register_models(register: Any) -> None:
    """Register the text classifiers and the language model."""
    register(BowClassifier)
    register(RnnClassifier)
    register(TransformerClassifier)
    register(LanguageModel)


@hookimpl
def register_trainers(register: Any) -> None:
    """Register ``lm_trainer``."""
    register(LmTrainer)


@hookimpl
def register_evaluators(register: Any) -> None:
    """Register ``lm_evaluator``."""
    register(LmEvaluator)
