"""Record functions of the text stages, run inside Beam workers (standard library only).

Each takes a record and returns a new one, or raises ``beamline.ingest.Reject`` with a reason.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from beamline.ingest import Reject

from .tokens import WHITESPACE, Level, count_tokens

_WHITESPACE = re.compile(WHITESPACE)


def _text(record: dict[str, Any], feature: str) -> str:
    value = record.get(feature)
    if value is None:
        raise Reject(f"missing text: no '{feature}' feature in the record")
    if isinstance(value, bytes):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise Reject(
                f"undecodable bytes in '{feature}': invalid UTF-8 (byte 0x{value[exc.start]:02x} "
                f"at {exc.start})"
            ) from None
    if not isinstance(value, str):
        raise Reject(f"feature '{feature}' holds {type(value).__name__}, not text")
    return value


def normalize_record(
    record: dict[str, Any], feature: str, form: str, lowercase: bool, collapse_whitespace: bool
) -> dict[str, Any]:
    """Unicode-normalise (``form``), optionally lowercase and collapse whitespace; reject empty."""
    text = _text(record, feature)
    if form != "none":
        text = unicodedata.normalize(form, text)
    if lowercase:
        text = text.lower()
    if collapse_whitespace:
        # Any Unicode space becomes one ASCII space: the TF tokeniser splits on ASCII only.
        text = " ".join(text.split())
    if not text.strip():
        raise Reject(f"empty text in '{feature}' after normalisation")
    return {**record, feature: text}


def length_record(
    record: dict[str, Any], feature: str, unit: str, level: Level, minimum: int, maximum: int
) -> dict[str, Any]:
    """Keep texts whose length in ``unit`` (chars or tokens) lies in [minimum, maximum]."""
    text = _text(record, feature)
    size = len(text) if unit == "chars" else count_tokens(text, level)
    name = "characters" if unit == "chars" else "tokens"
    if size < minimum:
        raise Reject(f"text too short: {size} {name} < min {minimum}")
    if maximum and size > maximum:
        raise Reject(f"text too long: {size} {name} > max {maximum}")
    return {**record, feature: text}


def identity(record: dict[str, Any]) -> dict[str, Any]:
    """The record unchanged (a stage that only analyses)."""
    return record
