"""A plain ``model.fit`` with early stopping and resume, and the ``keras_trainer`` report it writes.

For trainers whose model, loss and data are their own but whose fit is the usual one (the
forecaster, the encoder-decoder): ``fit_splits`` fits on a trainer's train split with its
eval split for early stopping; ``fit_with_history`` runs ``model.fit`` on given datasets,
reporting every epoch to the step's progress; ``write_fit_report`` writes the model,
``report/history.json`` and the training curve, and returns the step's result (the metrics of
the epoch with the lowest eval loss). TensorFlow, Keras and matplotlib are imported inside the
functions.

Resume: ``fit_splits`` keeps the step's scratch folder (``checkpoints.scratch_dir``); after
each completed epoch it saves the best weights when the epoch is the best so far (a file per
epoch, written whole, then renamed), the weights and optimizer state
(``checkpoints.EpochCheckpoints``) and last ``state.json`` (the epochs' logs, the
early-stopping counters), which names them. A run killed at any moment and rerun continues
after the last completed epoch and ends with exactly the weights of an uninterrupted run: the
checkpoint holds every variable of the model (the dropout layers' generator states too) and the
optimizer's, and before the fit goes on ``replay_shuffles`` advances the input pipeline's
seeded shuffles by the epochs done, so the next epoch sees the order it would have seen.
``write_fit_report`` removes the folder once the model is written.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from beamline import Artifact, InputPipeline, ModelInputs, StepContext, StepResult
from beamline.artifacts import write_json_atomic
from beamline.atomic import atomic_path

from .artifact import write_model
from .checkpoints import EpochCheckpoints, scratch_dir

#: One epoch's logs: ``epoch`` (from 1) and every Keras metric (``loss``, ``val_loss``, ...).
Epoch = dict[str, float]
BEST_WEIGHTS = "best-{epoch}.weights.h5"


class FitParams(Protocol):
    """The parameters of a trainer step that ``fit_splits`` reads."""

    input: InputPipeline
    epochs: int
    batch_size: int
    early_stopping: int
    train_split: str
    eval_split: str
    seed: int


@dataclass
class Fit:
    """What a fit did: the epochs' logs (all of them, across resumes), the seconds they took,
    the epoch a resumed fit continued after (0: none) and its scratch folder (None: none)."""

    epochs: list[Epoch]
    seconds: float
    resumed_from_epoch: int = 0
    scratch: Path | None = None


def fit_splits(
    ctx: StepContext,
    trainer: FitParams,
    model: Any,
    examples: Artifact,
    inputs: ModelInputs,
) -> Fit:
    """Fit ``model`` on the batches ``trainer.input`` makes of ``trainer.train_split`` (shuffled
    with ``trainer.seed``), with ``trainer.eval_split`` (none when empty) for early stopping,
    resuming an interrupted fit of the same step (see the module docstring and
    ``fit_with_history``)."""

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
        scratch=scratch_dir(ctx, trainer, examples),
    )


def fit_with_history(
    ctx: StepContext,
    model: Any,
    train: Any,
    validation: Any | None,
    *,
    epochs: int,
    early_stopping: int,
    scratch: Path | None = None,
) -> Fit:
    """Fit the compiled ``model`` on ``train`` for up to ``epochs`` epochs.

    Every epoch is reported to ``ctx.progress``. Given ``validation`` and ``early_stopping``
    (epochs without eval-loss gain), the fit stops early and the weights of the epoch with the
    lowest eval loss are kept (as Keras's ``EarlyStopping`` does). Given ``scratch``, every
    epoch is checkpointed there and a fit that finds a checkpoint continues after it. Keras
    does not shuffle: the input pipeline does (seeded)."""
    state: dict[str, Any] = {
        "epoch": 0,
        "epochs": [],
        "best": None,
        "best_epoch": 0,
        "wait": 0,
        "stopped": False,
        "seconds": 0.0,
    }
    checkpoints = None
    if scratch is not None:
        model.optimizer.build(model.trainable_variables)  # its variables, to checkpoint
        checkpoints = EpochCheckpoints.of(scratch, model=model, optimizer=model.optimizer)
        state = checkpoints.resume(state)
        if state["resumed_from_epoch"]:
            ctx.log(f"resuming after epoch {state['epoch']} of {epochs} from {scratch}")
    best: dict[str, Any] = {}  # the best weights, in memory when there is no scratch folder
    patience = early_stopping if validation is not None else 0
    callback = _epoch_callback(ctx, epochs, state, patience, checkpoints, best)
    if state["epoch"] < epochs and not state["stopped"]:
        replay_shuffles(train, state["epoch"])  # the next epoch's order, as if never killed
        model.fit(
            train,
            validation_data=validation,
            initial_epoch=state["epoch"],
            epochs=epochs,
            callbacks=[callback],
            shuffle=False,
            verbose=0,
        )
    if patience and state["best_epoch"]:
        if scratch is None:
            model.set_weights(best["weights"])
        else:
            model.load_weights(str(scratch / BEST_WEIGHTS.format(epoch=state["best_epoch"])))
    return Fit(state["epochs"], state["seconds"], state.get("resumed_from_epoch", 0), scratch)


def replay_shuffles(dataset: Any, epochs: int) -> int:
    """Draw ``epochs`` epochs' shuffle seeds from every reshuffling shuffle of ``dataset``
    without reading a record, so that its next epoch is shuffled as the next epoch of a fit
    that never stopped; return how many shuffles were advanced.

    A ``shuffle(seed=..., reshuffle_each_iteration=True)`` draws its next order's seeds from
    a random-seed generator each time an iterator over it is made (TensorFlow's
    ``RandomSeedGenerator``: a counter over Philox seeded with the op's seeds), one per epoch
    in ``model.fit``. A new process starts that counter at 0, so a fit resumed after epoch k
    would shuffle its epoch k + 1 as epoch 1. Making (and dropping) k iterators over each
    such shuffle advances the counter exactly as k epochs did: a shuffle makes its input's
    iterator only on its first element, so nothing is read. A shuffle behind a ``cache``
    is not advanced: the cache reads its input once, in the first epoch a fit runs, which
    draws that shuffle's first seeds, resumed or not. Anything but a ``tf.data.Dataset`` is
    left alone (0)."""
    import tensorflow as tf

    if not epochs or not isinstance(dataset, tf.data.Dataset):
        return 0
    shuffles: dict[int, Any] = {}

    def walk(node: Any, behind_cache: bool) -> None:
        kind = type(node).__name__  # tf.data's own classes (no public way to walk a dataset)
        behind_cache = behind_cache or kind == "CacheDataset"
        if kind == "_ShuffleDataset" and node._reshuffle_each_iteration and not behind_cache:
            shuffles.setdefault(id(node), node)
        for parent in node._inputs():
            walk(parent, behind_cache)

    walk(dataset, False)
    options = tf.data.Options()  # no rewrites, no autotuning threads: an iterator made idle
    options.autotune.enabled = False
    options.experimental_optimization.apply_default_optimizations = False
    for shuffle in shuffles.values():
        idle = shuffle.with_options(options)
        for _ in range(epochs):
            iter(idle)
    return len(shuffles)


def write_fit_report(
    ctx: StepContext,
    model: Any,
    info: dict[str, Any],
    fit: Fit,
    *,
    metric: str,
    metric_label: str,
) -> StepResult:
    """Write ``model`` with ``info`` (``model.keras``, ``model.json``), ``report/history.json``
    and ``report/training_curve.png``, then remove the fit's scratch folder; return the
    metrics of the best epoch (lowest ``val_loss``, else ``loss``) with ``epochs`` and
    ``train_seconds``.

    The summary names the best epoch's ``metric`` (a key of the logs, e.g. ``val_mae``) as
    ``best eval {metric_label}``."""
    from .plots import plot_history

    epochs, seconds = fit.epochs, fit.seconds
    write_model(ctx.output_dir, model, info)
    best = min(epochs, key=lambda e: e.get("val_loss", e["loss"])) if epochs else {}
    report = ctx.output_dir / "report"
    report.mkdir(parents=True, exist_ok=True)
    history = {
        "epochs": epochs,
        "best_epoch": best.get("epoch", 0),
        "seconds": seconds,
        "resumed_from_epoch": fit.resumed_from_epoch,
    }
    write_json_atomic(report / "history.json", history)
    if epochs:
        plot_history(epochs, report / "training_curve.png")
    if fit.scratch is not None:
        shutil.rmtree(fit.scratch, ignore_errors=True)
    metrics = {k: float(v) for k, v in best.items() if k != "epoch"}
    metrics.update(epochs=float(len(epochs)), train_seconds=seconds)
    summary = (
        f"{len(epochs)} epochs in {seconds:.0f} s, best eval {metric_label} "
        f"{best.get(metric, float('nan')):.4f} (epoch {best.get('epoch', 0)})"
    )
    return StepResult(metrics=metrics, summary=summary)


def _epoch_callback(
    ctx: StepContext,
    total: int,
    state: dict[str, Any],
    patience: int,
    checkpoints: EpochCheckpoints | None,
    best: dict[str, Any],
) -> Any:
    """A Keras callback that, after each epoch, appends its logs to ``state["epochs"]``,
    keeps the best weights, counts epochs without eval-loss gain (``model.stop_training``
    after ``patience``), checkpoints the epoch and reports it to ``ctx.progress`` (the class
    is built here: Keras is imported only when a fit runs)."""
    import keras

    class EpochEnd(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            self.began = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            logs = {k: float(v) for k, v in (logs or {}).items()}
            state["epochs"].append({"epoch": epoch + 1, **logs})
            state["epoch"] = epoch + 1
            state["seconds"] += time.perf_counter() - self.began
            if "val_loss" in logs:
                if state["best"] is None or logs["val_loss"] < state["best"]:
                    state.update(best=logs["val_loss"], best_epoch=epoch + 1, wait=0)
                    if patience:
                        self._keep_best(epoch + 1)
                else:
                    state["wait"] += 1
                if patience and state["wait"] >= patience:
                    state["stopped"] = True
                    self.model.stop_training = True
            if checkpoints is not None:
                checkpoints.save(state)
                self._drop_older_best()
            text = " ".join(f"{k} {v:.4f}" for k, v in sorted(logs.items()))
            ctx.progress(epoch + 1, total, text)

        def _keep_best(self, epoch: int) -> None:
            if checkpoints is None:
                best["weights"] = self.model.get_weights()
                return
            path = checkpoints.scratch / BEST_WEIGHTS.format(epoch=epoch)
            with atomic_path(path, keep_suffix=True) as tmp:
                self.model.save_weights(str(tmp))

        def _drop_older_best(self) -> None:
            # the state now names its best epoch: other epochs' files are no longer read
            keep = BEST_WEIGHTS.format(epoch=state["best_epoch"])
            for path in checkpoints.scratch.glob(BEST_WEIGHTS.format(epoch="*")):
                if path.name != keep:
                    path.unlink(missing_ok=True)

    return EpochEnd()
