"""The data side of a ``keras_trainer`` fit: what it learns and the batches it learns from."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from beamline.artifacts import Artifact
from beamline_plugins.training.records import (
    epoch_seed,
    label_info,
    one_pass,
    shared_cache,
    split_size,
)

from .fit_options import resolve_loss, task_of

if TYPE_CHECKING:
    from .trainer import KerasTrainer


@dataclass
class FitData:
    """What a fit learns (task, loss, label, inputs) and the batches it learns from."""

    task: str
    loss: str
    label: str
    classes: list[str]
    target: dict[str, float] | None  # a regression's label mean and variance
    inputs: dict[str, dict[str, Any]]
    train: Any  # multi-worker: epoch -> that epoch's (distributed) dataset; else None
    batches: Any  # continuous: one iterator over the remaining epochs' batches, else None
    primer: Any  # continuous: the ``Primer`` fetching the first batch, else None
    eval: Any  # the (distributed) eval dataset, None without an eval split
    steps_per_epoch: int


def prepare_data(
    trainer: KerasTrainer, examples: Artifact, strategy: Any, name: str, done: int = 0
) -> FitData:
    """Resolve task, loss, label and inputs; start the input pipeline filling.

    ``name`` is the strategy's name (``default``, ``mirrored``, ``multi_worker``, ``tpu``);
    ``done`` the epochs a resumed fit has behind it. Each epoch's training data is built with
    ``epoch_seed(seed, epoch)``: order and augmentation are a function of (seed, epoch)."""
    import tensorflow as tf

    from beamline_plugins.training.loop import Primer, epoch_stream

    task = task_of(trainer.input)
    loss = resolve_loss(trainer.loss, task)
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
    # epoch is one pass over the worker's shard; elsewhere one iterator over the remaining
    # epochs keeps prefetching across epoch boundaries.
    continuous = name != "multi_worker"

    def dataset(split: str, training: bool, seed: int) -> Any:
        return trainer.input.dataset(
            examples,
            split,
            inputs=inputs,
            training=training,
            batch_size=trainer.batch_size,
            seed=seed,
        )

    def distributed(ds: Any) -> Any:
        if name == "default":
            return ds
        return strategy.experimental_distribute_dataset(ds.with_options(options))

    def epoch_data(epoch: int) -> Any:
        return dataset(trainer.train_split, True, epoch_seed(trainer.seed, epoch))

    def one_pass_epoch(epoch: int) -> Any:
        with one_pass():  # read once: a cache per epoch would stay in memory all fit long
            return epoch_data(epoch)

    train = batches = primer = None
    remaining = list(range(done + 1, trainer.epochs + 1))
    if not continuous:
        train = lambda epoch: distributed(one_pass_epoch(epoch))  # noqa: E731
    elif remaining:
        # The epochs share one cache (records parsed once per fit, not once per epoch), which
        # keeps epoch 1's record order, also in a resumed fit: each epoch's order stays a
        # function of (seed, epoch).
        with shared_cache():
            if remaining[0] != 1:
                epoch_data(1)
            epochs = [epoch_data(e) for e in remaining]
        stream = epoch_stream(epochs, trainer.steps_per_execution)
        # The input pipeline starts filling while the model is built and the checkpoint restored.
        batches = iter(distributed(stream))
        primer = Primer(batches)
    evaluated = (
        distributed(dataset(trainer.eval_split, False, trainer.seed))
        if has_split(examples, trainer.eval_split)
        else None
    )
    steps = max(1, math.ceil(split_size(examples, trainer.train_split) / trainer.batch_size))
    return FitData(
        task, loss, label, classes, target, inputs, train, batches, primer, evaluated, steps
    )


def has_split(examples: Artifact, split: str) -> bool:
    """Whether ``examples`` has shards of ``split`` (False for an empty name)."""
    if not split:
        return False
    from beamline.examples import example_files

    try:
        example_files(examples, split)
    except FileNotFoundError:
        return False
    return True
