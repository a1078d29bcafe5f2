"""The ``keras_trainer`` step: fit a model from an input pipeline under a tf.distribute strategy.

Artifact::

    model.keras               the trained model (Keras format)
    model.json                model inputs, task, classes, label feature (and for a regression
                              the label's train mean and variance), input pipeline, model params
    logs/train, logs/eval     TensorBoard scalars per epoch
    report/history.json       metrics per epoch, resume and early-stopping facts
    report/training_curve.png loss and accuracy (regression: MAE and RMSE) per epoch

The task comes from the input pipeline (``task``, default classification). A classifier gets
``num_classes`` softmax outputs and reports accuracy; a regression (``table_input`` with
``task: regression``) is built with ``num_classes=0`` (one linear unit), its output is scaled to
the label's train mean and standard deviation (``models.with_target_scale``), and it reports
MAE and RMSE in the label's units. An input pipeline that feeds a regression provides, besides
the usual contract, ``label_name(examples)`` and ``target_stats(examples)`` (the label's train
mean and variance); ``table_input`` does.

Resume: a step writes into a fresh folder every run, so checkpoints live in a stable scratch
folder, ``runs/<pipeline>/.scratch/<step>-<digest of the step's params and input fingerprint>``.
Each completed epoch saves a ``tf.train.Checkpoint`` (model and optimizer, so learning-rate
schedules continue) and ``state.json`` (history, early-stopping state). A run killed mid-epoch
resumes after the last completed epoch; the folder is removed once the step completes. In a
multi-worker cluster every worker saves (collective reads), non-chief workers into
``worker-<index>/`` of the folder.

The fit is a custom loop (``beamline_plugins.keras.loop``) because Keras 3.15 ``fit`` fails under
``MultiWorkerMirroredStrategy`` on TF 2.16; the loop is the same under every strategy.
"""

from __future__ import annotations

import hashlib
import json
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
from beamline.artifacts import Artifact, write_json_atomic
from beamline.errors import PipelineError
from beamline.fingerprint import plain

from .inputs import ImageInput, split_size
from .records import label_info
from .strategy import StrategyName

EPOCH_METRICS = ("loss", "accuracy", "mae", "rmse")
MODEL_FILE = "model.keras"
MODEL_INFO = "model.json"
SCRATCH_DIR = ".scratch"


class KerasTrainer(Trainer):
    """Fit a Keras classifier or regression with checkpoints, resume, early stopping, TensorBoard.

    Runs a distributed custom training loop under the chosen ``tf.distribute`` strategy (auto:
    multi-worker from TF_CONFIG, TPU, several GPUs mirrored, else default), with optional mixed
    precision. An interrupted fit resumes from its last completed epoch."""

    name = "keras_trainer"
    examples: Input[Examples] = param(help="the step whose examples artifact to train on")
    model: Model = param(help="the model component to build and fit")
    input: InputPipeline = param(ImageInput(), help="the input pipeline component")
    epochs: int = param(10, help="passes over the training split", ge=1)
    batch_size: int = param(32, help="global batch size (split across replicas)", ge=1)
    optimizer: Literal["adam", "sgd"] = param("adam", help="adam, or sgd with momentum")
    momentum: float = param(0.9, help="momentum of sgd", ge=0, lt=1)
    learning_rate: float = param(0.001, help="initial learning rate", gt=0)
    lr_schedule: Literal["constant", "cosine", "exponential"] = param(
        "constant", help="constant; cosine decay to 0 over the fit; exponential per epoch"
    )
    decay_rate: float = param(0.9, help="factor per epoch of the exponential schedule", gt=0, le=1)
    loss: Literal["auto", "crossentropy", "focal", "mse", "mae", "huber"] = param(
        "auto",
        help="auto: crossentropy for a classifier, mse for a regression; focal (classification); "
        "mae, huber (regression)",
    )
    label_smoothing: float = param(0.0, help="label smoothing of a classification loss", ge=0, lt=1)
    huber_delta: float = param(1.0, help="huber loss: where it turns linear (in label units)", gt=0)
    early_stopping: int = param(
        0, help="epochs without eval-loss gain before stopping (0: off)", ge=0
    )
    restore_best: bool = param(True, help="with early stopping, keep the best epoch's weights")
    train_split: str = param("train", help="split to fit on")
    eval_split: str = param("eval", help="split evaluated after each epoch ('' for none)")
    strategy: StrategyName = param("auto", help="auto, default, mirrored, multi_worker or tpu")
    cpu_devices: int = param(
        0, help="split the CPU into this many logical devices (for mirrored)", ge=0
    )
    mixed_precision: bool = param(False, help="compute in float16 (GPU) or bfloat16 (CPU, TPU)")
    seed: int = param(0, help="seed of weights, shuffling and augmentation")
    steps_per_execution: int = param(
        16, help="training steps per graph call (as Keras'; 1: one call per batch)", ge=1
    )

    def run(self, ctx: StepContext) -> StepResult:
        """Fit the model and write the artifact (see the module docstring)."""
        examples = ctx.input("examples")
        return _fit(self, ctx, examples)


def scratch_dir(ctx: StepContext, component: Any, examples: Artifact) -> Path:
    """The stable checkpoint folder of this step: same params and input -> same folder."""
    payload = json.dumps(
        {"step": ctx.step.name, "params": plain(component), "examples": examples.fingerprint},
        sort_keys=True,
        default=str,
    )
    digest = hashlib.sha256(payload.encode()).hexdigest()[:16]
    return ctx.run.path.parent / SCRATCH_DIR / f"{ctx.step.name}-{digest}"


def _optimizer(trainer: KerasTrainer, steps_per_epoch: int, policy: str) -> Any:
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


def _fit(trainer: KerasTrainer, ctx: StepContext, examples: Artifact) -> StepResult:
    if trainer.cpu_devices > 1:
        from .strategy import split_cpu

        problem = split_cpu(trainer.cpu_devices)
        if problem:
            ctx.log(problem)
    import keras

    from .strategy import is_chief, make_strategy, mixed_precision_policy, worker_index

    strategy, strategy_name = make_strategy(trainer.strategy)
    previous_policy = keras.mixed_precision.global_policy().name
    policy = mixed_precision_policy(strategy_name) if trainer.mixed_precision else "float32"
    keras.mixed_precision.set_global_policy(policy)
    try:
        scratch = scratch_dir(ctx, trainer, examples)
        if not is_chief(strategy):
            scratch = scratch / f"worker-{worker_index()}"
        return _fit_under(trainer, ctx, examples, strategy, strategy_name, policy, scratch)
    finally:
        keras.mixed_precision.set_global_policy(previous_policy)


def _fit_under(
    trainer: KerasTrainer,
    ctx: StepContext,
    examples: Artifact,
    strategy: Any,
    strategy_name: str,
    policy: str,
    scratch: Path,
) -> StepResult:
    import keras
    import tensorflow as tf

    from .loop import Primer, make_loss, make_steps, run_epoch, trace_ahead, training_stream
    from .models import with_target_scale
    from .report import plot_history

    task = task_of(trainer.input)
    loss_kind = resolve_loss(trainer.loss, task)
    target: dict[str, float] | None = None
    if task == "regression":
        label, classes = trainer.input.label_name(examples), []
        target = trainer.input.target_stats(examples)
    else:
        label, classes = label_info(examples)
    inputs = trainer.input.model_inputs(examples)
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA

    # Multi-worker sharding splits every epoch's batches between the workers, so there each
    # epoch is one pass over the worker's shard; elsewhere one iterator over the repeated data
    # keeps prefetching across epoch boundaries.
    continuous = strategy_name != "multi_worker"

    def distributed(split: str, training: bool) -> Any:
        ds = trainer.input.dataset(
            examples,
            split,
            inputs=inputs,
            training=training,
            batch_size=trainer.batch_size,
            seed=trainer.seed,
        )
        if training and continuous:
            ds = training_stream(ds, trainer.steps_per_execution)
        if strategy_name == "default":
            return ds
        return strategy.experimental_distribute_dataset(ds.with_options(options))

    train_ds = distributed(trainer.train_split, True)
    # The input pipeline starts filling while the model is built and the checkpoint restored.
    train_batches = iter(train_ds) if continuous else None
    primer = Primer(train_batches) if continuous else None
    eval_ds = distributed(trainer.eval_split, False) if _has_split(examples, trainer) else None
    train_count = split_size(examples, trainer.train_split)
    steps_per_epoch = max(1, math.ceil(train_count / trainer.batch_size))

    with strategy.scope():
        keras.utils.set_random_seed(trainer.seed)
        model = trainer.model.build(inputs, len(classes))
        if target is not None:
            if tuple(model.output.shape[1:]) != (1,):
                raise PipelineError(
                    f"model '{trainer.model.name}' has output shape {model.output.shape}; a "
                    "regression needs one output unit (use linear_regression or mlp)"
                )
            model = with_target_scale(model, target["mean"], target["variance"])
        optimizer = _optimizer(trainer, steps_per_epoch, policy)
        optimizer.build(model.trainable_variables)
    loss_fn = make_loss(loss_kind, len(classes), trainer.label_smoothing, trainer.huber_delta)
    train_step, eval_step = make_steps(strategy, model, optimizer, loss_fn, task)
    checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer)
    ckpt_dir = scratch / "checkpoints"
    manager = tf.train.CheckpointManager(checkpoint, str(ckpt_dir), max_to_keep=2)
    best_weights = scratch / "best.weights.h5"

    state = read_state(scratch)
    start = 0
    if state and (ckpt_dir / f"ckpt-{state['epoch']}.index").exists():
        try:
            checkpoint.restore(
                str(ckpt_dir / f"ckpt-{state['epoch']}")
            ).assert_existing_objects_matched()
        except (AssertionError, ValueError, tf.errors.OpError) as exc:
            raise PipelineError(
                f"cannot resume from {scratch}: {exc}; delete that folder to start over"
            ) from exc
        start = int(state["epoch"])
        ctx.log(f"resuming after epoch {start} of {trainer.epochs} from {scratch}")
    else:
        state = {"epoch": 0, "history": [], "best": None, "best_epoch": 0, "wait": 0}
    state["resumed_from_epoch"] = start

    logs = ctx.output_dir / "logs"
    writers = {"train": tf.summary.create_file_writer(str(logs / "train"))}
    if eval_ds is not None:
        writers["eval"] = tf.summary.create_file_writer(str(logs / "eval"))
    stopped_early = False
    if primer is not None:
        trace_ahead(train_step, train_batches)
    first = primer.batch() if primer is not None else None
    for epoch in range(start + 1, trainer.epochs + 1):
        if trainer.early_stopping and state["wait"] >= trainer.early_stopping:
            stopped_early = True
            break
        began = time.perf_counter()
        if continuous:
            train = run_epoch(
                train_step,
                train_batches,
                steps_per_epoch,
                task,
                trainer.steps_per_execution,
                first=first,
            )
            first = None
        else:
            train = run_epoch(train_step, train_ds, task=task)
        record: dict[str, Any] = {"epoch": epoch, **_epoch_metrics(train, task)}
        record["learning_rate"] = float(tf.convert_to_tensor(optimizer.learning_rate).numpy())
        if eval_ds is not None:
            evaluated = run_epoch(eval_step, eval_ds, task=task)
            record.update({f"val_{k}": v for k, v in _epoch_metrics(evaluated, task).items()})
        record["seconds"] = round(time.perf_counter() - began, 3)
        state["history"].append(record)
        _write_summaries(writers, record)
        monitored = record.get("val_loss", record["loss"])
        if state["best"] is None or monitored < state["best"]:
            state.update(best=monitored, best_epoch=epoch, wait=0)
            if trainer.early_stopping and trainer.restore_best:
                scratch.mkdir(parents=True, exist_ok=True)
                model.save_weights(str(best_weights))
        else:
            state["wait"] += 1
        state["epoch"] = epoch
        manager.save(checkpoint_number=epoch)
        write_json_atomic(scratch / "state.json", state)
        ctx.progress(epoch, trainer.epochs, _progress_text(record))
    restored = stopped_early and trainer.restore_best and best_weights.exists()
    if restored:
        model.load_weights(str(best_weights))
        ctx.log(f"stopped early; keeping the weights of epoch {state['best_epoch']}")

    model.save(str(ctx.output_dir / MODEL_FILE))
    info = {
        "inputs": inputs,
        "task": task,
        "classes": classes,
        "label": label,
        "loss": loss_kind,
        "input_pipeline": plain(trainer.input),
        "model": plain(trainer.model),
        "trainer_step": ctx.step.name,
    }
    if target is not None:
        info["target"] = target
    write_json_atomic(ctx.output_dir / MODEL_INFO, info)
    history = {
        "epochs": state["history"],
        "resumed_from_epoch": state["resumed_from_epoch"],
        "stopped_early": stopped_early,
        "best_epoch": state["best_epoch"],
        "restored_best_weights": restored,
        "strategy": strategy_name,
        "replicas": int(strategy.num_replicas_in_sync),
        "precision_policy": policy,
    }
    report = ctx.output_dir / "report"
    report.mkdir(parents=True, exist_ok=True)
    write_json_atomic(report / "history.json", history)
    if state["history"]:
        plot_history(state["history"], report / "training_curve.png")
    shutil.rmtree(scratch, ignore_errors=True)
    last = state["history"][-1] if state["history"] else {}
    if restored:
        last = state["history"][state["best_epoch"] - 1]  # the metrics of the weights kept
    metrics = {k: float(v) for k, v in last.items() if k not in ("epoch", "seconds")}
    metrics["epochs"] = float(len(state["history"]))
    return StepResult(metrics=metrics, summary=_progress_text(last) if last else "no epochs run")


def task_of(pipeline: Any) -> str:
    """The task an input pipeline feeds: ``regression`` or ``classification`` (the default)."""
    task = getattr(pipeline, "task", "classification")
    if task not in ("classification", "regression"):
        raise PipelineError(f"input pipeline '{pipeline.name}': unknown task '{task}'")
    return str(task)


def resolve_loss(loss: str, task: str) -> str:
    """The loss to fit with: ``auto`` resolved for the task, and a loss that fits the task."""
    from .loop import CLASSIFICATION_LOSSES, REGRESSION_LOSSES

    if loss == "auto":
        return "mse" if task == "regression" else "crossentropy"
    allowed = REGRESSION_LOSSES if task == "regression" else CLASSIFICATION_LOSSES
    if loss not in allowed:
        raise PipelineError(
            f"keras_trainer: loss '{loss}' does not fit a {task} (use one of "
            f"{', '.join(allowed)}, or auto)"
        )
    return loss


def _epoch_metrics(metrics: Any, task: str) -> dict[str, float]:
    if task == "regression":
        return {"loss": metrics.mean_loss, "mae": metrics.mae, "rmse": metrics.rmse}
    return {"loss": metrics.mean_loss, "accuracy": metrics.accuracy}


def _has_split(examples: Artifact, trainer: KerasTrainer) -> bool:
    if not trainer.eval_split:
        return False
    from beamline.examples import example_files

    try:
        example_files(examples, trainer.eval_split)
    except FileNotFoundError:
        return False
    return True


def read_state(scratch: Path) -> dict[str, Any] | None:
    """The resume state saved in ``scratch`` (``state.json``); None when absent or unreadable."""
    path = scratch / "state.json"
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        return None


def _write_summaries(writers: dict[str, Any], record: dict[str, Any]) -> None:
    import tensorflow as tf

    step = record["epoch"]
    with writers["train"].as_default():
        for key in (*EPOCH_METRICS, "learning_rate"):
            if key in record:
                tf.summary.scalar(key, record[key], step=step)
    if "eval" in writers:
        with writers["eval"].as_default():
            for key in EPOCH_METRICS:
                if f"val_{key}" in record:
                    tf.summary.scalar(key, record[f"val_{key}"], step=step)
    for writer in writers.values():
        writer.flush()


def _progress_text(record: dict[str, Any]) -> str:
    if "accuracy" in record:
        text = f"loss {record['loss']:.4f} accuracy {record['accuracy']:.3f}"
        if "val_loss" in record:
            text += f" val_loss {record['val_loss']:.4f} val_accuracy {record['val_accuracy']:.3f}"
        return text
    text = f"loss {record['loss']:.4f} mae {record['mae']:.4g} rmse {record['rmse']:.4g}"
    if "val_loss" in record:
        text += (
            f" val_loss {record['val_loss']:.4f} val_mae {record['val_mae']:.4g} "
            f"val_rmse {record['val_rmse']:.4g}"
        )
    return text


def trained_model(ctx: StepContext, name: str) -> tuple[Artifact, dict[str, Any], Any]:
    """The trainer artifact named by parameter ``name``, its ``model.json`` and input pipeline.

    The input pipeline is the trainer step's own component in this pipeline, so evaluation and
    export preprocess exactly as training did."""
    artifact = ctx.input(name)
    info_path = artifact.file(MODEL_INFO)
    if not info_path.is_file() or not artifact.file(MODEL_FILE).is_file():
        raise PipelineError(
            f"step '{artifact.step}' is not a keras_trainer step (no {MODEL_INFO}/{MODEL_FILE})"
        )
    info = json.loads(info_path.read_text(encoding="utf-8"))
    trainer = ctx.spec.step(artifact.step).component
    pipeline = getattr(trainer, "input", None)
    if pipeline is None or not hasattr(pipeline, "serving"):
        raise PipelineError(f"step '{artifact.step}' has no input pipeline this step can reuse")
    return artifact, info, pipeline


def load_keras_model(artifact: Artifact) -> Any:
    """Load the trained ``model.keras`` of a trainer artifact (without its training config)."""
    import keras

    return keras.saving.load_model(str(artifact.file(MODEL_FILE)), compile=False)
