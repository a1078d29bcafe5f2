"""Evaluation by slice: metrics per value of a feature that ingest kept, and the best-worst gap.

A slice spec names a feature of the examples (any feature in ``features.json``: an id such as
``group`` (the speaker of a clip), a categorical column such as ``source``, a table column), or
a length bucket of a text feature: ``text.words`` / ``text.chars`` (bucketed by
``length_edges``). A numeric feature with many values is cut into quantile buckets.

Per slice value: ``count``, ``accuracy``, ``loss``, ``macro_f1`` (over the classes present);
per slice feature the ``gap`` (best minus worst) and ``min`` of each metric, over the values
with at least ``min_slice_size`` examples only: a smaller slice is reported as too small to
judge, never gated. Threshold names read ``slice_gap.METRIC`` / ``slice_min.METRIC`` (the worst
over every slice feature) or ``slice_gap.FEATURE.METRIC`` (one feature).
"""

from __future__ import annotations

from typing import Any

from beamline.errors import PipelineError

SLICE_METRICS = ("accuracy", "macro_f1", "loss")
LENGTH_UNITS = ("words", "chars")
#: A numeric feature with more distinct values than this is cut into quantile buckets.
MAX_DISTINCT = 12


def slice_feature(spec: str) -> tuple[str, str]:
    """``(feature, unit)`` of a slice spec: ``source`` -> ``(source, "")``, ``text.words``."""
    name, dot, unit = spec.rpartition(".")
    if dot and unit in LENGTH_UNITS:
        return name, unit
    return spec, ""


def check_slices(specs: list[str], features: dict[str, Any], where: str) -> None:
    """Fail, naming the known features, when a slice spec names no feature of the examples."""
    for spec in specs:
        name, _ = slice_feature(spec)
        if name not in features:
            raise PipelineError(
                f"slices: '{spec}' is no feature of the examples of {where} (features: "
                f"{', '.join(sorted(features))}; a text length: FEATURE.words or FEATURE.chars)"
            )


def slice_values(
    spec: str, raw: list[list[Any]], length_edges: list[int], numeric_buckets: int
) -> list[str]:
    """One slice value (a string) per example, from the feature's raw values in split order."""
    _, unit = slice_feature(spec)
    first = [values[0] if values else None for values in raw]
    if unit:
        return [length_bucket(value_length(value, unit), length_edges, unit) for value in first]
    if all(isinstance(v, float) for v in first if v is not None):
        distinct = {v for v in first if v is not None}
        if len(distinct) > MAX_DISTINCT:
            return _quantile_buckets(first, numeric_buckets)
    return ["(missing)" if v is None else value_text(v) for v in first]


def slice_metrics(
    labels: Any, scores: Any, values: list[str], classes: list[str], min_size: int
) -> dict[str, Any]:
    """Metrics per slice value, and ``gap``/``min`` per metric over the slices large enough."""
    import numpy as np

    per_value: dict[str, Any] = {}
    column = np.asarray(values)
    for value in sorted(set(values), key=slice_order_key):
        mask = column == value
        y, p = labels[mask], scores[mask]
        entry = _metrics(y, p, len(classes))
        entry["judged"] = bool(entry["count"] >= min_size)
        per_value[value] = entry
    return summarise_slices(per_value, min_size)


def summarise_slices(per_value: dict[str, dict[str, Any]], min_size: int) -> dict[str, Any]:
    """The slice result of metrics per value (each with ``judged``): ``gap``/``min``/``worst``
    per metric over the judged values, and the values too small to judge."""
    judged = {v: m for v, m in per_value.items() if m["judged"]}
    gap: dict[str, float] = {}
    low: dict[str, float] = {}
    worst: dict[str, str] = {}
    for metric in SLICE_METRICS:
        if not judged:
            break
        ranked = sorted(judged, key=lambda v, m=metric: judged[v][m])
        bad = ranked[-1] if metric == "loss" else ranked[0]
        worst[metric] = bad
        gap[metric] = float(judged[ranked[-1]][metric] - judged[ranked[0]][metric])
        low[metric] = float(judged[bad][metric])
    too_small = [v for v, m in per_value.items() if not m["judged"]]
    return {
        "values": per_value,
        "gap": gap,
        "min": low,
        "worst": worst,
        "too_small": too_small,
        "min_slice_size": min_size,
    }


