"""Generative models: a DCGAN (generator and discriminator), its trainer and its evaluator.

Modules: ``models`` (``dcgan_generator``, ``dcgan_discriminator``), ``trainer`` (``gan_trainer``,
with the training step in ``loop``), ``evaluator`` (``gan_evaluator``, with ``scores``) and
``images`` (sample grids and plots). Importing this package does not import TensorFlow.
"""

from __future__ import annotations

from typing import Any

from beamline import hookimpl

from .evaluator import GanEvaluator
from .models import DcganDiscriminator, DcganGenerator
from .trainer import GanTrainer

__all__ = ["DcganDiscriminator", "DcganGenerator", "GanEvaluator", "GanTrainer"]


@hookimpl
def register_models(register: Any) -> None:
    """Register the DCGAN generator and discriminator."""
    register(DcganGenerator)
    register(DcganDiscriminator)


@hookimpl
def register_trainers(register: Any) -> None:
    """Register the GAN trainer."""
    register(GanTrainer)


@hookimpl
def register_evaluators(register: Any) -> None:
    """Register the GAN evaluator."""
    register(GanEvaluator)
