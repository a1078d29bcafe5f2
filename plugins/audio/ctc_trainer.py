"""The ``ctc_trainer`` step: fit a CTC speech model, keep the epoch best on the eval split.

Artifact (the layout of ``beamline_plugins.training.artifact``)::

    model.keras          the trained model (outputs ``logits`` and ``frames``)
    model.json           inputs (with the feature settings and the vocabulary), task
                         ``transcription``, classes (the tokens; the CTC blank is one more),
                         the input pipeline and the model params
    report/history.json  per epoch: train loss, eval loss, eval WER and CER (greedy decoding);
                         ``initial``: the eval figures of the untrained model; ``averaged``:
                         those of the average of the last epochs' weights (``average_last``)
    report/training_curve.png

A custom loop (one ``tf.function`` step, Adam, gradient clipping) because CTC needs the label
and frame lengths, which the classifier loss of ``keras_trainer`` does not take. Every epoch
reads the training split in an order (and with augmentation) drawn from ``seed`` and the epoch
number, and the model, optimizer and state are checkpointed per epoch in the run folder's
``.scratch/``: a killed run resumes after its last completed epoch with the same result.
"""

from __future__ import annotations

import math
import shutil
import time
from pathlib import Path
from typing import Any, Literal

from beamline import (
    Examples,
    Input,
    InputPipeline,
    Model,
    StepContext,
    StepResult,
    Trainer,
    param,
)
from beamline.atomic import atomic_path
from beamline.errors import PipelineError
from beamline.fingerprint import plain
from beamline_plugins.training.artifact import input_pipeline_record, write_model
from beamline_plugins.training.checkpoints import EpochCheckpoints, scratch_dir

from .ctc_model import CtcSpeech
from .speech_input import SpeechInput

BEST_WEIGHTS = "best.weights.h5"
EPOCH_WEIGHTS = "epoch-{:04d}.weights.h5"
Monitor = Literal["wer", "cer", "loss"]