def slice_threshold(slices: dict[str, Any], name: str) -> tuple[float | None, str]:
    """The value a ``slice_gap.*``/``slice_min.*`` threshold reads, and what it was read from.

    ``slice_gap.accuracy`` is the largest gap over every slice feature; ``slice_min.accuracy``
    the lowest per-slice accuracy (for ``loss``: the highest). ``None`` when no slice could be
    judged (every slice too small)."""
    kind, _, rest = name.partition(".")
    feature, _, metric = rest.rpartition(".")
    if metric not in SLICE_METRICS:
        raise PipelineError(
            f"thresholds: '{name}': the metric must be one of {', '.join(SLICE_METRICS)}"
        )
    if feature and feature not in slices:
        raise PipelineError(
            f"thresholds: '{name}' names slice '{feature}', not one of this step's slices "
            f"({', '.join(slices) or 'none: add slices:'})"
        )
    key = "gap" if kind == "slice_gap" else "min"
    found = []
    for spec, result in slices.items():
        if feature and spec != feature:
            continue
        if metric in result[key]:
            where = f"{spec}={result['worst'][metric]}" if key == "min" else spec
            found.append((float(result[key][metric]), where))
    if not found:
        return None, ""
    higher_is_worse = key == "gap" or metric == "loss"
    return max(found) if higher_is_worse else min(found)


def is_slice_threshold(name: str) -> bool:
    """Whether a threshold name is a slice threshold (``slice_gap.*`` or ``slice_min.*``)."""
    return name.startswith(("slice_gap.", "slice_min."))


def _metrics(labels: Any, scores: Any, k: int) -> dict[str, Any]:
    import numpy as np

    n = len(labels)
    predicted = scores.argmax(axis=1)
    present = sorted(set(labels.tolist()) | set(predicted.tolist()))
    f1s = []
    for c in present:
        tp = float(np.sum((predicted == c) & (labels == c)))
        fp = float(np.sum((predicted == c) & (labels != c)))
        fn = float(np.sum((predicted != c) & (labels == c)))
        f1s.append(2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0)
    picked = scores[np.arange(n), labels]
    return {
        "count": int(n),
        "accuracy": float(np.mean(predicted == labels)) if n else 0.0,
        "macro_f1": float(np.mean(f1s)) if f1s else 0.0,
        "loss": float(-np.mean(np.log(np.clip(picked, 1e-12, 1.0)))) if n else 0.0,
    }


def value_text(value: Any) -> str:
    """A slice value as the text the report shows (bytes decoded, floats short)."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def value_length(value: Any, unit: str) -> int:
    """The length of a value in ``unit``: words, or characters for any other unit."""
    text = value_text(value) if value is not None else ""
    return len(text.split()) if unit == "words" else len(text)


def length_bucket(length: int, edges: list[int], unit: str) -> str:
    """The bucket name (``"0-10 words"``, ``">40 words"``) a length falls in."""
    low = 0
    for edge in sorted(edges):
        if length <= edge:
            return f"{low}-{edge} {unit}"
        low = edge + 1
    return f">{sorted(edges)[-1]} {unit}" if edges else f"{length} {unit}"


def _quantile_buckets(values: list[Any], buckets: int) -> list[str]:
    import numpy as np

    known = np.asarray([v for v in values if v is not None], dtype=np.float64)
    edges = np.unique(np.quantile(known, np.linspace(0, 1, buckets + 1)))
    out = []
    for v in values:
        if v is None:
            out.append("(missing)")
            continue
        i = int(np.clip(np.searchsorted(edges, v, side="right") - 1, 0, len(edges) - 2))
        out.append(f"[{edges[i]:.4g}, {edges[i + 1]:.4g}]")
    return out


def slice_order_key(value: str) -> tuple[int, float, str]:
    """Length buckets and numbers in numeric order, names alphabetically."""
    head = value.lstrip("[>").split("-")[0].split(",")[0].split(" ")[0]
    try:
        return (0, float(head), value)
    except ValueError:
        return (1, 0.0, value)
