"""TensorFlow tokenisation and id lookup: the one function training, evaluation and serving run.

``Encoder`` turns raw strings into token ids with a saved vocabulary; ``Decoder`` turns ids
back into text. Lookup uses no TensorFlow resource: each token's 64-bit fingerprint
(``tf.strings.to_hash_bucket_fast``) is sorted once into a constant and found with
``tf.searchsorted``, so the exported SavedModel has nothing else to track.
"""

from __future__ import annotations

from typing import Any

from .tokens import OOV_ID, PAD_ID, PUNCTUATION, RESERVED, Level, joiner

_BUCKETS = 2**63 - 1


def tf_tokenize(texts: Any, level: Level, lowercase: bool = False) -> Any:
    """Tokens of a 1-D string tensor as a ``RaggedTensor`` (the twin of ``tokens.tokenize``)."""
    import tensorflow as tf

    if lowercase:
        texts = tf.strings.lower(texts, encoding="utf-8")
    if level == "char":
        return tf.strings.unicode_split(texts, "UTF-8", errors="replace")
    if level == "word":
        texts = tf.strings.regex_replace(texts, f"({PUNCTUATION})", r" \1 ")
    texts = tf.strings.regex_replace(texts, r"\s+", " ")
    parts = tf.strings.split(tf.strings.strip(texts), sep=" ")
    return tf.ragged.boolean_mask(parts, tf.strings.length(parts) > 0)


class Encoder:
    """Raw strings -> ragged token ids (``[UNK]`` for tokens outside the vocabulary)."""

    def __init__(self, vocabulary: dict[str, Any]) -> None:
        import numpy as np
        import tensorflow as tf

        self.level, self.lowercase = vocabulary["level"], bool(vocabulary["lowercase"])
        words = vocabulary["tokens"][len(RESERVED) :]
        prints = np.zeros([0], np.int64)
        if words:
            prints = tf.strings.to_hash_bucket_fast(tf.constant(words), _BUCKETS).numpy()
        order = np.argsort(prints, kind="stable")
        if len(prints) > 1 and (np.diff(prints[order]) == 0).any():
            raise ValueError("two vocabulary tokens share a 64-bit fingerprint")
        self._prints = tf.constant(prints[order], tf.int64)
        self._ids = tf.constant(order.astype(np.int64) + len(RESERVED), tf.int64)
        self._count = len(words)

    def __call__(self, texts: Any) -> Any:
        """Token ids of a 1-D string tensor: a ``RaggedTensor`` of int64."""
        import tensorflow as tf

        tokens = tf_tokenize(texts, self.level, self.lowercase)
        flat = tokens.flat_values
        if self._count == 0:
            return tokens.with_flat_values(tf.fill(tf.shape(flat), tf.constant(OOV_ID, tf.int64)))
        prints = tf.strings.to_hash_bucket_fast(flat, _BUCKETS)
        position = tf.minimum(tf.searchsorted(self._prints, prints), self._count - 1)
        found = tf.equal(tf.gather(self._prints, position), prints)
        ids = tf.where(found, tf.gather(self._ids, position), tf.constant(OOV_ID, tf.int64))
        return tokens.with_flat_values(ids)


class Decoder:
    """Token ids ``[batch, time]`` (0 after the end) -> one string per row."""

    def __init__(self, vocabulary: dict[str, Any]) -> None:
        import tensorflow as tf

        self._tokens = tf.constant(vocabulary["tokens"])
        self._joiner = joiner(vocabulary["level"])

    def __call__(self, ids: Any) -> Any:
        """The text of each row (``[PAD]`` dropped, tokens joined by the level's joiner)."""
        import tensorflow as tf

        ragged = tf.ragged.boolean_mask(ids, tf.not_equal(ids, PAD_ID))
        words = tf.gather(self._tokens, ragged)
        return tf.strings.reduce_join(words, axis=1, separator=self._joiner)
