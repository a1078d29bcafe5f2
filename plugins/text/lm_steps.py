"""Steps of the language model: ``lm_trainer`` (fit) and ``lm_evaluator`` (perplexity, samples).

The trainer writes the layout of ``keras_trainer`` (``model.keras``, ``model.json`` with the
inputs and, as ``classes``, the vocabulary; ``report/history.json`` and the training curve), so
``saved_model_exporter`` exports the model unchanged: its signature takes a raw prompt and
returns next-token scores per position and the most likely next token (``label``).

The evaluator reports the model's perplexity on the test split next to a unigram baseline
(token frequencies of the train split's targets, add-one smoothed over the same vocabulary)
and writes temperature samples (seeded) to ``report/samples.txt``.
"""

from __future__ import annotations

import math
import shutil
import time
from pathlib import Path
from typing import Any, Literal

from beamline import (
    Evaluator,
    Examples,
    Input,
    InputPipeline,
    Model,
    StepContext,
    StepResult,
    TrainedModel,
    Trainer,
    param,
)
from beamline.artifacts import write_json_atomic
from beamline.atomic import atomic_path
from beamline.errors import PipelineError
from beamline.fingerprint import plain
from beamline_plugins.training.artifact import (
    input_pipeline_record,
    load_keras_model,
    trained_model,
    write_model,
)
from beamline_plugins.training.checkpoints import read_state, scratch_dir, write_state
from beamline_plugins.training.loop import epoch_stream
from beamline_plugins.training.records import epoch_seed, one_pass

from .lm_input import LmInput
from .models import LanguageModel

CHECKPOINT = "checkpoint.keras"
BEST_WEIGHTS = "best.weights.h5"


