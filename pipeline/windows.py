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
