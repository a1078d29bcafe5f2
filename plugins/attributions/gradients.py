"""Integrated gradients and saliency for Keras classifiers, on the model's own input.

Images and spectrograms: the model input is the decoded pixels in [0, 1] or the spectrogram
bins, and attributions are per input value (the baseline: all zeros, a black image or the
per-clip mean of the standardised spectrogram). Texts: token ids are not differentiable, so
each token's embedding is scaled by a weight ``m_t`` in [0, 1] and the attributions are those of
``m`` (``m = 1``: the text; ``m = 0``: every token embedding zero, the padding mask and
positions unchanged), one weight per token; a bag-of-words model's multi-hot vector is built
from the same weights (``m = 0``: the empty bag). Either way integrated gradients satisfy
completeness: the attributions sum to ``score(x) - score(baseline)``, up to the error of the
trapezoid rule over ``steps`` intervals (``completeness_gap`` measures it).

The score is the model's output for the target class (the softmax probability of the built-in
classifiers). TensorFlow is imported inside the functions.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

DEFAULT_STEPS = 64
#: Interpolated inputs evaluated per model call.
CHUNK = 64


@dataclass
class Attribution:
    """The attributions of one input for one target class.

    ``values`` has the model input's shape without the batch (pixels ``[h, w, c]``,
    spectrogram ``[frames, bins, 1]``, text ``[tokens]``); ``score`` and ``baseline_score`` are
    the target's score at the input and at the baseline."""

    values: Any
    score: float
    baseline_score: float
    target: int
    method: str
    steps: int

    @property
    def completeness_gap(self) -> float:
        """``|sum(values) - (score - baseline_score)|`` relative to the score difference."""
        total = float(self.values.sum())
        difference = self.score - self.baseline_score
        return abs(total - difference) / max(abs(difference), 1e-6)


def score_fn(model: Any, name: str, target: int) -> Any:
    """``f(batch) -> [batch]``: the target class's score of ``model`` for inputs of ``name``."""

    def f(x: Any) -> Any:
        return model({name: x}, training=False)[:, target]

    return f


def integrated_gradients(
    model: Any, name: str, x: Any, target: int, steps: int = DEFAULT_STEPS, baseline: Any = None
) -> Attribution:
    """Integrated gradients of one float input ``x`` (no batch axis) along the straight path
    from ``baseline`` (zeros) to ``x``, by the trapezoid rule over ``steps`` intervals."""
    import numpy as np
    import tensorflow as tf

    x = tf.convert_to_tensor(x, tf.float32)
    base = tf.zeros_like(x) if baseline is None else tf.convert_to_tensor(baseline, tf.float32)
    alphas = np.linspace(0.0, 1.0, steps + 1, dtype=np.float32)
    f = score_fn(model, name, target)
    grads, scores = [], []
    for start in range(0, len(alphas), CHUNK):
        a = tf.reshape(tf.constant(alphas[start : start + CHUNK]), [-1] + [1] * len(x.shape))
        path = base[None] + a * (x - base)[None]
        with tf.GradientTape() as tape:
            tape.watch(path)
            out = f(path)
        grads.append(tape.gradient(out, path).numpy())
        scores.append(out.numpy())
    g = np.concatenate(grads)
    s = np.concatenate(scores)
    average = (g[:-1] + g[1:]).sum(axis=0) / (2.0 * steps)
    values = (x - base).numpy() * average
    return Attribution(values, float(s[-1]), float(s[0]), target, "integrated_gradients", steps)


def saliency(model: Any, name: str, x: Any, target: int) -> Attribution:
    """Plain saliency: the gradient of the target's score at ``x`` times ``x`` (gradient x
    input, so that its sign and scale read like attributions; one model call)."""
    import tensorflow as tf

    x = tf.convert_to_tensor(x, tf.float32)[None]
    f = score_fn(model, name, target)
    with tf.GradientTape() as tape:
        tape.watch(x)
        out = f(x)
    grad = tape.gradient(out, x)[0].numpy()
    zero = float(f(tf.zeros_like(x)).numpy()[0])
    return Attribution(grad * x[0].numpy(), float(out.numpy()[0]), zero, target, "saliency", 1)


def token_embeddings(model: Any, vocab_size: int) -> list[Any]:
    """The model's layers that read token ids: ``Embedding`` layers over the vocabulary
    (``input_dim == vocab_size``; a position embedding has another size and is left alone) and
    ``CategoryEncoding`` layers (bag of words: ``num_tokens >= vocab_size``)."""
    import keras

    found = [
        layer
        for layer in _layers(model)
        if (isinstance(layer, keras.layers.Embedding) and layer.input_dim == vocab_size)
        or (isinstance(layer, keras.layers.CategoryEncoding) and layer.num_tokens >= vocab_size)
    ]
    if not found:
        raise ValueError(
            f"the model reads its {vocab_size} tokens through no Embedding or CategoryEncoding "
            "layer, so no weight per token can be attributed"
        )
    return found