class LmTrainer(Trainer):
    """Fit a language model on next-token windows with Adam, early stopping on the eval split.

    The loss is the mean cross-entropy of the non-padding target tokens; with
    ``early_stopping`` the weights of the epoch with the lowest eval loss are kept. Training is
    checkpointed after every epoch (model, optimizer, early-stopping state) in the run folder's
    ``.scratch/``: a killed run resumes after its last completed epoch and ends with exactly the
    weights of an uninterrupted run (each epoch's windows drawn from ``epoch_seed``, the dropout
    generator states kept in ``state.json``; ``tests/test_keras_resume.py``). Keras ``fit`` runs
    under ``strategy`` (mirrored over GPUs, or over ``cpu_devices`` logical CPUs; a TPU); Keras
    3.15's ``fit`` fails under TF 2.16's multi-worker strategy, so that one is not offered here."""

    name = "lm_trainer"
    examples: Input[Examples] = param(help="the step whose examples artifact to train on")
    model: Model = param(LanguageModel(), help="the language model component")
    input: InputPipeline = param(LmInput(), help="the input pipeline (lm_input)")
    epochs: int = param(10, help="passes over the training windows", ge=1)
    batch_size: int = param(64, help="windows per batch", ge=1)
    learning_rate: float = param(0.003, help="Adam learning rate", gt=0)
    clipnorm: float = param(1.0, help="gradient norm clipping (0: off)", ge=0)
    early_stopping: int = param(
        2, help="epochs without eval-loss gain before stopping (0: off)", ge=0
    )
    train_split: str = param("train", help="split to fit on")
    eval_split: str = param("eval", help="split for early stopping ('' for none)")
    seed: int = param(0, help="seed of weights and shuffling")
    strategy: Literal["auto", "default", "mirrored", "tpu"] = param(
        "auto", help="tf.distribute strategy of Keras fit (auto: mirrored on several GPUs)"
    )
    cpu_devices: int = param(
        0, help="split the CPU into this many logical devices (mirrored)", ge=0
    )

    def run(self, ctx: StepContext) -> StepResult:
        """Fit the model and write the artifact (see the module docstring)."""
        from beamline_plugins.training.strategy import make_strategy, split_cpu

        if self.cpu_devices > 1:
            problem = split_cpu(self.cpu_devices)
            if problem:
                raise PipelineError(f"lm_trainer: {problem}")
        strategy, _ = make_strategy(self.strategy)
        with strategy.scope():
            return self._fit(ctx)

    def _fit(self, ctx: StepContext) -> StepResult:
        import keras

        from beamline_plugins.training.plots import plot_history

        examples = ctx.input("examples")
        inputs = self.input.model_inputs(examples)
        ((_, spec),) = inputs.items()
        keras.utils.set_random_seed(self.seed)
        model = self.model.build(inputs, int(spec["vocab_size"]))
        optimizer = keras.optimizers.Adam(self.learning_rate, clipnorm=self.clipnorm or None)
        model.compile(
            optimizer=optimizer,
            loss=keras.losses.SparseCategoricalCrossentropy(),
            weighted_metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
        )

        def data(split: str, training: bool, seed: int = self.seed) -> Any:
            return self.input.dataset(
                examples,
                split,
                inputs=inputs,
                training=training,
                batch_size=self.batch_size,
                seed=seed,
            )

        eval_ds = data(self.eval_split, False) if self.eval_split else None
        scratch = scratch_dir(ctx, self, examples)
        state = read_state(scratch)
        if state is not None and not (scratch / CHECKPOINT).exists():
            state = None  # a state without the checkpoint it describes
        if state is not None:
            model = keras.models.load_model(scratch / CHECKPOINT)  # weights and optimizer state
            restore_generator_states(model, state.get("generator_states", []))
            ctx.log(f"resuming after epoch {state['epoch']} of {self.epochs} from {scratch}")
        else:
            state = {"epoch": 0, "epochs": [], "best_loss": None, "best_epoch": 0, "wait": 0}
        resumed_from = state["epoch"]
        callbacks: list[Any] = [
            _Progress(ctx, self.epochs),
            _Checkpoints(scratch, state, self.early_stopping if eval_ds is not None else 0),
        ]
        began = time.perf_counter()
        if state["epoch"] < self.epochs and not state.get("stopped"):
            # Each epoch's windows in an order drawn from (seed, epoch); with steps_per_epoch
            # Keras keeps one iterator over the remaining epochs' stream.
            remaining = range(state["epoch"] + 1, self.epochs + 1)
            with one_pass():  # each epoch's windows are read once: no cache to fill
                epochs = [data(self.train_split, True, epoch_seed(self.seed, e)) for e in remaining]
            stream = epoch_stream(epochs, 1)
            model.fit(
                stream,
                steps_per_epoch=_batches(data(self.train_split, False)),
                validation_data=eval_ds,
                epochs=self.epochs,
                initial_epoch=state["epoch"],
                callbacks=callbacks,
                shuffle=False,  # the input pipeline shuffles (seeded)
                verbose=0,
            )
        stopped_early = bool(state.get("stopped"))
        if stopped_early and (scratch / BEST_WEIGHTS).exists():
            model.load_weights(scratch / BEST_WEIGHTS)
        epochs = state["epochs"]
        info = {
            "inputs": inputs,
            "classes": spec["vocabulary"],
            "label": None,
            **input_pipeline_record(self.input),
            "model": plain(self.model),
            "trainer_step": ctx.step.name,
        }
        write_model(ctx.output_dir, model, info)
        best = min(epochs, key=lambda e: e.get("val_loss", e["loss"])) if epochs else {}
        report = ctx.output_dir / "report"
        report.mkdir(parents=True, exist_ok=True)
        history = {
            "epochs": epochs,
            "stopped_early": stopped_early,
            "best_epoch": best.get("epoch", 0),
            "restored_best_weights": stopped_early,
            "resumed_from_epoch": resumed_from,
            "seconds": round(time.perf_counter() - began, 3),
        }
        write_json_atomic(report / "history.json", history)
        if epochs:
            plot_history(epochs, report / "training_curve.png")
        metrics = {k: float(v) for k, v in best.items() if k != "epoch"}
        metrics["epochs"] = float(len(epochs))
        summary = f"{len(epochs)} epochs, best eval loss {best.get('val_loss', float('nan')):.4f}"
        shutil.rmtree(scratch, ignore_errors=True)
        return StepResult(metrics=metrics, summary=summary)


def _batches(ds: Any) -> int:
    """How many batches one pass over ``ds`` yields."""
    return int(ds.reduce(0, lambda count, _: count + 1))


def generator_states(model: Any) -> list[list[int]]:
    """The dropout layers' random-generator states of ``model`` (a ``.keras`` file does not
    keep them: a resumed fit would draw other dropout masks)."""
    return [v.numpy().tolist() for v in model.variables if "seed_generator_state" in v.path]


def restore_generator_states(model: Any, states: list[list[int]]) -> None:
    """Put back the random-generator states ``generator_states`` saved."""
    found = [v for v in model.variables if "seed_generator_state" in v.path]
    for variable, value in zip(found, states, strict=False):
        variable.assign(value)


def _progress_callback_base() -> Any:
    import keras

    return keras.callbacks.Callback


