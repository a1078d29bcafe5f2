"""Greedy and beam-search decoding in the TensorFlow graph (what the exported model runs).

``decode(model, source_ids, ...)`` runs the trained model's ``encoder`` once and its causal
``decoder`` on the growing prefixes inside a ``tf.while_loop``: no Python per step, so the
same function runs eagerly in the evaluator and inside the exported SavedModel. Greedy
decoding is beam search with one beam.

Beam search keeps ``beam_size`` hypotheses per input, scored by the sum of their tokens' log
probabilities. A hypothesis that produced ``[EOS]`` is finished: it is extended only by
``[PAD]`` at no cost, so it keeps its score and competes with the unfinished ones until the
end. With ``length_penalty`` alpha > 0 the final choice divides each score by
``((5 + length) / 6) ** alpha`` (Wu et al. 2016); 0 picks the most probable sequence.
"""

from __future__ import annotations

from typing import Any

NEG_INF = -1e9


def decode(
    model: Any,
    source_ids: Any,
    *,
    bos_id: int,
    eos_id: int,
    max_length: int,
    beam_size: int = 1,
    length_penalty: float = 0.0,
) -> tuple[Any, Any]:
    """``(tokens [batch, <= max_length] int64, scores [batch] float32)`` for ``source_ids``.

    ``tokens`` end before ``[EOS]`` and are padded with 0; ``scores`` are the chosen
    sequences' summed log probabilities (``[EOS]`` included)."""
    import tensorflow as tf

    encoder, decoder = model.get_layer("encoder"), model.get_layer("decoder")
    source_ids = tf.cast(source_ids, tf.int64)
    batch = tf.shape(source_ids)[0]
    k = beam_size
    memory = encoder(source_ids, training=False)
    source = tf.repeat(source_ids, k, axis=0)  # [batch * k, source]
    memory = tf.repeat(memory, k, axis=0)
    first = tf.concat([[0.0], tf.fill([k - 1], NEG_INF)], 0)  # one live beam at the start
    scores = tf.reshape(tf.tile(first[None, :], [batch, 1]), [-1])
    sequences = tf.fill([batch * k, 1], tf.constant(bos_id, tf.int64))
    finished = tf.zeros([batch * k], tf.bool)
    offsets = tf.range(batch, dtype=tf.int64)[:, None] * k

    def step(t: Any, sequences: Any, scores: Any, finished: Any) -> Any:
        logits = decoder({"source": source, "memory": memory, "target": sequences}, training=False)
        log_probs = tf.nn.log_softmax(tf.cast(logits[:, -1, :], tf.float32))
        vocab = tf.shape(log_probs)[1]
        pad_only = tf.where(tf.range(vocab) == 0, 0.0, NEG_INF)  # finished: [PAD] at no cost
        log_probs = tf.where(finished[:, None], pad_only[None, :], log_probs)
        candidates = tf.reshape(scores[:, None] + log_probs, [batch, -1])  # [batch, k * vocab]
        top, index = tf.math.top_k(candidates, k)
        index = tf.cast(index, tf.int64)
        vocab64 = tf.cast(vocab, tf.int64)
        rows = tf.reshape(offsets + index // vocab64, [-1])
        tokens = tf.reshape(index % vocab64, [-1, 1])
        sequences = tf.concat([tf.gather(sequences, rows), tokens], 1)
        finished = tf.gather(finished, rows) | tf.equal(tokens[:, 0], eos_id)
        return t + 1, sequences, tf.reshape(top, [-1]), finished

    def running(t: Any, sequences: Any, scores: Any, finished: Any) -> Any:
        return tf.logical_and(t < max_length, tf.logical_not(tf.reduce_all(finished)))

    _, sequences, scores, finished = tf.while_loop(
        running,
        step,
        (tf.constant(0), sequences, scores, finished),
        shape_invariants=(
            tf.TensorShape([]),
            tf.TensorShape([None, None]),
            tf.TensorShape([None]),
            tf.TensorShape([None]),
        ),
    )
    tokens = sequences[:, 1:]  # without [BOS]
    ended = tf.cumsum(tf.cast(tf.equal(tokens, eos_id), tf.int32), axis=1, exclusive=True) > 0
    keep = tf.logical_not(ended) & tf.not_equal(tokens, eos_id)
    tokens = tf.where(keep, tokens, tf.zeros_like(tokens))
    final = scores
    if length_penalty > 0:
        lengths = tf.reduce_sum(tf.cast(keep, tf.float32), axis=1) + 1.0
        final = scores / tf.pow((5.0 + lengths) / 6.0, length_penalty)
    best = tf.argmax(tf.reshape(final, [batch, k]), axis=1)
    rows = tf.range(batch, dtype=tf.int64) * k + best
    return tf.gather(tokens, rows), tf.gather(scores, rows)


def sequence_log_prob(model: Any, source_ids: Any, target_ids: Any, bos_id: int, eos_id: int):
    """The summed log probability the model gives each target (``[EOS]`` included).

    ``target_ids`` ``[batch, time]`` are padded with 0; used to compare decoders' choices."""
    import tensorflow as tf

    target_ids = tf.cast(target_ids, tf.int64)
    lengths = tf.reduce_sum(tf.cast(tf.not_equal(target_ids, 0), tf.int32), axis=1)
    batch = tf.shape(target_ids)[0]
    bos = tf.fill([batch, 1], tf.constant(bos_id, tf.int64))
    inputs = tf.concat([bos, target_ids], 1)
    padded = tf.concat([target_ids, tf.zeros([batch, 1], tf.int64)], 1)
    eos = tf.one_hot(lengths, tf.shape(padded)[1], dtype=tf.int64) * eos_id
    outputs = padded + eos
    logits = model({"source": tf.cast(source_ids, tf.int64), "target": inputs}, training=False)
    log_probs = tf.nn.log_softmax(tf.cast(logits, tf.float32))
    picked = tf.gather(log_probs, outputs, batch_dims=2)
    weights = tf.sequence_mask(lengths + 1, tf.shape(outputs)[1], tf.float32)
    return tf.reduce_sum(picked * weights, axis=1)


def translator(
    model: Any, inputs: dict[str, Any], pipeline: Any, beam_size: int, length_penalty: float
) -> Any:
    """A ``tf.function``: raw source strings ``[batch]`` -> ``{"text", "tokens", "score"}``.

    Preprocessing is the input pipeline's ``serving`` (the training tokenisation), decoding is
    ``decode`` with ``beam_size`` beams (1: greedy); the evaluator and the export both run it."""
    import tensorflow as tf

    from .inputs import vocabulary_of
    from .tf_ops import Decoder

    target = inputs["target"]
    signature, preprocess = pipeline.serving(inputs)
    to_text = Decoder(vocabulary_of(target))
    (name,) = signature

    @tf.function(input_signature=[signature[name]])
    def translate(texts: Any) -> dict[str, Any]:
        ids = preprocess({name: texts})[name]
        tokens, scores = decode(
            model,
            ids,
            bos_id=int(target["bos_id"]),
            eos_id=int(target["eos_id"]),
            max_length=int(target["max_length"]) - 1,
            beam_size=beam_size,
            length_penalty=length_penalty,
        )
        return {"text": to_text(tokens), "tokens": tokens, "score": scores}

    return translate
