"""Keras training: input pipelines, model builders, trainer, evaluators, exporter.

Registers ``image_input`` (defined in the shared training library,
``beamline_plugins.training.image_input``, because the GAN reads images with it too) and the
components of its own modules: ``table_input`` (table rows for regression or classification, with
``table_columns``), ``models`` (``logistic_regression``, ``linear_regression``, ``mlp``, ``cnn``),
``wide_deep``, ``trainer`` (``keras_trainer``, with ``fit_data``, ``fit_options`` and
``epoch_log``), ``evaluator`` (``classification_evaluator``), ``regression``
(``regression_evaluator``), ``exporter`` (``saved_model_exporter``) and ``predict`` (the
``pipeline predict`` command). The training loop, strategies, checkpoints, the model artifact
and the plots live in ``beamline_plugins.training``.
Importing this package does not import TensorFlow.
"""

from __future__ import annotations

from typing import Any

from beamline import hookimpl
from beamline_plugins.training.image_input import ImageInput

from .evaluator import ClassificationEvaluator
from .exporter import SavedModelExporter
from .models import Cnn, LinearRegression, LogisticRegression, Mlp
from .regression import RegressionEvaluator
from .table_input import TableInput
from .trainer import KerasTrainer
from .wide_deep import WideDeep


@hookimpl
def register_input_pipelines(register: Any) -> None:
    """Register the image and table input pipelines."""
    register(ImageInput)
    register(TableInput)


@hookimpl
def register_models(register: Any) -> None:
    """Register the model builders."""
    register(LogisticRegression)
    register(LinearRegression)
    register(Mlp)
    register(Cnn)
    register(WideDeep)


@hookimpl
def register_trainers(register: Any) -> None:
    """Register the Keras trainer."""
    register(KerasTrainer)


@hookimpl
def register_evaluators(register: Any) -> None:
    """Register the classification and regression evaluators."""
    register(ClassificationEvaluator)
    register(RegressionEvaluator)


@hookimpl
def register_exporters(register: Any) -> None:
    """Register the SavedModel exporter."""
    register(SavedModelExporter)


@hookimpl
def register_commands(cli: Any) -> None:
    """Add ``pipeline predict``."""
    from .predict import predict_command

    cli.add_command(predict_command)