class _Checkpoints:
    """A Keras callback (built lazily) that makes training resumable and stops it early.

    At each epoch end it saves the model with its optimizer state (``checkpoint.keras``), the
    best weights so far (``best.weights.h5``, by eval loss) and then ``state.json`` (epoch,
    history, early-stopping counters), each written whole before it replaces the last one; a run
    killed at any moment resumes after its last completed epoch with the same early stopping."""

    def __new__(cls, scratch: Path, state: dict[str, Any], patience: int) -> Any:
        base = _progress_callback_base()

        class Checkpoints(base):  # type: ignore[misc, valid-type]
            def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
                logs = {k: float(v) for k, v in (logs or {}).items()}
                state["epochs"].append({"epoch": epoch + 1, **logs})
                state["epoch"] = epoch + 1
                scratch.mkdir(parents=True, exist_ok=True)
                loss = logs.get("val_loss", logs.get("loss"))
                if loss is not None and (state["best_loss"] is None or loss < state["best_loss"]):
                    state.update(best_loss=loss, best_epoch=epoch + 1, wait=0)
                    _save_atomic(self.model.save_weights, scratch / BEST_WEIGHTS)
                else:
                    state["wait"] += 1
                if patience and state["wait"] >= patience:
                    state["stopped"] = True
                    self.model.stop_training = True
                _save_atomic(self.model.save, scratch / CHECKPOINT)
                state["generator_states"] = generator_states(self.model)
                write_state(scratch, state)

        return Checkpoints()


def _save_atomic(save: Any, path: Path) -> None:
    with atomic_path(path, keep_suffix=True) as tmp:  # Keras checks the suffix
        save(str(tmp))


class _Progress:
    """A Keras callback (built lazily) that reports epochs done to the step's progress."""

    def __new__(cls, ctx: StepContext, epochs: int) -> Any:
        base = _progress_callback_base()

        class Progress(base):  # type: ignore[misc, valid-type]
            def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
                logs = logs or {}
                text = " ".join(f"{k} {v:.4f}" for k, v in sorted(logs.items()))
                ctx.progress(epoch + 1, epochs, text)

        return Progress()


class LmEvaluator(Evaluator):
    """Evaluate a language model: test perplexity against a unigram baseline, and samples.

    The unigram baseline counts the train split's target tokens with add-one smoothing over the
    same vocabulary; both perplexities are over the same test tokens. ``thresholds`` bound
    metrics (a maximum for ``perplexity`` and ``perplexity_ratio``, the model's perplexity
    divided by the baseline's, a minimum for others); the model is blessed when all hold.
    ``samples`` texts generated by temperature sampling (seeded) go to report/samples.txt."""

    name = "lm_evaluator"
    model: Input[TrainedModel] = param(help="the lm_trainer step whose model to evaluate")
    examples: Input[Examples] = param(help="the step whose examples artifact to evaluate on")
    split: str = param("test", help="split to evaluate")
    baseline_split: str = param("train", help="split the unigram baseline is estimated from")
    batch_size: int = param(64, help="windows per batch", ge=1)
    thresholds: dict[str, float] = param({}, help="e.g. {perplexity_ratio: 0.8}")
    samples: int = param(5, help="texts to generate", ge=0)
    sample_length: int = param(150, help="most tokens per generated text", ge=1)
    temperature: float = param(0.8, help="sampling temperature (lower: more conservative)", gt=0)
    prompt: str = param("", help="text every sample starts with")
    seed: int = param(0, help="seed of the sampling")

    def run(self, ctx: StepContext) -> StepResult:
        """Compute perplexities, generate samples, decide the blessing, write the artifact."""
        import numpy as np

        artifact, info, pipeline = trained_model(ctx, "model")
        examples = ctx.input("examples")
        model = load_keras_model(artifact)
        inputs = info["inputs"]
        ((_, spec),) = inputs.items()
        size = int(spec["vocab_size"])

        def batches(split: str) -> Any:
            return pipeline.dataset(
                examples, split, inputs=inputs, training=False, batch_size=self.batch_size
            )

        counts = np.zeros(size, np.float64)
        for _, targets, weights in batches(self.baseline_split):
            kept = targets.numpy()[weights.numpy() > 0]
            counts += np.bincount(kept, minlength=size)
        smoothed = counts + 1.0
        smoothed[0] = 0.0  # [PAD] is never a target
        unigram = smoothed / smoothed.sum()
        model_nll = unigram_nll = 0.0
        tokens = 0
        correct = 0
        for features, targets, weights in batches(self.split):
            probs = np.asarray(model(features, training=False), np.float64)
            y = targets.numpy()
            keep = weights.numpy() > 0
            picked = np.take_along_axis(probs, y[..., None], axis=-1)[..., 0]
            model_nll -= float(np.log(np.clip(picked[keep], 1e-12, 1.0)).sum())
            unigram_nll -= float(np.log(unigram[y[keep]]).sum())
            correct += int((probs.argmax(-1) == y)[keep].sum())
            tokens += int(keep.sum())
        if not tokens:
            raise PipelineError(f"split '{self.split}' of step '{examples.step}' has no tokens")
        perplexity = math.exp(model_nll / tokens)
        baseline = math.exp(unigram_nll / tokens)
        metrics = {
            "perplexity": perplexity,
            "unigram_perplexity": baseline,
            "perplexity_ratio": perplexity / baseline,
            "cross_entropy": model_nll / tokens,
            "bits_per_token": model_nll / tokens / math.log(2),
            "token_accuracy": correct / tokens,
            "tokens": float(tokens),
            "baseline_tokens": float(counts.sum()),
        }
        write_json_atomic(ctx.output_dir / "metrics.json", {**metrics, "split": self.split})
        texts = generate(model, pipeline, inputs, self)
        report = ctx.output_dir / "report"
        report.mkdir(parents=True, exist_ok=True)
        header = (
            f"# {len(texts)} samples, temperature {self.temperature}, seed {self.seed}, "
            f"prompt {self.prompt!r}\n"
        )
        body = "".join(f"--- sample {i + 1}\n{t}\n" for i, t in enumerate(texts))
        (report / "samples.txt").write_text(header + body, encoding="utf-8")
        reasons = _check(metrics, self.thresholds)
        blessing = {"blessed": not reasons, "reasons": reasons, "thresholds": self.thresholds}
        write_json_atomic(ctx.output_dir / "blessing.json", blessing)
        verdict = "blessed" if not reasons else "not blessed: " + "; ".join(reasons)
        ctx.log(verdict)
        summary = f"{self.split} perplexity {perplexity:.3f} vs unigram {baseline:.3f} ({verdict})"
        return StepResult(metrics={**metrics, "blessed": float(not reasons)}, summary=summary)


