"""Tokenisation of sequence pairs, in Python (the vocabulary analyzer) and TensorFlow (training,
evaluation, serving): one rule per level, the same in both.

Levels: ``char`` (every character: a word's letters for G2P), ``space`` (tokens separated by
whitespace: phonemes, pre-tokenised text), ``word`` (``space`` after putting spaces around
punctuation, so ``"Hi!"`` is ``Hi`` ``!``). Decoded tokens are joined by ``""`` for ``char``
and by one space otherwise.
"""

from __future__ import annotations

import re
from typing import Literal

Level = Literal["char", "space", "word"]

PAD_TOKEN, OOV_TOKEN, BOS_TOKEN, EOS_TOKEN = "[PAD]", "[UNK]", "[BOS]", "[EOS]"
RESERVED = [PAD_TOKEN, OOV_TOKEN, BOS_TOKEN, EOS_TOKEN]
PAD_ID, OOV_ID, BOS_ID, EOS_ID = 0, 1, 2, 3

#: What ``word`` splits off (a regular expression both ``re`` and TensorFlow's RE2 accept).
PUNCTUATION = r"[!-/:-@\[-`{-~¡-¿‐-‧]"


def tokenize(text: str, level: Level, lowercase: bool = False) -> list[str]:
    """The tokens of ``text`` at ``level`` (the twin of ``tf_ops.tf_tokenize``)."""
    if lowercase:
        text = text.lower()
    if level == "char":
        return list(text)
    if level == "word":
        text = re.sub(f"({PUNCTUATION})", r" \1 ", text)
    return text.split()


def joiner(level: Level) -> str:
    """What decoded tokens are joined with."""
    return "" if level == "char" else " "
