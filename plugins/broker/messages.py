"""Broker messages: how a raw record travels as the fields of one stream entry, and back.

A message has the fields::

    data    the raw record: encoded image bytes, WAV bytes, UTF-8 text, or a table row as a
            JSON object (which of them is the stream's ``format``)
    label   optional: the record's label (text)
    time    optional: its event time, epoch seconds (default: the broker's arrival time)
    name    optional: where it came from (a file name; informational)

``decode`` turns a delivered message into a record (``__source__`` is ``<stream>/<entry id>``,
which is what the stream acknowledges) or a ``Reject`` with the reason: a malformed message is
rejected, never blocks the stream, and is never lost. Nothing here imports Beam or Redis.
"""

from __future__ import annotations

import json
import math
from typing import Any

from beamline.ingest import SOURCE_KEY, Reject

FORMATS = ("image", "audio", "text", "row")
FIELDS = ("data", "label", "time", "name")


_KNOWN = frozenset(name.encode() for name in FIELDS)


def _unknown(fields: dict[bytes, bytes]) -> list[str]:
    names = [k.decode("utf-8", "replace") for k in fields]
    return sorted(n for n in names if n not in FIELDS)


def entry_time(entry_id: str) -> float:
    """The arrival time of a stream entry: its id's millisecond part, in epoch seconds."""
    return int(entry_id.split("-", 1)[0]) / 1000.0


def event_time(entry_id: str, fields: dict[bytes, bytes]) -> float | str:
    """The message's event time (its ``time`` field, else its arrival), or why it has none."""
    raw = fields.get(b"time")
    if raw is None:
        return entry_time(entry_id)
    try:
        value = float(raw.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        return f"field 'time' is not a number of epoch seconds: {raw[:40]!r}"
    if not math.isfinite(value) or value < 0:
        return f"field 'time' is not a time: {value}"
    return value


def decode(
    source: str, fields: dict[bytes, bytes], fmt: str, feature: str, label: str
) -> dict[str, Any] | Reject:
    """The record a message carries, or a ``Reject`` naming what is wrong with it."""
    unknown = [] if fields.keys() <= _KNOWN else _unknown(fields)
    if unknown:
        return Reject(f"unknown message field(s) {unknown} (expected {list(FIELDS)})", source)
    data = fields.get(b"data")
    if data is None:
        return Reject("message has no 'data' field (the raw record)", source)
    record: dict[str, Any] = {SOURCE_KEY: source}
    if fmt == "row":
        try:
            row = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            return Reject(f"data is not a JSON object (a table row): {exc}", source)
        if not isinstance(row, dict) or not row:
            return Reject("data is not a JSON object (a table row) with columns", source)
        bad = [k for k, v in row.items() if not isinstance(v, str | int | float | bool)]
        if bad:
            return Reject(f"row column(s) {bad} are not a number or a text", source)
        record.update(row)
    elif fmt == "text":
        try:
            record[feature] = data.decode("utf-8")
        except UnicodeDecodeError:
            return Reject("data is not UTF-8 text", source)
    else:
        if not data:
            return Reject(f"data is empty (expected {fmt} bytes)", source)
        record[feature] = data
    if label and b"label" in fields:
        try:
            record[label] = fields[b"label"].decode("utf-8")
        except UnicodeDecodeError:
            return Reject("field 'label' is not UTF-8 text", source)
    return record


def encode(
    data: bytes, label: str | None = None, name: str | None = None, when: float | None = None
) -> dict[str, bytes]:
    """The fields of a message carrying ``data`` (see the module docstring)."""
    fields = {"data": data}
    if label is not None:
        fields["label"] = label.encode("utf-8")
    if name is not None:
        fields["name"] = name.encode("utf-8")
    if when is not None:
        fields["time"] = repr(float(when)).encode("ascii")
    return fields