@contextlib.contextmanager
def scaled_embeddings(layers: list[Any], weights: Any) -> Iterator[None]:
    """Within the block, each token of ``layers`` counts with its weight (``[batch, tokens]``,
    a tensor read when the model is called): an embedding comes out multiplied by it; a
    bag-of-words vector holds, per slot, the largest weight of the tokens in it (multi-hot) or
    their sum (counts). Slots of pairs of adjacent tokens (hashed bigrams, appended after the
    tokens) take the product of the pair's weights."""
    import keras

    originals = [layer.call for layer in layers]
    holder = {"w": weights}

    def scaled_embedding(call: Any) -> Any:
        def scaled(inputs: Any, *args: Any, **kwargs: Any) -> Any:
            out = call(inputs, *args, **kwargs)
            return out * holder["w"][:, : out.shape[1], None]

        return scaled

    def weighted_bag(layer: Any) -> Any:
        def bag(inputs: Any, *args: Any, **kwargs: Any) -> Any:
            import tensorflow as tf

            w = tf.cast(holder["w"], tf.float32)
            length = int(w.shape[1])
            extra = int(inputs.shape[1]) - length
            if extra > 0:  # bigram slots: one per adjacent pair
                w = tf.concat([w, (w[:, :-1] * w[:, 1:])[:, :extra]], axis=1)
            hot = tf.one_hot(tf.cast(inputs, tf.int64), layer.num_tokens) * w[:, :, None]
            if layer.output_mode == "count":
                return tf.reduce_sum(hot, axis=1)
            return tf.reduce_max(hot, axis=1)

        return bag

    try:
        for layer in layers:
            if isinstance(layer, keras.layers.CategoryEncoding):
                layer.call = weighted_bag(layer)
            else:
                layer.call = scaled_embedding(layer.call)
        yield
    finally:
        for layer, call in zip(layers, originals, strict=True):
            layer.call = call


def token_integrated_gradients(
    model: Any, name: str, ids: Any, target: int, vocab_size: int, steps: int = DEFAULT_STEPS
) -> Attribution:
    """Integrated gradients of the per-token embedding weights of one id sequence ``ids``
    (``[tokens]``, padding included): one attribution per position (padding gets 0)."""
    import numpy as np
    import tensorflow as tf

    ids = tf.convert_to_tensor(ids, tf.int64)
    length = int(ids.shape[0])
    layers = token_embeddings(model, vocab_size)
    alphas = np.linspace(0.0, 1.0, steps + 1, dtype=np.float32)
    grads, scores = [], []
    for start in range(0, len(alphas), CHUNK):
        chunk = alphas[start : start + CHUNK]
        weights = tf.Variable(np.repeat(chunk[:, None], length, axis=1))
        batch = tf.repeat(ids[None], len(chunk), axis=0)
        with tf.GradientTape() as tape, scaled_embeddings(layers, weights):
            out = model({name: batch}, training=False)[:, target]
        grads.append(tape.gradient(out, weights).numpy())
        scores.append(out.numpy())
    g = np.concatenate(grads)
    s = np.concatenate(scores)
    values = (g[:-1] + g[1:]).sum(axis=0) / (2.0 * steps)
    values = np.where(ids.numpy() != 0, values, 0.0)
    return Attribution(values, float(s[-1]), float(s[0]), target, "integrated_gradients", steps)


def token_saliency(model: Any, name: str, ids: Any, target: int, vocab_size: int) -> Attribution:
    """The gradient of the target's score with respect to each token's embedding weight at 1."""
    import numpy as np
    import tensorflow as tf

    ids = tf.convert_to_tensor(ids, tf.int64)[None]
    layers = token_embeddings(model, vocab_size)
    weights = tf.Variable(tf.ones([1, int(ids.shape[1])]))
    with tf.GradientTape() as tape, scaled_embeddings(layers, weights):
        out = model({name: ids}, training=False)[:, target]
    grad = tape.gradient(out, weights)[0].numpy()
    with scaled_embeddings(layers, tf.zeros([1, int(ids.shape[1])])):
        zero = float(model({name: ids}, training=False)[0, target])
    values = np.where(ids.numpy()[0] != 0, grad, 0.0)
    return Attribution(values, float(out.numpy()[0]), zero, target, "saliency", 1)


def _layers(model: Any) -> Iterator[Any]:
    for layer in model.layers:
        yield layer
        if hasattr(layer, "layers"):
            yield from _layers(layer)
