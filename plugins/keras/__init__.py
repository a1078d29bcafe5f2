"""Keras training: tf.data input pipelines, model builders, trainer, evaluator, exporter.

Modules: ``inputs`` (``image_input`` and the shared image preprocessing), ``models``
(``logistic_regression``, ``mlp``, ``cnn``), ``trainer`` (``keras_trainer``, with ``loop`` and
``strategy``), ``evaluator`` (``classification_evaluator``), ``exporter``
(``saved_model_exporter``) and ``predict`` (the ``pipeline predict`` command). Importing this
package does not import TensorFlow.
"""

from __future__ import annotations

from typing import Any

from pipeline import hookimpl

from .evaluator import ClassificationEvaluator
from .exporter import SavedModelExporter
from .inputs import ImageInput
from .models import Cnn, LogisticRegression, Mlp
from .trainer import KerasTrainer


@hookimpl
def register_input_pipelines(register: Any) -> None:
    """Register the image input pipeline."""
    register(ImageInput)


@hookimpl
def register_models(register: Any) -> None:
    """Register the model builders."""
    register(LogisticRegression)
    register(Mlp)
    register(Cnn)


@hookimpl
def register_trainers(register: Any) -> None:
    """Register the Keras trainer."""
    register(KerasTrainer)


@hookimpl
def register_evaluators(register: Any) -> None:
    """Register the classification evaluator."""
    register(ClassificationEvaluator)


@hookimpl
def register_exporters(register: Any) -> None:
    """Register the SavedModel exporter."""
    register(SavedModelExporter)


@hookimpl
def register_commands(cli: Any) -> None:
    """Add ``pipeline predict``."""
    from .predict import predict_command

    cli.add_command(predict_command)
