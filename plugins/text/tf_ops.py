"""TensorFlow text preprocessing: the one function training and serving both run.

``TokenEncoder`` turns a batch of raw strings into token ids with the vocabulary saved by the
``text_vocabulary`` analyzer. Lookup needs no TensorFlow resource: every vocabulary token's
64-bit fingerprint (``tf.strings.to_hash_bucket_fast``) is sorted once into a constant, and a
token's id is found with ``tf.searchsorted`` and an equality check. Constants travel inside a
SavedModel with nothing to track, whereas a ``StaticHashTable`` captured by a serving function
must be tracked by the exporter (``keras.export.ExportArchive`` tracks only the model).

TensorFlow is imported inside the functions only.
"""

from __future__ import annotations

import functools
import unicodedata
from typing import Any

from .tokens import OOV_ID, PAD_ID, PUNCTUATION, WHITESPACE, Level

_FINGERPRINT_BUCKETS = 2**63 - 1


@functools.lru_cache(maxsize=4)
def normalization_table(form: str) -> tuple[list[str], list[str]]:
    """``(characters, replacements)``: every character whose Unicode ``form`` differs from it.

    Planes 0-2 (every assigned compatibility character is there); surrogates skipped."""
    chars, replacements = [], []
    for point in range(0x30000):
        if 0xD800 <= point <= 0xDFFF:
            continue
        char = chr(point)
        normal = unicodedata.normalize(form, char)
        if normal != char:
            chars.append(char)
            replacements.append(normal)
    return chars, replacements


class CharNormalizer:
    """Unicode normalisation in the graph, character by character (TensorFlow has no NFKC op).

    Each character is replaced by its own normal form (``ﬁ`` -> ``fi``, fullwidth ``Ａ`` -> ``A``,
    no-break space -> space for NFKC), looked up like vocabulary tokens in sorted 64-bit
    fingerprints held as constants. For text typed in composed form this equals
    ``unicodedata.normalize(form, text)``; a base letter followed by a separate combining accent
    is not composed. Text already in ``form`` is unchanged, so training data normalised at
    ingest goes through untouched while raw serving input gets the same form."""

    def __init__(self, form: str) -> None:
        import numpy as np
        import tensorflow as tf

        chars, replacements = normalization_table(form)
        prints = tf.strings.to_hash_bucket_fast(tf.constant(chars), _FINGERPRINT_BUCKETS).numpy()
        order = np.argsort(prints, kind="stable")
        self._prints = tf.constant(prints[order], tf.int64)
        self._replacements = tf.constant(np.array(replacements, dtype=object)[order])
        self._count = len(chars)

    def __call__(self, texts: Any) -> Any:
        """A 1-D string tensor with every character in its normal form."""
        import tensorflow as tf

        chars = tf.strings.unicode_split(texts, "UTF-8", errors="replace")
        flat = chars.flat_values
        prints = tf.strings.to_hash_bucket_fast(flat, _FINGERPRINT_BUCKETS)
        position = tf.minimum(tf.searchsorted(self._prints, prints), self._count - 1)
        found = tf.equal(tf.gather(self._prints, position), prints)
        normal = tf.where(found, tf.gather(self._replacements, position), flat)
        return tf.strings.reduce_join(chars.with_flat_values(normal), axis=-1)


def tf_tokenize(texts: Any, level: Level = "word", lowercase: bool = False) -> Any:
    """Tokens of a 1-D string tensor as a ``RaggedTensor`` (the twin of ``tokens.tokenize``)."""
    import tensorflow as tf

    if lowercase:
        texts = tf.strings.lower(texts, encoding="utf-8")
    if level == "char":
        return tf.strings.unicode_split(texts, "UTF-8", errors="replace")
    spaced = tf.strings.regex_replace(texts, f"({PUNCTUATION})", r" \1 ")
    spaced = tf.strings.regex_replace(spaced, WHITESPACE, " ")
    parts = tf.strings.split(spaced, sep=" ")
    return tf.ragged.boolean_mask(parts, tf.strings.length(parts) > 0)


class TokenEncoder:
    """Raw strings -> token ids (``encode``) -> padded id matrices (``pad``).

    ``vocabulary`` is the full id-ordered token list (``[PAD]``, ``[UNK]``, then the tokens);
    ``reserved`` of its first entries are never matched in text. ``normalization`` (the Unicode
    form ingest applied, e.g. ``NFKC``) is applied first, per character (``CharNormalizer``)."""

    def __init__(
        self,
        vocabulary: list[str],
        level: Level,
        lowercase: bool,
        reserved: int = 2,
        normalization: str = "none",
    ) -> None:
        import numpy as np
        import tensorflow as tf

        self.level = level
        self.lowercase = lowercase
        self.normalize = CharNormalizer(normalization) if normalization != "none" else None
        self.size = len(vocabulary)
        words = vocabulary[reserved:]
        if words:
            prints = tf.strings.to_hash_bucket_fast(tf.constant(words), _FINGERPRINT_BUCKETS)
            prints = prints.numpy()
        else:
            prints = np.zeros([0], np.int64)
        order = np.argsort(prints, kind="stable")
        sorted_prints = prints[order]
        if len(sorted_prints) > 1 and (np.diff(sorted_prints) == 0).any():
            raise ValueError("two vocabulary tokens share a 64-bit fingerprint")
        self._prints = tf.constant(sorted_prints, tf.int64)
        self._ids = tf.constant(order.astype(np.int64) + reserved, tf.int64)
        self._count = len(words)

    def encode(self, texts: Any) -> Any:
        """Token ids of a 1-D string tensor: a ``RaggedTensor`` of int64 (unknown -> ``[UNK]``)."""
        import tensorflow as tf

        if self.normalize is not None:
            texts = self.normalize(texts)
        tokens = tf_tokenize(texts, self.level, self.lowercase)
        flat = tokens.flat_values
        if self._count == 0:
            return tokens.with_flat_values(tf.fill(tf.shape(flat), tf.constant(OOV_ID, tf.int64)))
        prints = tf.strings.to_hash_bucket_fast(flat, _FINGERPRINT_BUCKETS)
        position = tf.minimum(tf.searchsorted(self._prints, prints), self._count - 1)
        found = tf.equal(tf.gather(self._prints, position), prints)
        ids = tf.where(found, tf.gather(self._ids, position), tf.constant(OOV_ID, tf.int64))
        return tokens.with_flat_values(ids)

    @staticmethod
    def pad(ids: Any, max_length: int, fixed: bool = True) -> Any:
        """Dense ``[batch, max_length]`` ids (first tokens kept, ``[PAD]`` after the end).

        With ``fixed`` False the width is the longest row of the batch, at most ``max_length``."""
        ids = ids[:, :max_length]
        if fixed:
            return ids.to_tensor(default_value=PAD_ID, shape=[None, max_length])
        return ids.to_tensor(default_value=PAD_ID)

    def __call__(self, texts: Any, max_length: int, fixed: bool = True) -> Any:
        """``pad(encode(texts))``: the preprocessing of training, evaluation and serving."""
        return self.pad(self.encode(texts), max_length, fixed)
