"""A plain ``model.fit`` with early stopping, and the ``keras_trainer`` report it writes.

For trainers whose model, loss and data are their own but whose fit is the usual one (the
forecaster, the encoder-decoder): ``fit_splits`` fits on a trainer's train split with its
eval split for early stopping; ``fit_with_history`` runs ``model.fit`` on given datasets,
reporting every epoch to the step's progress; ``write_fit_report`` writes the model,
``report/history.json`` and the training curve, and returns the step's result (the metrics of
the epoch with the lowest eval loss). TensorFlow, Keras and matplotlib are imported inside the
functions.
"""

from __future__ import annotations

import time
from typing import Any, Protocol

from beamline import Artifact, InputPipeline, ModelInputs, StepContext, StepResult
from beamline.artifacts import write_json_atomic

from .artifact import write_model

#: One epoch's logs: ``epoch`` (from 1) and every Keras metric (``loss``, ``val_loss``, ...).
Epoch = dict[str, float]


class FitParams(Protocol):
    """The parameters of a trainer step that ``fit_splits`` reads."""

    input: InputPipeline
    epochs: int
    batch_size: int
    early_stopping: int
    train_split: str
    eval_split: str
    seed: int


def fit_splits(
    ctx: StepContext,
    trainer: FitParams,
    model: Any,
    examples: Artifact,
    inputs: ModelInputs,
) -> tuple[list[Epoch], float]:
    """Fit ``model`` on the batches ``trainer.input`` makes of ``trainer.train_split`` (shuffled
    with ``trainer.seed``), with ``trainer.eval_split`` (none when empty) for early stopping;
    return the epochs' logs and the seconds the fit took (see ``fit_with_history``)."""

    def data(split: str, training: bool) -> Any:
        return trainer.input.dataset(
            examples,
            split,
            inputs=inputs,
            training=training,
            batch_size=trainer.batch_size,
            seed=trainer.seed,
        )

    validation = data(trainer.eval_split, False) if trainer.eval_split else None
    return fit_with_history(
        ctx,
        model,
        data(trainer.train_split, True),
        validation,
        epochs=trainer.epochs,
        early_stopping=trainer.early_stopping,
    )


def fit_with_history(
    ctx: StepContext,
    model: Any,
    train: Any,
    validation: Any | None,
    *,
    epochs: int,
    early_stopping: int,
) -> tuple[list[Epoch], float]:
    """Fit ``model`` on ``train`` for up to ``epochs`` epochs; return the epochs' logs and the
    seconds the fit took.

    Every epoch is reported to ``ctx.progress``. Given ``validation`` and ``early_stopping``
    (epochs without eval-loss gain), the fit stops early and keeps the best epoch's weights.
    Keras does not shuffle: the input pipeline does (seeded)."""
    import keras

    history: list[Epoch] = []
    callbacks: list[Any] = [_progress_callback(ctx, epochs, history)]
    if validation is not None and early_stopping:
        callbacks.append(
            keras.callbacks.EarlyStopping(patience=early_stopping, restore_best_weights=True)
        )
    began = time.perf_counter()
    model.fit(
        train,
        validation_data=validation,
        epochs=epochs,
        callbacks=callbacks,
        shuffle=False,
        verbose=0,
    )
    return history, time.perf_counter() - began


def write_fit_report(
    ctx: StepContext,
    model: Any,
    info: dict[str, Any],
    epochs: list[Epoch],
    seconds: float,
    *,
    metric: str,
    metric_label: str,
) -> StepResult:
    """Write ``model`` with ``info`` (``model.keras``, ``model.json``), ``report/history.json``
    and ``report/training_curve.png``; return the metrics of the best epoch (lowest
    ``val_loss``, else ``loss``) with ``epochs`` and ``train_seconds``.

    The summary names the best epoch's ``metric`` (a key of the logs, e.g. ``val_mae``) as
    ``best eval {metric_label}``."""
    from .plots import plot_history

    write_model(ctx.output_dir, model, info)
    best = min(epochs, key=lambda e: e.get("val_loss", e["loss"])) if epochs else {}
    report = ctx.output_dir / "report"
    report.mkdir(parents=True, exist_ok=True)
    history = {"epochs": epochs, "best_epoch": best.get("epoch", 0), "seconds": seconds}
    write_json_atomic(report / "history.json", history)
    if epochs:
        plot_history(epochs, report / "training_curve.png")
    metrics = {k: float(v) for k, v in best.items() if k != "epoch"}
    metrics.update(epochs=float(len(epochs)), train_seconds=seconds)
    summary = (
        f"{len(epochs)} epochs in {seconds:.0f} s, best eval {metric_label} "
        f"{best.get(metric, float('nan')):.4f} (epoch {best.get('epoch', 0)})"
    )
    return StepResult(metrics=metrics, summary=summary)


def _progress_callback(ctx: StepContext, total: int, epochs: list[Epoch]) -> Any:
    """A Keras callback appending each epoch's logs to ``epochs`` and reporting them to
    ``ctx.progress`` (the class is built here: Keras is imported only when a fit runs)."""
    import keras

    class Progress(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            logs = {k: float(v) for k, v in (logs or {}).items()}
            epochs.append({"epoch": epoch + 1, **logs})
            text = " ".join(f"{k} {v:.4f}" for k, v in sorted(logs.items()))
            ctx.progress(epoch + 1, total, text)

    return Progress()
