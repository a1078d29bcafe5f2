"""The ``forecast_trainer`` step: fit a forecaster on windows of the train period.

Artifact: the layout of ``keras_trainer`` (``model.keras``, ``model.json`` with the inputs,
``task: forecast``, the horizon; ``report/history.json`` and the training curve), which
``forecast_evaluator`` and ``forecast_exporter`` read.
"""

from __future__ import annotations

from typing import Any, Literal

from beamline import Examples, Input, InputPipeline, Model, StepContext, StepResult, Trainer, param
from beamline.fingerprint import plain
from beamline_plugins.training.artifact import input_pipeline_record
from beamline_plugins.training.custom_fit import fit_splits, write_fit_report

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

        from beamline_plugins.training.stable_save import fresh_names

        examples = ctx.input("examples")
        inputs = self.input.model_inputs(examples)
        spec = inputs[HISTORY]
        horizon = int(spec["horizon"])
        keras.utils.set_random_seed(self.seed)
        with fresh_names():  # the names of a fresh process: model.keras the same in any
            model = self.model.build(inputs, horizon)
            scale = float(spec["change_std"][int(spec["target_index"])])
            model.compile(
                optimizer=keras.optimizers.Adam(self.learning_rate, clipnorm=1.0),
                loss=_scaled_loss(self.loss, scale),
                metrics=[keras.metrics.MeanAbsoluteError(name="mae")],
            )

        fit = fit_splits(ctx, self, model, examples, inputs)
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
        return write_fit_report(ctx, model, info, fit, metric="val_mae", metric_label="MAE")


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
