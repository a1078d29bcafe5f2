"""The ``forecast_trainer`` step: fit a forecaster on windows of the train period.

Artifact: the layout of ``keras_trainer`` (``model.keras``, ``model.json`` with the inputs,
``task: forecast``, the horizon; ``report/history.json`` and the training curve), which
``forecast_evaluator`` and ``forecast_exporter`` read.
"""

from __future__ import annotations

import time
from typing import Any, Literal

from beamline import Examples, Input, InputPipeline, Model, StepContext, StepResult, Trainer, param
from beamline.artifacts import write_json_atomic
from beamline.fingerprint import plain
from beamline_plugins.training.artifact import input_pipeline_record, write_model

from .inputs import HISTORY, WindowInput
from .models import RnnForecaster

TASK = "forecast"


class ForecastTrainer(Trainer):
    """Fit a multi-step forecaster with Adam; early stopping on the eval period's loss.

    The loss (``mse``, ``mae`` or ``huber``) is over every step of the horizon, in the
    target's units scaled by the train spread of its one-row changes. With
    ``early_stopping`` the weights of the epoch with the lowest eval loss are kept."""

    name = "forecast_trainer"
    examples: Input[Examples] = param(help="the time_series step whose windows to train on")
    model: Model = param(RnnForecaster(), help="the forecaster component")
    input: InputPipeline = param(WindowInput(), help="the input pipeline (window_input)")
    epochs: int = param(100, help="passes over the training windows", ge=1)
    batch_size: int = param(32, help="windows per batch", ge=1)
    learning_rate: float = param(0.003, help="Adam learning rate", gt=0)
    loss: Literal["mse", "mae", "huber"] = param("mae", help="the fitted loss")
    early_stopping: int = param(10, help="epochs without eval-loss gain before stopping", ge=0)
    train_split: str = param("train", help="split to fit on")
    eval_split: str = param("eval", help="split for early stopping ('' for none)")
    seed: int = param(0, help="seed of weights and shuffling")

    def run(self, ctx: StepContext) -> StepResult:
        """Fit the model and write the artifact (see the module docstring)."""
        import keras

        from beamline_plugins.training.plots import plot_history

        examples = ctx.input("examples")
        inputs = self.input.model_inputs(examples)
        spec = inputs[HISTORY]
        horizon = int(spec["horizon"])
        keras.utils.set_random_seed(self.seed)
        model = self.model.build(inputs, horizon)
        scale = float(spec["change_std"][int(spec["target_index"])])
        model.compile(
            optimizer=keras.optimizers.Adam(self.learning_rate, clipnorm=1.0),
            loss=_scaled_loss(self.loss, scale),
            metrics=[keras.metrics.MeanAbsoluteError(name="mae")],
        )

        def data(split: str, training: bool) -> Any:
            return self.input.dataset(
                examples, split, inputs=inputs, training=training,
                batch_size=self.batch_size, seed=self.seed,
            )  # fmt: skip

        validation = data(self.eval_split, False) if self.eval_split else None
        epochs: list[dict[str, float]] = []
        callbacks: list[Any] = [_Progress(ctx, self.epochs, epochs)]
        if validation is not None and self.early_stopping:
            callbacks.append(
                keras.callbacks.EarlyStopping(
                    patience=self.early_stopping, restore_best_weights=True
                )
            )
        began = time.perf_counter()
        model.fit(
            data(self.train_split, True),
            validation_data=validation,
            epochs=self.epochs,
            callbacks=callbacks,
            shuffle=False,
            verbose=0,
        )
        seconds = time.perf_counter() - began
        info = {
            "inputs": inputs,
            "task": TASK,
            "classes": [],
            "label": "future",
            "horizon": horizon,
            **input_pipeline_record(self.input),
            "model": plain(self.model),
            "trainer_step": ctx.step.name,
        }
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
            f"{len(epochs)} epochs in {seconds:.0f} s, best eval MAE "
            f"{best.get('val_mae', float('nan')):.4f} (epoch {best.get('epoch', 0)})"
        )
        return StepResult(metrics=metrics, summary=summary)


def _scaled_loss(kind: str, scale: float) -> Any:
    """The loss on errors divided by ``scale`` (so learning rates do not depend on units)."""
    import keras

    base = {
        "mse": keras.losses.MeanSquaredError(),
        "mae": keras.losses.MeanAbsoluteError(),
        "huber": keras.losses.Huber(),
    }[kind]

    def loss(y_true: Any, y_pred: Any) -> Any:
        return base(y_true / scale, y_pred / scale)

    return loss


class _Progress:
    """A Keras callback (built lazily) reporting epochs to the step's progress and history."""

    def __new__(cls, ctx: StepContext, total: int, epochs: list[dict[str, float]]) -> Any:
        import keras

        class Progress(keras.callbacks.Callback):
            def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
                logs = {k: float(v) for k, v in (logs or {}).items()}
                epochs.append({"epoch": epoch + 1, **logs})
                text = " ".join(f"{k} {v:.4f}" for k, v in sorted(logs.items()))
                ctx.progress(epoch + 1, total, text)

        return Progress()
