"""The distributed training loop: one ``tf.function`` step run with ``strategy.run`` per replica.

Why not ``model.fit``: Keras 3.15's TensorFlow trainer fails under ``MultiWorkerMirroredStrategy``
on TF 2.16 (``fit`` hands the distributed ``PerReplica`` batches to a function that converts them
to tensors: "Attempt to convert a value (PerReplica:{...}) with an unsupported type"). A custom
loop under the strategy avoids it and behaves the same under every strategy (default, mirrored,
multi-worker, TPU): the batches of ``experimental_distribute_dataset`` go to ``strategy.run``,
the Keras optimizer all-reduces (sums) the gradients across replicas, and the loss of each
replica is its sum of per-example losses divided by the number of examples in the *global*
batch (an ``all_reduce`` of the local batch sizes, so a short last batch is weighted exactly).

A step returns a list of sums that add up over batches and replicas (``SUMS`` names them): the
loss, correct predictions and the example count for a classifier; the loss, absolute and
squared errors and the count for a regression (an epoch's MAE and RMSE follow exactly).
"""

from __future__ import annotations

import itertools
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

CLASSIFICATION_LOSSES = ("crossentropy", "focal")
REGRESSION_LOSSES = ("mse", "mae", "huber")
#: What a step's list of sums holds, per task.
SUMS = {
    "classification": ("loss", "correct", "count"),
    "regression": ("loss", "abs_error", "squared_error", "count"),
}


@dataclass
class EpochMetrics:
    """Summed metrics of one pass over a dataset, by name (``SUMS`` of the task)."""

    names: tuple[str, ...] = SUMS["classification"]
    sums: dict[str, float] = field(default_factory=dict)

    def add(self, values: Any) -> None:
        """Add one step's reduced sums (a list in the order of ``names``)."""
        for name, value in zip(self.names, values, strict=True):
            self.sums[name] = self.sums.get(name, 0.0) + float(value)

    def _mean(self, name: str) -> float:
        count = self.sums.get("count", 0.0)
        return self.sums.get(name, 0.0) / count if count else float("nan")

    @property
    def count(self) -> float:
        """Examples seen."""
        return self.sums.get("count", 0.0)

    @property
    def mean_loss(self) -> float:
        """Mean loss per example."""
        return self._mean("loss")

    @property
    def accuracy(self) -> float:
        """Share of correct predictions (a classifier)."""
        return self._mean("correct")

    @property
    def mae(self) -> float:
        """Mean absolute error (a regression)."""
        return self._mean("abs_error")

    @property
    def rmse(self) -> float:
        """Root mean squared error (a regression)."""
        mse = self._mean("squared_error")
        return math.sqrt(mse) if mse == mse else mse


def make_loss(
    kind: str, num_classes: int, label_smoothing: float, huber_delta: float = 1.0
) -> Callable[[Any, Any], Any]:
    """A per-example loss: of integer labels and softmax scores (``crossentropy``, ``focal``),
    or of float labels and one predicted value (``mse``, ``mae``, ``huber``)."""
    import keras
    import tensorflow as tf

    if kind in REGRESSION_LOSSES:
        return _regression_loss(kind, huber_delta)
    if kind == "focal":
        loss = keras.losses.CategoricalFocalCrossentropy(
            label_smoothing=label_smoothing, reduction=None
        )
    else:
        loss = keras.losses.CategoricalCrossentropy(label_smoothing=label_smoothing, reduction=None)

    def per_example(labels: Any, scores: Any) -> Any:
        return loss(tf.one_hot(labels, num_classes), tf.cast(scores, tf.float32))

    return per_example


def _regression_loss(kind: str, delta: float) -> Callable[[Any, Any], Any]:
    import tensorflow as tf

    def per_example(labels: Any, outputs: Any) -> Any:
        error = tf.cast(labels, tf.float32) - prediction_of(outputs)
        if kind == "mse":
            return tf.square(error)
        absolute = tf.abs(error)
        if kind == "mae":
            return absolute
        quadratic = tf.minimum(absolute, delta)  # huber: quadratic near 0, linear beyond delta
        return 0.5 * tf.square(quadratic) + delta * (absolute - quadratic)

    return per_example


def prediction_of(outputs: Any) -> Any:
    """A regression model's ``[batch, 1]`` output as float32 ``[batch]``."""
    import tensorflow as tf

    return tf.reshape(tf.cast(outputs, tf.float32), [-1])


