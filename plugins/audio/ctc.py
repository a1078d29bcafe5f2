"""CTC in TensorFlow: the loss and the decoders shared by training, evaluation and export.

The model's outputs are ``logits [batch, time, classes]`` (the last class is the CTC blank) and
``frames [batch]`` (each example's valid time steps). ``ctc_loss`` is TensorFlow's
(``tf.nn.ctc_loss``, sparse labels: the CPU kernel); ``greedy_decode`` takes the best class per
step, merges repeats and drops blanks (``tf.nn.ctc_greedy_decoder``); ``beam_decode`` keeps
``beam_width`` prefixes, summing over the alignments of each
(``tf.nn.ctc_beam_search_decoder``), so it finds a labelling at least as probable as greedy's
when the beam is wide enough. ``to_text`` joins the decoded ids into strings inside a graph (the
exported model returns text). TensorFlow is imported inside the functions.
"""

from __future__ import annotations

from typing import Any, Literal

Decoder = Literal["greedy", "beam"]


def ctc_loss(labels: Any, logits: Any, frames: Any, dense: bool = False) -> Any:
    """Per-example CTC loss (negative log-likelihood) of ``labels`` ``[batch, n]`` padded with
    -1, under ``logits`` ``[batch, time, classes]`` with ``frames`` valid steps.

    Sparse labels run TensorFlow's CPU kernel, which refuses empty labellings; ``dense`` runs
    the (slower) TensorFlow implementation that scores those too."""
    import tensorflow as tf

    labels = tf.cast(labels, tf.int32)
    lengths = tf.reduce_sum(tf.cast(labels >= 0, tf.int32), axis=1)
    if dense:  # one padding column more: a [batch, 0] tensor of labels is scored wrongly
        padded = tf.pad(labels, [[0, 0], [0, 1]], constant_values=-1)
        targets, label_length = tf.maximum(padded, 0), lengths
    else:
        targets = tf.RaggedTensor.from_tensor(labels, lengths=lengths).to_sparse()
        label_length = None
    return tf.nn.ctc_loss(
        labels=targets,
        logits=tf.cast(logits, tf.float32),
        label_length=label_length,
        logit_length=tf.cast(frames, tf.int32),
        logits_time_major=False,
        blank_index=-1,
    )


def decode(logits: Any, frames: Any, decoder: Decoder = "greedy", beam_width: int = 16) -> Any:
    """The best labelling of each example as a ``tf.RaggedTensor`` of class ids (no blanks)."""
    import tensorflow as tf

    time_major = tf.transpose(tf.cast(logits, tf.float32), [1, 0, 2])
    lengths = tf.cast(frames, tf.int32)
    if decoder == "beam":
        decoded, _ = tf.nn.ctc_beam_search_decoder(
            time_major, lengths, beam_width=beam_width, top_paths=1
        )
    else:
        classes = tf.shape(logits)[-1]
        decoded, _ = tf.nn.ctc_greedy_decoder(
            time_major, lengths, merge_repeated=True, blank_index=classes - 1
        )
    return tf.RaggedTensor.from_sparse(tf.cast(decoded[0], tf.int32))


def greedy_decode(logits: Any, frames: Any) -> Any:
    """``decode`` with the greedy (best path) decoder."""
    return decode(logits, frames, "greedy")


def beam_decode(logits: Any, frames: Any, beam_width: int = 16) -> Any:
    """``decode`` with the beam-search decoder."""
    return decode(logits, frames, "beam", beam_width)


def to_text(ids: Any, vocabulary: list[str], level: str) -> Any:
    """Decoded ids (ragged ``[batch, None]``) -> strings ``[batch]``: tokens joined by a space
    (``level: word``) or by nothing (``char``)."""
    import tensorflow as tf

    tokens = tf.gather(tf.constant(vocabulary), ids)
    joined = tf.strings.reduce_join(tokens, axis=-1, separator=" " if level == "word" else "")
    return tf.ensure_shape(joined, [None])


def labelling_log_probability(labels: Any, logits: Any, frames: Any) -> Any:
    """log p(labels | audio) summed over all alignments (the negative CTC loss), per example;
    empty labellings are scored too (``labels`` padded with -1)."""
    return -ctc_loss(labels, logits, frames, dense=True)


def transcribe(
    model: Any,
    batches: Any,
    vocabulary: list[str],
    level: str,
    text_feature: str,
    decoders: tuple[Decoder, ...] = ("greedy",),
    beam_width: int = 16,
) -> list[dict[str, Any]]:
    """Run ``model`` over ``batches`` (``speech_input`` batches with ids) and decode them.

    One dict per example, in order: its id features, ``reference`` (the normalised transcript),
    ``loss`` (its CTC loss) and one hypothesis per decoder (``greedy``, ``beam``)."""
    import numpy as np

    rows: list[dict[str, Any]] = []
    for features, labels, extra in batches:
        out = model(features, training=False)
        logits, frames = out["logits"], out["frames"]
        losses = ctc_loss(labels, logits, frames, dense=True).numpy()  # empty targets too
        texts = {
            d: to_text(decode(logits, frames, d, beam_width), vocabulary, level).numpy()
            for d in decoders
        }
        named = {k: v.numpy() for k, v in extra.items()}
        for i in range(len(losses)):
            row: dict[str, Any] = {k: _plain(v[i]) for k, v in named.items() if k != text_feature}
            row["reference"] = _plain(named[text_feature][i])
            row["loss"] = float(np.float64(losses[i]))
            row.update({d: texts[d][i].decode("utf-8", "replace") for d in decoders})
            rows.append(row)
    return rows


def _plain(value: Any) -> Any:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else int(value)