def _check(metrics: dict[str, float], thresholds: dict[str, float]) -> list[str]:
    reasons = []
    for name, bound in thresholds.items():
        if name not in metrics:
            raise PipelineError(f"thresholds: unknown metric '{name}' (metrics: {list(metrics)})")
        value = metrics[name]
        upper = name.startswith("perplexity") or name in ("cross_entropy", "bits_per_token")
        if upper and value > bound:
            reasons.append(f"{name} {value:.4f} > {bound}")
        elif not upper and value < bound:
            reasons.append(f"{name} {value:.4f} < {bound}")
    return reasons


def generate(
    model: Any, pipeline: Any, inputs: dict[str, Any], evaluator: LmEvaluator
) -> list[str]:
    """Sample ``evaluator.samples`` texts from ``model`` (temperature sampling, seeded)."""
    import numpy as np
    import tensorflow as tf

    ((name, spec),) = inputs.items()
    vocabulary, eos = spec["vocabulary"], int(spec["eos_id"])
    _, preprocess = pipeline.serving(inputs)
    prompt = preprocess({name: tf.constant([evaluator.prompt] * evaluator.samples)})[name]
    ids = prompt.numpy()
    rng = np.random.default_rng(evaluator.seed)
    done = np.zeros(len(ids), bool)
    generated: list[list[int]] = [[] for _ in ids]
    for _ in range(evaluator.sample_length):
        probs = np.asarray(model({name: ids}, training=False)[:, -1, :], np.float64)
        probs[:, 0] = 0.0  # never [PAD]
        logits = np.log(np.clip(probs, 1e-12, 1.0)) / max(evaluator.temperature, 1e-3)
        weights = np.exp(logits - logits.max(axis=1, keepdims=True))
        weights /= weights.sum(axis=1, keepdims=True)
        picks = np.array([rng.choice(len(row), p=row) for row in weights])
        for i, pick in enumerate(picks):
            if not done[i]:
                if pick == eos:
                    done[i] = True
                else:
                    generated[i].append(int(pick))
        if done.all():
            break
        ids = np.concatenate([ids, picks[:, None].astype(ids.dtype)], axis=1)
    joiner = "" if spec["level"] == "char" else " "
    return [evaluator.prompt + joiner.join(vocabulary[t] for t in row) for row in generated]