def make_steps(
    strategy: Any,
    model: Any,
    optimizer: Any,
    loss_fn: Callable[[Any, Any], Any],
    task: str = "classification",
    members: Any = None,
) -> tuple[Callable[[Any], Any], Callable[[Any], Any]]:
    """``(train_step, eval_step)``: each takes a distributed batch, returns a list of sums.

    The sums are ``SUMS[task]``: loss, correct predictions and count (classification), or loss,
    absolute error, squared error and count (regression). ``members`` (a model over ``model``'s
    layers whose outputs are an ensemble's member scores) trains each member on its own loss,
    the mean of theirs, instead of the loss of their average; evaluation keeps ``model``."""
    import tensorflow as tf

    replicas = float(strategy.num_replicas_in_sync)

    def counts(labels: Any) -> tuple[Any, Any]:
        local = tf.cast(tf.shape(labels)[0], tf.float32)
        total = tf.distribute.get_replica_context().all_reduce("SUM", local)
        return local, tf.maximum(total, 1.0)

    def sums(loss: Any, labels: Any, outputs: Any, count: Any) -> list[Any]:
        if task == "regression":
            error = tf.cast(labels, tf.float32) - prediction_of(outputs)
            absolute = tf.reduce_sum(tf.abs(error))
            return [loss, absolute, tf.reduce_sum(tf.square(error)), count]
        hits = tf.equal(tf.argmax(outputs, axis=-1), tf.cast(labels, tf.int64))
        return [loss, tf.reduce_sum(tf.cast(hits, tf.float32)), count]

    def replica_train(features: Any, labels: Any) -> Any:
        local, total = counts(labels)
        with tf.GradientTape() as tape:
            if members is None:
                scores = model(features, training=True)
                per_example = loss_fn(labels, scores)
            else:
                each = members(features, training=True)
                each = each if isinstance(each, (list, tuple)) else [each]  # a one-output view
                per_example = tf.add_n([loss_fn(labels, s) for s in each]) / len(each)
                scores = tf.add_n(each) / len(each)
            loss = tf.reduce_sum(per_example) / total
            if model.losses:  # weight penalties: each replica adds them, the sum counts once
                loss += tf.add_n([tf.cast(x, tf.float32) for x in model.losses]) / replicas
            scaled = optimizer.scale_loss(loss)
        grads = tape.gradient(scaled, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
        return sums(tf.reduce_sum(per_example), labels, scores, local)

    def replica_eval(features: Any, labels: Any) -> Any:
        local, _ = counts(labels)
        scores = model(features, training=False)
        return sums(tf.reduce_sum(loss_fn(labels, scores)), labels, scores, local)

    def reduced(fn: Callable[..., Any]) -> Callable[[Any], Any]:
        @tf.function(reduce_retracing=True)
        def step(batch: Any) -> Any:
            features, labels = batch[0], batch[1]
            out = strategy.run(fn, args=(features, labels))
            return [strategy.reduce("SUM", value, axis=None) for value in out]

        return step

    def repeated(fn: Callable[..., Any]) -> Callable[[Any, Any], Any]:
        # Keras' steps_per_execution: n steps in one graph call, each batch taken from the
        # iterator inside the graph, so the Python round trip is paid once per n steps.
        @tf.function(reduce_retracing=True)
        def steps(iterator: Any, n: Any) -> Any:
            totals = [tf.constant(0.0) for _ in SUMS[task]]
            for _ in tf.range(n):
                batch = next(iterator)
                out = strategy.run(fn, args=(batch[0], batch[1]))
                totals = [
                    total + strategy.reduce("SUM", value, axis=None)
                    for total, value in zip(totals, out, strict=True)
                ]
            return totals

        return steps

    def to_the_end(fn: Callable[..., Any]) -> Callable[[Any, Any], Any]:
        # A finite pass (evaluation) in graph calls of up to n steps: each step's reduced sums
        # come back as one row, so the caller adds them one by one as it adds single steps'
        # (the same figures), and a short result marks the end of the data.
        width = len(SUMS[task])

        @tf.function(reduce_retracing=True)
        def steps(iterator: Any, n: Any) -> Any:
            rows = tf.TensorArray(tf.float32, size=0, dynamic_size=True, element_shape=[width])
            done = tf.constant(0)
            for _ in tf.range(n):
                batch = iterator.get_next_as_optional()
                if not batch.has_value():
                    break
                value = batch.get_value()
                out = strategy.run(fn, args=(value[0], value[1]))
                sums = [tf.cast(strategy.reduce("SUM", v, axis=None), tf.float32) for v in out]
                rows = rows.write(done, tf.stack(sums))
                done += 1
            return rows.stack()

        return steps

    train_step, eval_step = reduced(replica_train), reduced(replica_eval)
    train_step.repeated = repeated(replica_train)  # type: ignore[attr-defined]
    eval_step.to_the_end = to_the_end(replica_eval)  # type: ignore[attr-defined]
    return train_step, eval_step


def trace_ahead(step: Callable[[Any], Any], iterator: Any) -> None:
    """Trace a train step of ``make_steps`` (one batch, and several from ``iterator``) before
    any data is needed: tracing then overlaps the input pipeline's first fill (``Primer``)."""
    import tensorflow as tf

    # Called as traced here: the batch shape stays unknown instead of a retrace on the first batch
    step.traced = step.get_concrete_function(iterator.element_spec)  # type: ignore[attr-defined]
    repeated = getattr(step, "repeated", None)
    if repeated is not None:
        repeated.get_concrete_function(iterator, tf.TensorSpec([], tf.int32))


def training_stream(ds: Any, per_call: int) -> Any:
    """The repeated training batches, prefetched a graph call ahead.

    A shuffle buffer larger than the data refills at every epoch boundary before it yields
    again; with one call's batches (``per_call``, at least 2) ready, the refill overlaps the
    previous call's steps instead of stalling them."""
    return ds.repeat().prefetch(max(2, per_call))


def epoch_stream(epochs: list[Any], per_call: int) -> Any:
    """One stream of the batches of several epochs' datasets in turn, prefetched a graph call
    ahead (an epoch's data is its own dataset, built from that epoch's seed, so that a resumed
    fit sees the epochs an uninterrupted one would have; the stream keeps prefetching across
    epoch boundaries)."""
    stream = epochs[0]
    for epoch in epochs[1:]:
        stream = stream.concatenate(epoch)
    return stream.prefetch(max(2, per_call))


class Primer:
    """Fetches an iterator's first batch on a thread, so that filling the input pipeline (reading,
    decoding, the shuffle buffer) overlaps what the trainer does before its first step."""

    def __init__(self, iterator: Any) -> None:
        self._batch: Any = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._fetch, args=(iterator,), daemon=True)
        self._thread.start()

    def _fetch(self, iterator: Any) -> None:
        try:
            self._batch = next(iterator)
        except BaseException as exc:  # noqa: BLE001 - raised again in the caller's thread
            self._error = exc

    def batch(self) -> Any:
        """The first batch (waits for it); raises what fetching it raised."""
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._batch


