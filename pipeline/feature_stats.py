"""Feature statistics that ingest gathers while it writes: kinds, lengths, presence, labels.

``FeatureStats`` is an accumulator: ``add`` a record, ``merge`` two accumulators (associative and
commutative, so Beam can combine partial results from any number of workers), then ``schema()``
gives the written form that ``features.json`` is built from. ``record_kinds`` is the light pass
that only decides each feature's dtype.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .records import META_KEY, is_hidden

#: Distinct label values beyond which ``classes`` is null (a regression target, an id).
MAX_CLASSES = 10_000
_MAX_META_VALUES = 1_000
_KIND_OF_TYPE = {bool: "bool", int: "int", float: "float", str: "str", bytes: "bytes"}


def value_list(value: Any) -> list[Any]:
    """A feature value as a list of scalars."""
    return list(value) if isinstance(value, list | tuple) else [value]


def kinds_of(values: Iterable[Any], where: str = "") -> set[str]:
    """The kinds (``int``, ``float``, ``bool``, ``str``, ``bytes``) of scalar feature values."""
    try:
        return {_KIND_OF_TYPE[type(v)] for v in values}
    except KeyError:
        bad = next(v for v in values if type(v) not in _KIND_OF_TYPE)
        raise TypeError(f"{where}unsupported feature value of type {type(bad).__name__}") from None


def record_kinds(record: dict[str, Any], into: dict[str, set[str]], where: str = "") -> None:
    """Add the kinds of ``record``'s visible features to ``into`` (feature name -> kinds)."""
    for name, value in record.items():
        if value is None or is_hidden(name):
            continue
        kind = _KIND_OF_TYPE.get(type(value))  # the common case: one scalar
        if kind is None:
            kinds = kinds_of(value_list(value), f"{where}feature '{name}': ")
        mine = into.get(name)
        if mine is None:
            mine = into[name] = set()
        if kind is None:
            mine |= kinds
        else:
            mine.add(kind)


def merge_kinds(parts: Iterable[dict[str, set[str]]]) -> dict[str, set[str]]:
    """Union of per-feature kinds."""
    out: dict[str, set[str]] = {}
    for part in parts:
        for name, kinds in part.items():
            out.setdefault(name, set()).update(kinds)
    return out


def dtype_of(kinds: set[str]) -> str:
    """The ``tf.train.Example`` dtype that holds every value of these kinds."""
    if not kinds or kinds & {"str", "bytes"}:
        return "bytes"
    if "float" in kinds:
        return "float"
    return "int64"


def label_text(value: Any) -> str:
    """A label value as text (``3.0`` -> ``"3"``, bytes decoded)."""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _has_space(value: Any) -> bool:
    # str.split() without a separator splits on exactly what str.isspace() calls whitespace.
    return isinstance(value, str) and bool(value) and value.split(None, 1) != [value]


def _is_scalar(value: Any) -> bool:
    return isinstance(value, str | int | float | bool) or value is None


class FeatureStats:
    """Statistics of records: count, per-feature kinds/presence/lengths/details, label values."""

    def __init__(self, label: str | None = None) -> None:
        self.label = label
        self.count = 0
        self.features: dict[str, dict[str, Any]] = {}
        self.labels: set[str] | None = set()

    def add(self, record: dict[str, Any], where: str = "") -> None:
        """Count one record."""
        self.count += 1
        meta = record.get(META_KEY) or {}
        features = self.features
        for name, value in record.items():
            if value is None or name.startswith("__"):
                continue
            kind = _KIND_OF_TYPE.get(type(value))
            if kind is not None:  # one scalar (a table cell): the general case below, inlined
                mine = features.get(name)
                if mine is None:
                    mine = features[name] = _empty_feature(1)
                mine["kinds"].add(kind)
                mine["present"] += 1
                if mine["min_len"] > 1:
                    mine["min_len"] = 1
                if mine["max_len"] < 1:
                    mine["max_len"] = 1
                if kind == "str" and not mine["spaced"] and _has_space(value):
                    mine["spaced"] = True
                details = meta.get(name)
                if details:
                    _merge_meta(mine["meta"], {k: {v} for k, v in details.items() if _is_scalar(v)})
                continue
            values = value_list(value)
            mine = self.features.get(name)
            if mine is None:
                mine = self.features[name] = _empty_feature(len(values))
            mine["kinds"] |= kinds_of(values, f"{where}feature '{name}': ")
            mine["present"] += 1
            mine["min_len"] = min(mine["min_len"], len(values))
            mine["max_len"] = max(mine["max_len"], len(values))
            if not mine["spaced"] and any(_has_space(v) for v in values):
                mine["spaced"] = True
            details = meta.get(name)
            if details:
                _merge_meta(mine["meta"], {k: {v} for k, v in details.items() if _is_scalar(v)})
        if self.labels is not None and self.label and record.get(self.label) is not None:
            value = record[self.label]
            value = value[0] if isinstance(value, list | tuple) and len(value) == 1 else value
            self.labels.add(label_text(value))
            if len(self.labels) > MAX_CLASSES:
                self.labels = None

    def merge(self, other: FeatureStats) -> FeatureStats:
        """Add ``other``'s statistics into this one; returns self."""
        self.count += other.count
        for name, stats in other.features.items():
            mine = self.features.get(name)
            if mine is None:
                mine = self.features[name] = _empty_feature(stats["min_len"])
            mine["kinds"] |= stats["kinds"]
            mine["present"] += stats["present"]
            mine["min_len"] = min(mine["min_len"], stats["min_len"])
            mine["max_len"] = max(mine["max_len"], stats["max_len"])
            mine["spaced"] = mine["spaced"] or stats["spaced"]
            _merge_meta(mine["meta"], stats["meta"])
        if self.labels is not None and other.labels is not None:
            self.labels |= other.labels
            if len(self.labels) > MAX_CLASSES:
                self.labels = None
        else:
            self.labels = None
        return self

    def schema(self) -> dict[str, Any]:
        """The written form: dtypes, lengths, presence, modality, details, sorted labels."""
        features = {}
        for name, s in sorted(self.features.items()):
            entry: dict[str, Any] = {
                "dtype": dtype_of(s["kinds"]),
                "length": s["min_len"] if s["min_len"] == s["max_len"] else None,
                "present": s["present"],
                "inferred_modality": _infer_modality(s),
            }
            for key, values in sorted(s["meta"].items()):
                if values is not None and len(values) == 1:
                    entry[key] = next(iter(values))
                    continue
                entry[key] = None
                numbers = [v for v in (values or ()) if isinstance(v, int | float)]
                if values and len(numbers) == len(values):
                    entry[f"{key}_range"] = [min(numbers), max(numbers)]
            features[name] = entry
        return {"count": self.count, "features": features, "labels": sorted_labels(self.labels)}


def merge_stats(parts: Iterable[FeatureStats]) -> FeatureStats:
    """One accumulator holding all of ``parts`` (a Beam ``CombineGlobally`` function)."""
    out = FeatureStats()
    for part in parts:
        out.merge(part)
    return out


def _empty_feature(length: int) -> dict[str, Any]:
    return {
        "kinds": set(),
        "present": 0,
        "min_len": length,
        "max_len": length,
        "spaced": False,
        "meta": {},
    }


def _merge_meta(mine: dict[str, set[Any] | None], other: dict[str, set[Any] | None]) -> None:
    """Union detail values per key; a key with too many distinct values becomes None."""
    for key, values in other.items():
        merged = mine.get(key, set())
        if merged is not None and values is not None:
            merged |= values
            if len(merged) > _MAX_META_VALUES:
                merged = None
        else:
            merged = None
        mine[key] = merged


def _infer_modality(stats: dict[str, Any]) -> str:
    kinds = stats["kinds"]
    if kinds and kinds <= {"int", "float", "bool"}:
        return "numeric"
    if kinds == {"str"}:
        return "text" if stats["spaced"] else "categorical"
    return "binary"


def sorted_labels(labels: set[str] | None) -> list[str] | None:
    """Labels in order: numerically when all are numbers, else alphabetically."""
    if labels is None:
        return None

    def as_number(text: str) -> float | None:
        try:
            return float(text)
        except ValueError:
            return None

    numbers = {label: as_number(label) for label in labels}
    if all(n is not None for n in numbers.values()):
        return sorted(labels, key=lambda label: (numbers[label], label))
    return sorted(labels)
