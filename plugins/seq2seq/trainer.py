"""The ``seq2seq_trainer`` step: fit an encoder-decoder with teacher forcing.

Artifact: the layout of ``keras_trainer`` (``model.keras``, ``model.json`` with the inputs,
``task: seq2seq`` and the target vocabulary as ``classes``; ``report/history.json`` and the
training curve), which ``seq2seq_evaluator`` and ``seq2seq_exporter`` read.
"""

from __future__ import annotations

from typing import Any, Literal

from beamline import Examples, Input, InputPipeline, Model, StepContext, StepResult, Trainer, param
from beamline.fingerprint import plain
from beamline_plugins.training.artifact import input_pipeline_record
from beamline_plugins.training.custom_fit import fit_splits, write_fit_report

from .inputs import Seq2SeqInput
from .models import TransformerSeq2Seq
from .vocabulary import TARGET

TASK = "seq2seq"


class Seq2SeqTrainer(Trainer):
    """Fit an encoder-decoder on sequence pairs: teacher forcing, Adam, early stopping.

    The loss is the cross-entropy of every target token and ``[EOS]`` given the tokens before
    it (padding weighs 0), with optional label smoothing. The learning rate warms up linearly
    over ``warmup_steps``, then decays with the inverse square root of the step
    (``schedule: inverse_sqrt``; without warm-up it stays constant), along a half cosine to 0
    at the last step of ``epochs`` (``cosine``) or stays (``constant``); with
    ``early_stopping`` the weights of the epoch with the lowest eval loss are kept."""

    name = "seq2seq_trainer"
    examples: Input[Examples] = param(help="the step whose examples artifact to train on")
    model: Model = param(TransformerSeq2Seq(), help="the encoder-decoder component")
    input: InputPipeline = param(Seq2SeqInput(), help="the input pipeline (seq2seq_input)")
    epochs: int = param(10, help="passes over the training pairs", ge=1)
    batch_size: int = param(128, help="pairs per batch", ge=1)
    learning_rate: float = param(0.001, help="peak Adam learning rate", gt=0)
    warmup_steps: int = param(500, help="steps of linear warm-up (0: none)", ge=0)
    schedule: Literal["inverse_sqrt", "cosine", "constant"] = param(
        "inverse_sqrt", help="after warm-up: inverse square root decay, cosine to 0, or constant"
    )
    label_smoothing: float = param(0.0, help="label smoothing of the loss", ge=0, lt=1)
    clipnorm: float = param(1.0, help="gradient norm clipping (0: off)", ge=0)
    early_stopping: int = param(3, help="epochs without eval-loss gain before stopping", ge=0)
    train_split: str = param("train", help="split to fit on")
    eval_split: str = param("eval", help="split for early stopping ('' for none)")
    seed: int = param(0, help="seed of weights and shuffling")

    def run(self, ctx: StepContext) -> StepResult:
        """Fit the model and write the artifact (see the module docstring)."""
        import keras

        from beamline_plugins.training.records import split_size
        from beamline_plugins.training.stable_save import fresh_names

        examples = ctx.input("examples")
        inputs = self.input.model_inputs(examples)
        keras.utils.set_random_seed(self.seed)
        with fresh_names():  # the names of a fresh process: model.keras the same in any
            model = self.model.build(inputs, int(inputs[TARGET]["vocab_size"]))
            steps = -(-split_size(examples, self.train_split) // self.batch_size) * self.epochs
            rate = _schedule(self.schedule, self.learning_rate, self.warmup_steps, steps)
            optimizer = keras.optimizers.Adam(rate, clipnorm=self.clipnorm or None)
            model.compile(
                optimizer=optimizer,
                loss=_loss(self.label_smoothing),
                weighted_metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
            )

        fit = fit_splits(ctx, self, model, examples, inputs)
        info = {
            "inputs": inputs,
            "task": TASK,
            "classes": inputs[TARGET]["vocabulary"],
            "label": TARGET,
            **input_pipeline_record(self.input),
            "model": plain(self.model),
            "trainer_step": ctx.step.name,
        }
        return write_fit_report(ctx, model, info, fit, metric="val_loss", metric_label="loss")


def _loss(label_smoothing: float) -> Any:
    import keras
    from keras import ops

    if not label_smoothing:
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    def smoothed(y_true: Any, logits: Any) -> Any:
        classes = ops.shape(logits)[-1]
        one_hot = ops.one_hot(ops.cast(y_true, "int32"), classes)
        return keras.losses.categorical_crossentropy(
            one_hot, logits, from_logits=True, label_smoothing=label_smoothing
        )

    return smoothed


def _schedule(kind: str, peak: float, warmup: int, total: int) -> Any:
    """Linear warm-up to ``peak`` over ``warmup`` steps, then ``kind`` (see the trainer)."""
    import math

    import keras
    from keras import ops

    if (kind == "constant" or kind == "inverse_sqrt") and not warmup:
        return peak  # the inverse square root decays from the end of the warm-up

    class WarmupThenDecay(keras.optimizers.schedules.LearningRateSchedule):
        def __call__(self, step: Any) -> Any:
            step = ops.cast(step, "float32") + 1.0
            ramp = ops.minimum(step / warmup, 1.0) if warmup else 1.0
            if kind == "inverse_sqrt" and warmup:
                return peak * ops.minimum(ramp, ops.sqrt(warmup / step))
            if kind == "cosine":
                done = ops.clip((step - warmup) / max(total - warmup, 1), 0.0, 1.0)
                return peak * ramp * 0.5 * (1.0 + ops.cos(math.pi * done))
            return peak * ramp

        def get_config(self) -> dict[str, Any]:
            return {}

    return WarmupThenDecay()