def run_epoch(
    step: Callable[[Any], Any],
    batches: Any,
    steps: int | None = None,
    task: str = "classification",
    per_call: int = 1,
    first: Any = None,
) -> EpochMetrics:
    """Run ``step`` over the batches of a (distributed) dataset and sum its metrics.

    With ``steps``, ``batches`` is an iterator over a repeated dataset and the epoch is its next
    ``steps`` batches: the input pipeline then keeps prefetching across epochs instead of
    refilling its shuffle buffer while training waits. There, ``per_call`` > 1 runs that many
    steps per graph call (a train step of ``make_steps``); the result is the same as one by
    one. Without ``steps`` (one pass over a finite dataset), ``per_call`` > 1 runs an eval step
    of ``make_steps`` that many batches per graph call, with the same sums as one by one.
    ``first``, a batch already taken from ``batches`` (``Primer``), is the epoch's first."""
    metrics = EpochMetrics(SUMS[task])
    to_the_end = getattr(step, "to_the_end", None)
    if steps is None and per_call > 1 and to_the_end is not None:
        import tensorflow as tf

        iterator, count = iter(batches), tf.constant(per_call)
        while True:
            rows = to_the_end(iterator, count).numpy()
            for values in rows:
                metrics.add(values)
            if len(rows) < per_call:
                return metrics
    if first is not None and steps is not None:
        metrics.add(getattr(step, "traced", step)(first))
        steps -= 1
    repeated = getattr(step, "repeated", None)
    if steps is not None and per_call > 1 and repeated is not None:
        import tensorflow as tf

        done = 0
        while done < steps:
            count = min(per_call, steps - done)
            metrics.add(repeated(batches, tf.constant(count)))
            done += count
        return metrics
    for batch in batches if steps is None else itertools.islice(batches, steps):
        metrics.add(step(batch))
    return metrics
