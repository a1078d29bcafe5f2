"""What ``keras_trainer`` resolves before it fits: the task, the loss and the optimizer."""

from __future__ import annotations

from typing import Any

from beamline.errors import PipelineError
from beamline_plugins.training.loop import CLASSIFICATION_LOSSES, REGRESSION_LOSSES


def task_of(pipeline: Any) -> str:
    """The task an input pipeline feeds: ``regression`` or ``classification`` (the default)."""
    task = getattr(pipeline, "task", "classification")
    if task not in ("classification", "regression"):
        raise PipelineError(f"input pipeline '{pipeline.name}': unknown task '{task}'")
    return str(task)


def resolve_loss(loss: str, task: str) -> str:
    """The loss to fit with: ``auto`` resolved for the task, and a loss that fits the task."""
    if loss == "auto":
        return "mse" if task == "regression" else "crossentropy"
    allowed = REGRESSION_LOSSES if task == "regression" else CLASSIFICATION_LOSSES
    if loss not in allowed:
        raise PipelineError(
            f"keras_trainer: loss '{loss}' does not fit a {task} (use one of "
            f"{', '.join(allowed)}, or auto)"
        )
    return loss


def make_optimizer(trainer: Any, steps_per_epoch: int, policy: str) -> Any:
    """The trainer's optimizer with its learning-rate schedule (loss-scaled under float16)."""
    import keras

    lr: Any = trainer.learning_rate
    if trainer.lr_schedule == "cosine":
        lr = keras.optimizers.schedules.CosineDecay(lr, max(1, trainer.epochs * steps_per_epoch))
    elif trainer.lr_schedule == "exponential":
        lr = keras.optimizers.schedules.ExponentialDecay(lr, steps_per_epoch, trainer.decay_rate)
    if trainer.optimizer == "sgd":
        optimizer = keras.optimizers.SGD(lr, momentum=trainer.momentum)
    else:
        optimizer = keras.optimizers.Adam(lr)
    if policy == "mixed_float16":
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer
