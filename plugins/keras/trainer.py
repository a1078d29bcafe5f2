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

Resume (``beamline_plugins.training.checkpoints``): checkpoints live in a stable scratch folder,
``runs/<pipeline>/.scratch/<step>-<digest of the step's params and input fingerprint>``. Each
completed epoch saves a ``tf.train.Checkpoint`` (model and optimizer, so learning-rate
schedules continue) and ``state.json`` (history, early-stopping state). A run killed mid-epoch
resumes after the last completed epoch; the folder is removed once the step completes. The resume
is exact (a killed and rerun fit ends with the weights of an uninterrupted one, on the same
machine): each epoch's training data is built from ``epoch_seed(seed, epoch)`` (order and
augmentation a function of seed and epoch), the checkpoint holds every model variable (batch-norm
statistics and the dropout layers' random-generator states included) and the optimizer's, and
the best weights are written whole before they replace the last. In a
multi-worker cluster every worker saves (collective reads), non-chief workers into
``worker-<index>/`` of the folder.

Warm start (``beamline_plugins.training.warm_start``): ``warm_start: {from: STEP_OR_PATH,
freeze: [patterns], strict: true}`` starts from the weights of an earlier trainer step's model, an
export or a model file instead of a fresh initialisation; ``model.json`` and
``report/history.json`` record what was loaded, skipped and frozen, and the parent model enters
the step's fingerprint (another parent reruns the fit).

The fit is a custom loop (``beamline_plugins.training.loop``) because Keras 3.15 ``fit`` fails under
``MultiWorkerMirroredStrategy`` on TF 2.16; the loop is the same under every strategy.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from beamline import (
    Examples,
    ExportedModel,
    Input,
    InputPipeline,
    Model,
    StepContext,
    StepResult,
    TrainedModel,
    Trainer,
    param,
)
from beamline.artifacts import Artifact, write_json_atomic
from beamline.atomic import atomic_path
from beamline.errors import PipelineError
from beamline.fingerprint import plain
from beamline_plugins.training.artifact import input_pipeline_record, write_model
from beamline_plugins.training.checkpoints import EpochCheckpoints, scratch_dir
from beamline_plugins.training.image_input import ImageInput
from beamline_plugins.training.strategy import StrategyName

from .epoch_log import epoch_metrics, progress_text, summary_writers, write_summaries
from .fit_data import FitData, prepare_data
from .fit_options import make_optimizer

BEST_WEIGHTS = "best.weights.h5"


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
    member_losses: bool = param(
        False,
        help="an ensemble model (members scores_0, scores_1, ... averaged into scores): train "
        "each member on its own loss (independent members) instead of on their average's",
    )
    train_split: str = param("train", help="split to fit on")
    eval_split: str = param("eval", help="split evaluated after each epoch ('' for none)")
    strategy: StrategyName = param("auto", help="auto, default, mirrored, multi_worker or tpu")
    cpu_devices: int = param(
        0, help="split the CPU into this many logical devices (for mirrored)", ge=0
    )
    mixed_precision: bool = param(False, help="compute in float16 (GPU) or bfloat16 (CPU, TPU)")
    seed: int = param(0, help="seed of weights, shuffling and augmentation")
    deterministic_ops: bool = param(
        False,
        help="turn on TensorFlow's op determinism for the process (GPU kernels too; a seed "
        "must be set for every random op after it)",
    )
    steps_per_execution: int = param(
        16,
        help="steps per graph call, training and evaluation (as Keras'; 1: one call per batch)",
        ge=1,
    )
    warm_start: dict[str, Input[TrainedModel, ExportedModel] | str | bool | list[str]] = param(
        {},
        help="start from an earlier model's weights: {from: STEP or PATH (trainer step folder, "
        ".keras file, export), freeze: [layer names or patterns], strict: true}",
    )

    def check(self) -> None:
        """Check the ``warm_start`` mapping's keys and values."""
        super().check()
        from beamline_plugins.training.warm_start import parse

        parse(self.warm_start, self.name)

    def data_fingerprint(self, ctx: StepContext) -> str | None:
        """The digest of the warm-start model's weight files when ``warm_start.from`` is a path
        (a step's model enters through its fingerprint instead); None without one."""
        from beamline_plugins.training import warm_start

        spec = warm_start.parse(self.warm_start, self.name)
        if spec is None or spec.from_step:
            return None
        return warm_start.source_digest(warm_start.locate(ctx, spec))

    def run(self, ctx: StepContext) -> StepResult:
        """Fit the model and write the artifact (see the module docstring)."""
        examples = ctx.input("examples")
        return _fit(self, ctx, examples)


@dataclass
class _Fitting:
    """The model being fit, its optimizer and steps, and the resumable state of the fit."""

    model: Any
    optimizer: Any
    train_step: Any
    eval_step: Any
    checkpoints: EpochCheckpoints
    state: dict[str, Any]
    warm_start: dict[str, Any] | None = None  # what the warm start loaded, skipped and froze


def _fit(trainer: KerasTrainer, ctx: StepContext, examples: Artifact) -> StepResult:
    if trainer.cpu_devices > 1:
        from beamline_plugins.training.strategy import split_cpu

        problem = split_cpu(trainer.cpu_devices)
        if problem:
            ctx.log(problem)
    import keras

    from beamline_plugins.training.strategy import (
        is_chief,
        make_strategy,
        mixed_precision_policy,
        worker_index,
    )

    if trainer.deterministic_ops:
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
    strategy, strategy_name = make_strategy(trainer.strategy)
    previous_policy = keras.mixed_precision.global_policy().name
    policy = mixed_precision_policy(strategy_name) if trainer.mixed_precision else "float32"
    keras.mixed_precision.set_global_policy(policy)
    try:
        scratch = scratch_dir(ctx, trainer, examples, trainer.data_fingerprint(ctx))
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
    """The fit's story: prepare the data, build the model (or restore it), fit epoch by epoch,
    write the artifact."""
    done = EpochCheckpoints.completed(scratch)
    data = prepare_data(trainer, examples, strategy, strategy_name, done)
    fitting = _build_or_restore(trainer, ctx, data, strategy, policy, scratch)
    if fitting.state["resumed_from_epoch"]:
        start = fitting.state["resumed_from_epoch"]
        ctx.log(f"resuming after epoch {start} of {trainer.epochs} from {scratch}")
    stopped_early = _fit_epochs(trainer, ctx, data, fitting)
    restored = _keep_best_weights(trainer, ctx, fitting, stopped_early)
    facts = {
        "stopped_early": stopped_early,
        "best_epoch": fitting.state["best_epoch"],
        "restored_best_weights": restored,
        "strategy": strategy_name,
        "replicas": int(strategy.num_replicas_in_sync),
        "precision_policy": policy,
    }
    if fitting.warm_start is not None:
        facts["warm_start"] = fitting.warm_start
    _write_artifact(trainer, ctx, data, fitting, facts)
    shutil.rmtree(scratch, ignore_errors=True)
    return _result(fitting.state, restored)


def _build_or_restore(
    trainer: KerasTrainer,
    ctx: StepContext,
    data: FitData,
    strategy: Any,
    policy: str,
    scratch: Path,
) -> _Fitting:
    """Build the model (warm-started when asked), its loss, optimizer and steps under the
    strategy, then restore the last completed epoch when an interrupted fit left one in
    ``scratch``."""
    import keras

    from beamline_plugins.training.loop import make_loss, make_steps

    from .models import with_target_scale

    with strategy.scope():
        keras.utils.set_random_seed(trainer.seed)
        model = trainer.model.build(data.inputs, len(data.classes))
        if data.target is not None:
            if tuple(model.output.shape[1:]) != (1,):
                raise PipelineError(
                    f"model '{trainer.model.name}' has output shape {model.output.shape}; a "
                    "regression needs one output unit (use linear_regression or mlp)"
                )
            model = with_target_scale(model, data.target["mean"], data.target["variance"])
        warm = _warm_start(trainer, ctx, model)
        optimizer = make_optimizer(trainer, data.steps_per_epoch, policy)
        optimizer.build(model.trainable_variables)
    loss_fn = make_loss(data.loss, len(data.classes), trainer.label_smoothing, trainer.huber_delta)
    from beamline_plugins.training.layers import members_view, training_view

    # a model that scores several views at inference (test-time augmentation) trains on one
    members = training_view(model)
    if trainer.member_losses:
        members = members_view(model)
        if members is None:
            raise PipelineError(
                f"step '{ctx.step.name}': member_losses needs an ensemble model (softmax layers "
                f"scores_0, scores_1, ...; e.g. members: 3), and model '{trainer.model.name}' "
                "has none: set the model's members or drop member_losses"
            )
    train_step, eval_step = make_steps(strategy, model, optimizer, loss_fn, data.task, members)
    checkpoints = EpochCheckpoints.of(scratch, model=model, optimizer=optimizer)
    state = checkpoints.resume(
        {"epoch": 0, "history": [], "best": None, "best_epoch": 0, "wait": 0}
    )
    return _Fitting(model, optimizer, train_step, eval_step, checkpoints, state, warm)


def _warm_start(trainer: KerasTrainer, ctx: StepContext, model: Any) -> dict[str, Any] | None:
    """Load the warm-start weights into ``model`` and freeze the layers asked (before the
    optimizer sees the trainable variables); what was done, or None without a warm start."""
    from beamline_plugins.training import warm_start

    spec = warm_start.parse(trainer.warm_start, trainer.name)
    if spec is None:
        return None
    parent = warm_start.read_parent(warm_start.locate(ctx, spec))
    done = warm_start.apply(model, parent, spec)
    ctx.log(
        f"warm start from {parent.location}: {len(done['loaded_layers'])} layer(s) loaded, "
        f"{len(done['skipped_layers'])} skipped, {len(done['frozen_layers'])} frozen"
    )
    return done


def _fit_epochs(trainer: KerasTrainer, ctx: StepContext, data: FitData, fitting: _Fitting) -> bool:
    """Fit the remaining epochs, each evaluated, logged and checkpointed; whether the fit
    stopped early."""
    from beamline_plugins.training.loop import run_epoch, trace_ahead

    writers = summary_writers(ctx.output_dir / "logs", data.eval is not None)
    if data.primer is not None:
        trace_ahead(fitting.train_step, data.batches)
    first = data.primer.batch() if data.primer is not None else None
    state = fitting.state
    for epoch in range(state["epoch"] + 1, trainer.epochs + 1):
        if trainer.early_stopping and state["wait"] >= trainer.early_stopping:
            return True
        began = time.perf_counter()
        if data.batches is not None:
            train = run_epoch(
                fitting.train_step,
                data.batches,
                data.steps_per_epoch,
                data.task,
                trainer.steps_per_execution,
                first=first,
            )
            first = None
        else:
            train = run_epoch(fitting.train_step, data.train(epoch), task=data.task)
        record = _epoch_record(epoch, train, data, fitting, trainer.steps_per_execution)
        record["seconds"] = round(time.perf_counter() - began, 3)
        state["history"].append(record)
        write_summaries(writers, record)
        _track_best(trainer, fitting, record)
        state["epoch"] = epoch
        fitting.checkpoints.save(state)
        ctx.progress(epoch, trainer.epochs, progress_text(record))
        if ctx.epoch_done(epoch, record):  # a listener (a tuner's pruner) stops the fit here
            return True
    return False


def _epoch_record(
    epoch: int, train: Any, data: FitData, fitting: _Fitting, per_call: int = 1
) -> dict[str, Any]:
    """One epoch's metrics: training, learning rate, and the eval split's (``per_call`` eval
    steps per graph call)."""
    import tensorflow as tf

    from beamline_plugins.training.loop import run_epoch

    record: dict[str, Any] = {"epoch": epoch, **epoch_metrics(train, data.task)}
    record["learning_rate"] = float(tf.convert_to_tensor(fitting.optimizer.learning_rate).numpy())
    if data.eval is not None:
        evaluated = run_epoch(fitting.eval_step, data.eval, task=data.task, per_call=per_call)
        record.update({f"val_{k}": v for k, v in epoch_metrics(evaluated, data.task).items()})
    return record


def _track_best(trainer: KerasTrainer, fitting: _Fitting, record: dict[str, Any]) -> None:
    """Early stopping's bookkeeping: the best eval loss so far (its weights kept when asked)."""
    state = fitting.state
    monitored = record.get("val_loss", record["loss"])
    if state["best"] is None or monitored < state["best"]:
        state.update(best=monitored, best_epoch=record["epoch"], wait=0)
        if trainer.early_stopping and trainer.restore_best:
            scratch = fitting.checkpoints.scratch
            with atomic_path(scratch / BEST_WEIGHTS, keep_suffix=True) as tmp:
                fitting.model.save_weights(str(tmp))
    else:
        state["wait"] += 1


def _keep_best_weights(
    trainer: KerasTrainer, ctx: StepContext, fitting: _Fitting, stopped_early: bool
) -> bool:
    """After an early stop, go back to the best epoch's weights (when kept); whether it did."""
    best_weights = fitting.checkpoints.scratch / BEST_WEIGHTS
    restored = stopped_early and trainer.restore_best and best_weights.exists()
    if restored:
        fitting.model.load_weights(str(best_weights))
        ctx.log(f"stopped early; keeping the weights of epoch {fitting.state['best_epoch']}")
    return restored


def _write_artifact(
    trainer: KerasTrainer,
    ctx: StepContext,
    data: FitData,
    fitting: _Fitting,
    facts: dict[str, Any],
) -> None:
    """``model.keras``, ``model.json`` and the report: history (with ``facts`` of the fit) and
    the training curve."""
    from beamline_plugins.training.plots import plot_history

    info = {
        "inputs": data.inputs,
        "task": data.task,
        "classes": data.classes,
        "label": data.label,
        "loss": data.loss,
        **input_pipeline_record(trainer.input),
        "model": plain(trainer.model),
        "trainer_step": ctx.step.name,
    }
    if data.target is not None:
        info["target"] = data.target
    if fitting.warm_start is not None:
        info["warm_start"] = fitting.warm_start
    write_model(ctx.output_dir, fitting.model, info)
    state = fitting.state
    history = {
        "epochs": state["history"],
        "resumed_from_epoch": state["resumed_from_epoch"],
        **facts,
    }
    report = ctx.output_dir / "report"
    report.mkdir(parents=True, exist_ok=True)
    write_json_atomic(report / "history.json", history)
    if state["history"]:
        plot_history(state["history"], report / "training_curve.png")


def _result(state: dict[str, Any], restored: bool) -> StepResult:
    last = state["history"][-1] if state["history"] else {}
    if restored:
        last = state["history"][state["best_epoch"] - 1]  # the metrics of the weights kept
    metrics = {k: float(v) for k, v in last.items() if k not in ("epoch", "seconds")}
    metrics["epochs"] = float(len(state["history"]))
    return StepResult(metrics=metrics, summary=progress_text(last) if last else "no epochs run")
