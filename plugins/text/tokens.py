"""Tokenisation rules shared by Beam (Python) and TensorFlow: one definition, two engines.

A *word* token is a run of characters between ASCII whitespace, where every ASCII punctuation
character is a token of its own (``"free!!"`` -> ``free``, ``!``, ``!``); a *char* token is one
Unicode code point (spaces included). The regular expressions below are written so that
Python's ``re`` and TensorFlow's RE2 (``tf.strings.regex_replace``) read them the same way, which
is what makes the vocabulary computed in Beam match the ids the exported model computes.

Vocabulary ids: ``0`` is the padding token, ``1`` the out-of-vocabulary token, then the
vocabulary's tokens by decreasing training count (ties: ascending token).
"""

from __future__ import annotations

import re
from typing import Literal

Level = Literal["word", "char"]

#: ASCII punctuation (0x21-0x2F, 0x3A-0x40, 0x5B-0x60, 0x7B-0x7E): each becomes its own token.
PUNCTUATION = r"[!-/:-@\[-`{-~]"
#: ASCII whitespace, the only token separator (RE2's ``\s`` and Python's differ, this does not).
WHITESPACE = r"[\t\n\v\f\r ]+"
PAD_TOKEN = "[PAD]"
OOV_TOKEN = "[UNK]"
PAD_ID = 0
OOV_ID = 1

_PUNCTUATION = re.compile(f"({PUNCTUATION})")
_WHITESPACE = re.compile(WHITESPACE)


def tokenize(text: str, level: Level = "word", lowercase: bool = False) -> list[str]:
    """The tokens of ``text`` (see the module docstring); the Python twin of ``tf_tokenize``."""
    if lowercase:
        text = text.lower()
    if level == "char":
        return list(text)
    spaced = _PUNCTUATION.sub(r" \1 ", text)
    return [token for token in _WHITESPACE.split(spaced) if token]


def count_tokens(text: str, level: Level = "word") -> int:
    """How many tokens ``text`` has."""
    return len(tokenize(text, level))
