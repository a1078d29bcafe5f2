"""Event-time windows of a stream: their names, and the feature summaries ``features.json`` of a
streaming examples artifact is built from (windows take the place of splits).

A window's folder is ``window-<start>-<end>`` with UTC times written ``YYYYMMDDTHHMMSSZ``
(milliseconds added when a bound is not a whole second), so names sort in time order and are the
same on every run of the same data. Nothing here imports Beam.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from .examples import features_document
from .records import META_KEY, is_hidden

WINDOW_PREFIX = "window-"


def utc_text(seconds: float) -> str:
    """``20240101T000010Z`` (``20240101T000010.500Z`` with milliseconds) for epoch seconds."""
    millis = round(seconds * 1000)
    moment = datetime.fromtimestamp(millis // 1000, UTC)
    text = moment.strftime("%Y%m%dT%H%M%S")
    return f"{text}.{millis % 1000:03d}Z" if millis % 1000 else f"{text}Z"


def window_name(start: float, end: float) -> str:
    """The folder name of the window ``[start, end)`` (epoch seconds)."""
    return f"{WINDOW_PREFIX}{utc_text(start)}-{utc_text(end)}"


#: The kind of a value by its exact type (the common case; subclasses go through ``_kind``).
_KINDS = {bool: "int", int: "int", float: "float", str: "str", bytes: "bytes"}


def _kind(value: Any) -> str:
    kind = _KINDS.get(type(value))
    if kind is not None:
        return kind
    if isinstance(value, bool):
        return "int"
    for kind, types in (("int", int), ("float", float), ("str", str), ("bytes", bytes)):
        if isinstance(value, types):
            return kind
    raise TypeError(f"unsupported feature value of type {type(value).__name__}")


def dtype_of(kinds: Iterable[str]) -> str:
    """The ``tf.train.Feature`` list of values of these Python kinds (as batch ingest decides)."""
    kinds = set(kinds)
    if not kinds or kinds & {"str", "bytes"}:
        return "bytes"
    return "float" if "float" in kinds else "int64"


def summarize(records: Iterable[dict[str, Any]], label: str | None) -> dict[str, Any]:
    """What ``features.json`` needs from a window: per feature its value kinds, presence, value
    counts and ``__meta__`` details; the distinct label values."""
    if isinstance(records, list):
        fast = _summarize_columns(records, label)
        if fast is not None:
            return fast
    features: dict[str, dict[str, Any]] = {}
    labels: set[str] = set()
    count = 0
    for record in records:
        count += 1
        meta = record.get(META_KEY) or {}
        for name, value in record.items():  # visible(record), without building it
            if value is None or is_hidden(name):
                continue
            entry = features.get(name)
            if entry is None:
                entry = features[name] = {
                    "kinds": set(),
                    "present": 0,
                    "lengths": set(),
                    "meta": {},
                }
            if isinstance(value, list | tuple):
                entry["kinds"].update(_kind(v) for v in value)
                entry["lengths"].add(len(value))
            else:
                entry["kinds"].add(_kind(value))
                entry["lengths"].add(1)
            entry["present"] += 1
            if not meta:
                continue
            for key, detail in (meta.get(name) or {}).items():
                if isinstance(detail, str | int | float | bool):
                    entry["meta"].setdefault(key, set()).add(detail)
        if label and record.get(label) is not None:
            value = record[label]
            value = value[0] if isinstance(value, list | tuple) and len(value) == 1 else value
            labels.add(value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value))
    return {"count": count, "features": features, "labels": labels}


#: Exact types ``_summarize_columns`` takes: one scalar value each.
_SCALARS = frozenset(_KINDS) | {type(None)}


def _summarize_columns(records: list[dict[str, Any]], label: str | None) -> dict[str, Any] | None:
    """``summarize`` of records that all have the same keys, the first with no missing value
    (so the features come in its order, as ``summarize`` adds them), every value a plain scalar
    and no ``__meta__`` (a broker's window), a column at a time: the same summary; None for
    any other records."""
    if not records:
        return None
    keys = records[0].keys()
    if META_KEY in keys or any(v is None for v in records[0].values()):
        return None
    if any(r.keys() != keys for r in records):
        return None
    features: dict[str, dict[str, Any]] = {}
    labels: set[str] | None = set()
    for name in keys:
        column = [r[name] for r in records]
        types = set(map(type, column))
        if not types <= _SCALARS:
            return None
        if name == label:
            labels = _label_values(column, types)
        if is_hidden(name):
            continue
        missing = column.count(None) if type(None) in types else 0
        kinds = {_KINDS[t] for t in types if t is not type(None)}
        present = len(column) - missing
        features[name] = {"kinds": kinds, "present": present, "lengths": {1}, "meta": {}}
    if label and label not in keys:
        labels = set()
    if labels is None:
        return None
    return {"count": len(records), "features": features, "labels": labels}


def _label_values(column: list[Any], types: set[type]) -> set[str] | None:
    """The distinct label values of a column as ``summarize`` writes them (None: not plain)."""
    if types <= {str, type(None)}:
        return set(column) - {None}
    if types <= {bytes, type(None)}:
        return {v.decode("utf-8", "replace") for v in set(column) - {None}}
    return None


def to_json(summary: dict[str, Any]) -> dict[str, Any]:
    """A JSON-ready copy of a summary (sets become sorted lists)."""
    features = {
        name: {
            "kinds": sorted(e["kinds"]),
            "present": e["present"],
            "lengths": sorted(e["lengths"]),
            "meta": {k: sorted(v, key=str) for k, v in e["meta"].items()},
        }
        for name, e in summary["features"].items()
    }
    return {"count": summary["count"], "features": features, "labels": sorted(summary["labels"])}


def merge(summaries: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """One summary (in JSON form) of several windows' summaries (in JSON form)."""
    out: dict[str, Any] = {"count": 0, "features": {}, "labels": set()}
    for summary in summaries:
        out["count"] += summary["count"]
        out["labels"].update(summary["labels"])
        for name, entry in summary["features"].items():
            mine = out["features"].setdefault(
                name, {"kinds": set(), "present": 0, "lengths": set(), "meta": {}}
            )
            mine["kinds"].update(entry["kinds"])
            mine["present"] += entry["present"]
            mine["lengths"].update(entry["lengths"])
            for key, values in entry["meta"].items():
                mine["meta"].setdefault(key, set()).update(values)
    return out


def _number_order(labels: set[str]) -> list[str]:
    try:
        return sorted(labels, key=lambda text: (float(text), text))
    except ValueError:
        return sorted(labels)


def _modality(entry: dict[str, Any]) -> str:
    kinds = entry["kinds"]
    if kinds and kinds <= {"int", "float"}:
        return "numeric"
    return "categorical" if kinds == {"str"} else "binary"


def features_json(
    merged: dict[str, Any],
    declared: dict[str, Any],
    windows: dict[str, int],
    shards: dict[str, int],
) -> dict[str, Any]:
    """The ``features.json`` of a streaming examples artifact: windows take the place of splits.

    ``declared`` is what the source and its transforms say about the features (modalities,
    image sizes); the rest is computed from the records written."""
    features = {}
    for name, entry in sorted(merged["features"].items()):
        lengths = entry["lengths"]
        info: dict[str, Any] = dict(declared["features"].get(name, {}))
        info.setdefault("modality", _modality(entry))
        for key, values in sorted(entry["meta"].items()):
            info[key] = next(iter(values)) if len(values) == 1 else None
        info.update(
            dtype=dtype_of(entry["kinds"]),
            length=next(iter(lengths)) if len(lengths) == 1 else None,
            present=entry["present"],
        )
        features[name] = info
    label = declared.get("label") if declared.get("label") in features else None
    classes = None
    if label is not None and features[label]["dtype"] != "float":
        classes = _number_order(set(merged["labels"]))
    warnings = list(declared.get("warnings", []))
    return features_document(features, label, classes, windows, shards, warnings)
