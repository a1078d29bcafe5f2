"""The distributed training loop: one ``tf.function`` step run with ``strategy.run`` per replica.

Why not ``model.fit``: Keras 3.15's TensorFlow trainer fails under ``MultiWorkerMirroredStrategy``
on TF 2.16 (``fit`` hands the distributed ``PerReplica`` batches to a function that converts them
to tensors: "Attempt to convert a value (PerReplica:{...}) with an unsupported type"). A custom
loop under the strategy avoids it and behaves the same under every strategy (default, mirrored,
multi-worker, TPU): the batches of ``experimental_distribute_dataset`` go to ``strategy.run``,
the Keras optimizer all-reduces (sums) the gradients across replicas, and the loss of each
replica is its sum of per-example losses divided by the number of examples in the *global*
batch (an ``all_reduce`` of the local batch sizes, so a short last batch is weighted exactly).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass
class EpochMetrics:
    """Summed loss, correct predictions and example count over one pass of a dataset."""

    loss: float = 0.0
    correct: float = 0.0
    count: float = 0.0

    def add(self, values: Any) -> None:
        """Add one step's reduced ``(loss sum, correct, count)``."""
        loss, correct, count = (float(v) for v in values)
        self.loss += loss
        self.correct += correct
        self.count += count

    @property
    def mean_loss(self) -> float:
        """Mean loss per example."""
        return self.loss / self.count if self.count else float("nan")

    @property
    def accuracy(self) -> float:
        """Share of correct predictions."""
        return self.correct / self.count if self.count else float("nan")


def make_loss(kind: str, num_classes: int, label_smoothing: float) -> Callable[[Any, Any], Any]:
    """A per-example loss of integer labels and softmax scores."""
    import keras
    import tensorflow as tf

    if kind == "focal":
        loss = keras.losses.CategoricalFocalCrossentropy(
            label_smoothing=label_smoothing, reduction=None
        )
    else:
        loss = keras.losses.CategoricalCrossentropy(label_smoothing=label_smoothing, reduction=None)

    def per_example(labels: Any, scores: Any) -> Any:
        return loss(tf.one_hot(labels, num_classes), tf.cast(scores, tf.float32))

    return per_example


def make_steps(
    strategy: Any, model: Any, optimizer: Any, loss_fn: Callable[[Any, Any], Any]
) -> tuple[Callable[[Any], Any], Callable[[Any], Any]]:
    """``(train_step, eval_step)``: each takes a distributed batch, returns summed metrics."""
    import tensorflow as tf

    replicas = float(strategy.num_replicas_in_sync)

    def counts(labels: Any) -> tuple[Any, Any]:
        local = tf.cast(tf.shape(labels)[0], tf.float32)
        total = tf.distribute.get_replica_context().all_reduce("SUM", local)
        return local, tf.maximum(total, 1.0)

    def correct(labels: Any, scores: Any) -> Any:
        hits = tf.equal(tf.argmax(scores, axis=-1), tf.cast(labels, tf.int64))
        return tf.reduce_sum(tf.cast(hits, tf.float32))

    def replica_train(features: Any, labels: Any) -> Any:
        local, total = counts(labels)
        with tf.GradientTape() as tape:
            scores = model(features, training=True)
            per_example = loss_fn(labels, scores)
            loss = tf.reduce_sum(per_example) / total
            if model.losses:  # weight penalties: each replica adds them, the sum counts once
                loss += tf.add_n([tf.cast(x, tf.float32) for x in model.losses]) / replicas
            scaled = optimizer.scale_loss(loss)
        grads = tape.gradient(scaled, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
        return tf.reduce_sum(per_example), correct(labels, scores), local

    def replica_eval(features: Any, labels: Any) -> Any:
        local, _ = counts(labels)
        scores = model(features, training=False)
        return tf.reduce_sum(loss_fn(labels, scores)), correct(labels, scores), local

    def reduced(fn: Callable[..., Any]) -> Callable[[Any], Any]:
        @tf.function(reduce_retracing=True)
        def step(batch: Any) -> Any:
            features, labels = batch[0], batch[1]
            out = strategy.run(fn, args=(features, labels))
            return [strategy.reduce("SUM", value, axis=None) for value in out]

        return step

    return reduced(replica_train), reduced(replica_eval)


def run_epoch(step: Callable[[Any], Any], batches: Any, steps: int | None = None) -> EpochMetrics:
    """Run ``step`` over the batches of a (distributed) dataset and sum its metrics.

    With ``steps``, ``batches`` is an iterator over a repeated dataset and the epoch is its next
    ``steps`` batches: the input pipeline then keeps prefetching across epochs instead of
    refilling its shuffle buffer while training waits."""
    metrics = EpochMetrics()
    for batch in batches if steps is None else itertools.islice(batches, steps):
        metrics.add(step(batch))
    return metrics
