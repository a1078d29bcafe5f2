"""Records as sources and transforms pass them along, and the helpers every stage shares.

A record is a dict of feature name to ``bytes``, ``str``, ``int``, ``float``, ``bool``, ``None``
(missing) or a list of those. Keys that start with ``__`` are hidden: never written.
``__source__`` (``SOURCE_KEY``) says where the record came from; ``__meta__`` (``META_KEY``) maps
a feature to a dict of details (scalars) that ``features.json`` summarises.

A stage rejects a record by raising (or, for a reader, yielding) ``Reject``; a rejected record
is written as ``{"source": ..., "stage": ..., "reason": ...}`` (``rejected``). Beam stages tag
their outputs ``main`` (records) and ``rejected``.

Nothing here imports Beam or TensorFlow: Beam workers, the engines and tests share it.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

SOURCE_KEY = "__source__"
META_KEY = "__meta__"
#: The tags of a stage's outputs: records, and rejected-record entries.
MAIN = "main"
REJECTED = "rejected"


class Reject(Exception):
    """Reject one record: raise it from a record function, or yield it from a source's reader.

    ``source`` defaults to the record's ``__source__`` (or the reader's item)."""

    def __init__(self, reason: str, source: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.source = source


def rejected(source: str, stage: str, reason: str) -> dict[str, str]:
    """A rejected-record entry: where the record came from, which stage rejected it, and why."""
    return {"source": str(source), "stage": stage, "reason": reason}


def record_source(record: dict[str, Any]) -> str:
    """Where a record came from (its ``__source__``)."""
    return str(record.get(SOURCE_KEY, "<unknown>"))


def is_hidden(name: str) -> bool:
    """Whether a record key is hidden (``__source__``, ``__meta__``): never written."""
    return name.startswith("__")


def visible(record: dict[str, Any]) -> dict[str, Any]:
    """The features of ``record`` that are written: hidden keys and missing values dropped."""
    return {k: v for k, v in record.items() if not is_hidden(k) and v is not None}


def with_meta(record: dict[str, Any], feature: str, **details: Any) -> dict[str, Any]:
    """A copy of ``record`` whose ``__meta__`` for ``feature`` is updated with ``details``."""
    meta = {k: dict(v) for k, v in (record.get(META_KEY) or {}).items()}
    meta.setdefault(feature, {}).update(details)
    return {**record, META_KEY: meta}


def canonical_bytes(value: Any) -> bytes:
    """A type-tagged, unambiguous byte form of a feature value (for hashing)."""
    if isinstance(value, bytes):
        return b"b%d:" % len(value) + value
    if isinstance(value, str):
        data = value.encode("utf-8")
        return b"s%d:" % len(data) + data
    if isinstance(value, bool):
        return b"i%d;" % int(value)
    if isinstance(value, int):
        return b"i%d;" % value
    if isinstance(value, float):
        return b"f" + repr(value).encode() + b";"
    if value is None:
        return b"n;"
    if isinstance(value, list | tuple):
        return b"l%d:" % len(value) + b"".join(canonical_bytes(v) for v in value)
    raise TypeError(f"unsupported feature value of type {type(value).__name__}: {value!r:.80}")


_NAME_FRAMES: dict[str, bytes] = {}


def content_hash(record: dict[str, Any]) -> str:
    """The sha256 of a record's visible features (each name and value in ``canonical_bytes``
    form, by name): equal content, equal hash."""
    parts: list[bytes] = []
    for name in sorted(record):
        value = record[name]
        if value is None:
            continue
        key = _NAME_FRAMES.get(name)
        if key is None:
            key = b"" if is_hidden(name) else canonical_bytes(name)
            if len(_NAME_FRAMES) < 65536:  # feature names repeat from record to record
                _NAME_FRAMES[name] = key
        if not key:  # a hidden name
            continue
        parts.append(key)
        # The common scalar types framed inline (the forms canonical_bytes gives; a table row's
        # ~20 cells made this a tenth of the ingest's time); bytes are not copied into a frame.
        kind = type(value)
        if kind is str:
            data = value.encode("utf-8")
            parts += (b"s%d:" % len(data), data)
        elif kind is float:
            parts.append(b"f%a;" % value)
        elif kind is int:
            parts.append(b"i%d;" % value)
        elif kind is bytes:
            parts += (b"b%d:" % len(value), value)
        else:
            parts.append(canonical_bytes(value))
    return hashlib.sha256(b"".join(parts)).hexdigest()


def natural_key(text: str) -> tuple[Any, ...]:
    """A sort key that orders numbers inside text by value (``row 9`` before ``row 10``)."""
    parts = re.split(r"(\d+)", text)
    return tuple((0, int(p), p) if p.isdigit() else (1, 0, p) for p in parts)