class CtcTrainer(Trainer):
    """Fit a speech-to-text model with CTC loss; keep the epoch with the best eval error rate.

    Adam with gradient-norm clipping and a cosine (or constant) learning rate; after every epoch
    the eval split is decoded greedily and its WER, CER and CTC loss recorded. The weights of the
    best epoch by ``monitor`` (ties broken by eval loss) are the result; ``early_stopping``
    stops after that many epochs without a better one. With ``average_last`` the weights of the
    last epochs are averaged too (Polyak averaging, which smooths the noise of the final steps)
    and the average replaces the best epoch when its eval score is at least as good. Resumable
    after a kill (see the module docstring)."""

    name = "ctc_trainer"
    examples: Input[Examples] = param(help="the step whose examples artifact to train on")
    model: Model = param(CtcSpeech(), help="the model component (ctc_speech)")
    input: InputPipeline = param(SpeechInput(), help="the input pipeline (speech_input)")
    epochs: int = param(40, help="passes over the training split", ge=1)
    batch_size: int = param(16, help="clips per batch", ge=1)
    learning_rate: float = param(0.002, help="Adam's (peak) learning rate", gt=0)
    lr_schedule: Literal["cosine", "constant"] = param("cosine", help="learning rate over steps")
    warmup_epochs: float = param(
        0.0, help="epochs of linear warm-up to learning_rate (cosine; Transformers need it)", ge=0
    )
    clipnorm: float = param(5.0, help="gradient norm clipping (0: off)", ge=0)
    monitor: Monitor = param("wer", help="eval metric that picks the best epoch (lower is better)")
    early_stopping: int = param(
        10, help="epochs without a better eval metric before stopping (0: off)", ge=0
    )
    average_last: int = param(
        0,
        help="average the weights of the last N epochs; kept when no worse on eval (0, 1: off)",
        ge=0,
    )
    train_split: str = param("train", help="split to fit on")
    eval_split: str = param("eval", help="split that picks the best epoch ('' for none)")
    seed: int = param(0, help="seed of weights, order and augmentation")

    def run(self, ctx: StepContext) -> StepResult:
        """Fit the model and write the artifact (see the module docstring)."""
        import keras
        import tensorflow as tf

        from beamline_plugins.training.records import split_size
        from beamline_plugins.training.stable_save import fresh_names

        from .ctc import ctc_loss

        examples = ctx.input("examples")
        inputs = self.input.model_inputs(examples)
        spec = next(s for s in inputs.values() if s.get("modality") == "audio")
        vocabulary = list(spec["vocabulary"])
        keras.utils.set_random_seed(self.seed)
        with fresh_names():  # layer names as a fresh process gives them: the same model file
            model = self.model.build(inputs, len(vocabulary) + 1)
        size = split_size(examples, self.train_split)
        if not size:
            raise PipelineError(
                f"ctc_trainer: split '{self.train_split}' of step '{examples.step}' is empty"
            )
        steps = math.ceil(size / self.batch_size)
        rate: Any = self.learning_rate
        if self.lr_schedule == "cosine":
            warmup = min(round(self.warmup_epochs * steps), self.epochs * steps - 1)
            rate = keras.optimizers.schedules.CosineDecay(
                self.learning_rate if not warmup else 0.0,
                self.epochs * steps - warmup,
                warmup_target=self.learning_rate if warmup else None,
                warmup_steps=warmup,
            )
        optimizer = keras.optimizers.Adam(rate, clipnorm=self.clipnorm or None)
        optimizer.build(model.trainable_variables)

        def batches(split: str, epoch: int, training: bool) -> Any:
            return self.input.dataset(
                examples,
                split,
                inputs=inputs,
                training=training,
                batch_size=self.batch_size,
                seed=self.seed * 100_003 + epoch,
                with_ids=not training,
            )

        signature = batches(self.train_split, 0, True).element_spec

        @tf.function(input_signature=signature)
        def train_step(features: Any, labels: Any) -> Any:
            with tf.GradientTape() as tape:
                out = model(features, training=True)
                losses = ctc_loss(labels, out["logits"], out["frames"])
                loss = tf.reduce_mean(losses)
            grads = tape.gradient(loss, model.trainable_variables)
            optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
            return tf.reduce_sum(losses), tf.cast(tf.shape(losses)[0], tf.float32)

        scratch = scratch_dir(ctx, self, examples)
        checkpoints = EpochCheckpoints.of(scratch, model=model, optimizer=optimizer)
        fresh = {"epoch": 0, "epochs": [], "best": None, "best_epoch": 0, "wait": 0}
        state = checkpoints.resume(fresh)
        if state["resumed_from_epoch"]:
            ctx.log(f"resuming after epoch {state['epoch']} of {self.epochs} from {scratch}")
        began = time.perf_counter()
        if self.eval_split and "initial" not in state:  # the untrained model, for comparison
            state["initial"] = self._evaluate(model, batches(self.eval_split, 0, False), spec)
        for epoch in range(state["epoch"], self.epochs):
            if state.get("stopped"):
                break
            total = count = 0.0
            for features, labels in batches(self.train_split, epoch, True):
                loss_sum, n = train_step(features, labels)
                total, count = total + float(loss_sum), count + float(n)
            entry: dict[str, Any] = {"epoch": epoch + 1, "loss": total / max(count, 1.0)}
            if self.eval_split:
                entry.update(self._evaluate(model, batches(self.eval_split, 0, False), spec))
            state["epochs"].append(entry)
            state["epoch"] = epoch + 1
            score = [entry.get(f"val_{self.monitor}", entry["loss"]), entry.get("val_loss", 0.0)]
            if state["best"] is None or score < state["best"]:
                state.update(best=score, best_epoch=epoch + 1, wait=0)
                scratch.mkdir(parents=True, exist_ok=True)
                with atomic_path(scratch / BEST_WEIGHTS, keep_suffix=True) as tmp:
                    model.save_weights(str(tmp))
            else:
                state["wait"] += 1
            self._keep_epoch_weights(model, scratch, epoch + 1)
            if self.early_stopping and self.eval_split and state["wait"] >= self.early_stopping:
                state["stopped"] = True
            checkpoints.save(state)
            text = " ".join(f"{k} {v:.4f}" for k, v in entry.items() if k != "epoch")
            ctx.progress(epoch + 1, self.epochs, text)
        if self.average_last > 1 and self.eval_split and "averaged" not in state:
            state["averaged"] = self._average(
                model, scratch, state, batches(self.eval_split, 0, False), spec
            )
            checkpoints.save(state)
        if (scratch / BEST_WEIGHTS).exists():
            model.load_weights(str(scratch / BEST_WEIGHTS))
        return self._write(ctx, model, inputs, vocabulary, state, time.perf_counter() - began)

    def _keep_epoch_weights(self, model: Any, scratch: Path, epoch: int) -> None:
        """Save this epoch's weights for ``average_last``; drop those too old to be averaged."""
        if self.average_last < 2:
            return
        scratch.mkdir(parents=True, exist_ok=True)
        with atomic_path(scratch / EPOCH_WEIGHTS.format(epoch), keep_suffix=True) as tmp:
            model.save_weights(str(tmp))
        old = scratch / EPOCH_WEIGHTS.format(epoch - self.average_last)
        old.unlink(missing_ok=True)

    def _average(
        self, model: Any, scratch: Path, state: dict[str, Any], batches: Any, spec: dict[str, Any]
    ) -> dict[str, Any]:
        """Average the last epochs' weights; make them the best when no worse on eval."""
        last = state["epoch"]
        paths = [
            scratch / EPOCH_WEIGHTS.format(n)
            for n in range(max(1, last - self.average_last + 1), last + 1)
        ]
        paths = [p for p in paths if p.exists()]
        if len(paths) < 2:
            return {}
        total = None
        for path in paths:
            model.load_weights(str(path))
            weights = model.get_weights()
            total = (
                weights if total is None else [t + w for t, w in zip(total, weights, strict=True)]
            )
        model.set_weights([t / len(paths) for t in total])
        entry: dict[str, Any] = {"epochs": [last - len(paths) + 1, last]}
        entry.update(self._evaluate(model, batches, spec))
        score = [entry.get(f"val_{self.monitor}", 0.0), entry.get("val_loss", 0.0)]
        entry["kept"] = state["best"] is None or score <= state["best"]
        if entry["kept"]:
            with atomic_path(scratch / BEST_WEIGHTS, keep_suffix=True) as tmp:
                model.save_weights(str(tmp))
        return entry

    def _evaluate(self, model: Any, batches: Any, spec: dict[str, Any]) -> dict[str, float]:
        from beamline_plugins.sequences.metrics import char_error_rate, word_error_rate

        from .ctc import transcribe

        rows = transcribe(model, batches, spec["vocabulary"], spec["level"], spec["text_feature"])
        references = [r["reference"] for r in rows]
        hypotheses = [r["greedy"] for r in rows]
        return {
            "val_loss": sum(r["loss"] for r in rows) / max(len(rows), 1),
            "val_wer": word_error_rate(references, hypotheses),
            "val_cer": char_error_rate(references, hypotheses),
        }

    def _write(
        self,
        ctx: StepContext,
        model: Any,
        inputs: dict[str, Any],
        vocabulary: list[str],
        state: dict[str, Any],
        seconds: float,
    ) -> StepResult:
        from beamline.artifacts import write_json_atomic

        info = {
            "inputs": inputs,
            "task": "transcription",
            "classes": vocabulary,
            "label": None,
            **input_pipeline_record(self.input),
            "model": plain(self.model),
            "trainer_step": ctx.step.name,
        }
        write_model(ctx.output_dir, model, info)
        epochs = state["epochs"]
        best = next((e for e in epochs if e["epoch"] == state["best_epoch"]), {})
        averaged = state.get("averaged") or {}
        if averaged.get("kept"):
            best = {k: v for k, v in averaged.items() if k.startswith("val_")}
        report = ctx.output_dir / "report"
        report.mkdir(parents=True, exist_ok=True)
        history = {
            "epochs": epochs,
            "initial": state.get("initial", {}),
            "best_epoch": state["best_epoch"],
            "averaged": averaged,
            "stopped_early": bool(state.get("stopped")),
            "resumed_from_epoch": state["resumed_from_epoch"],
            "parameters": int(model.count_params()),
            "seconds": round(seconds, 3),
        }
        write_json_atomic(report / "history.json", history)
        if epochs:
            plot_curves(epochs, report / "training_curve.png")
        shutil.rmtree(scratch_dir(ctx, self, ctx.input("examples")), ignore_errors=True)
        metrics = {k: float(v) for k, v in best.items() if k != "epoch"}
        metrics.update(epochs=float(len(epochs)), parameters=float(model.count_params()))
        chosen = (
            f"the average of epochs {averaged['epochs'][0]}-{averaged['epochs'][1]}"
            if averaged.get("kept")
            else f"best epoch {state['best_epoch']}"
        )
        summary = (
            f"{len(epochs)} epochs, {model.count_params():,} parameters, {chosen}: "
            f"eval WER {best.get('val_wer', float('nan')):.4f}"
        )
        return StepResult(metrics=metrics, summary=summary)


def plot_curves(epochs: list[dict[str, Any]], path: Path) -> None:
    """CTC loss (train, eval) and eval WER/CER per epoch, into a PNG at ``path``."""
    from beamline_plugins.training.plots import pyplot, save_figure

    plt = pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.5))
    x = [e["epoch"] for e in epochs]
    left.plot(x, [e["loss"] for e in epochs], marker="o", label="train")
    if any("val_loss" in e for e in epochs):
        left.plot(x, [e.get("val_loss") for e in epochs], marker="o", label="eval")
    left.set_title("CTC loss")
    for metric in ("val_wer", "val_cer"):
        if any(metric in e for e in epochs):
            right.plot(x, [e.get(metric) for e in epochs], marker="o", label=metric[4:].upper())
    right.set_title("eval error rate (greedy)")
    for ax in (left, right):
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend()
    save_figure(fig, path)
