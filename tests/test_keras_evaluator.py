"""The classification evaluator's running figures equal the whole-split ones, batch by batch."""

from __future__ import annotations

import math

import numpy as np
import pytest

from beamline_plugins.keras.eval_stream import RunningMetrics, RunningSlices, WorstExamples
from beamline_plugins.keras.evaluator import confident_mistakes
from beamline_plugins.keras.slices import slice_metrics, slice_values

CLASSES = ["a", "b", "c"]


def _split(n: int = 700, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, len(CLASSES), n)
    scores = rng.dirichlet([1.0] * len(CLASSES), n)
    scores[::7] = scores[0]  # repeated rows: ties in confidence
    labels[5] = 2  # one example with no class "c" prediction nearby, whatever
    return labels, scores


def _batches(n: int) -> list[slice]:
    edges = [0, 1, 64, 65, 300, 511, n]  # uneven, a batch of one included
    return [slice(a, b) for a, b in zip(edges, edges[1:], strict=False)]


def _close(a: object, b: object) -> None:
    """Equal, floats to 1e-12 relative (sums taken in another order)."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and list(a) == list(b)
        for key in a:
            _close(a[key], b[key])
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            _close(x, y)
    elif isinstance(a, float):
        assert math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-15), (a, b)
    else:
        assert a == b


def _by_hand(labels: np.ndarray, scores: np.ndarray) -> tuple[dict, dict]:
    """Accuracy, loss, per-class F1, confusion matrix and reliability bins, example by example."""
    k, bins = len(CLASSES), 10
    matrix = [[0] * k for _ in range(k)]
    loss = 0.0
    cells = [[0, 0.0, 0] for _ in range(bins)]  # count, confidence sum, correct
    for label, row in zip(labels.tolist(), scores.tolist(), strict=True):
        guess = max(range(k), key=lambda c: row[c])
        matrix[label][guess] += 1
        loss -= math.log(min(1.0, max(1e-12, row[label])))
        b = min(bins - 1, max(0, math.ceil(row[guess] * bins) - 1))
        cells[b][0] += 1
        cells[b][1] += row[guess]
        cells[b][2] += guess == label
    n = len(labels)
    f1 = {}
    for c, name in enumerate(CLASSES):
        tp = matrix[c][c]
        predicted, support = sum(r[c] for r in matrix), sum(matrix[c])
        p, r = (tp / predicted if predicted else 0.0), (tp / support if support else 0.0)
        f1[name] = 2 * p * r / (p + r) if p + r else 0.0
    metrics = {
        "accuracy": sum(matrix[c][c] for c in range(k)) / n,
        "loss": loss / n,
        "f1": f1,
        "confusion_matrix": matrix,
    }
    ece = sum(c[0] / n * abs(c[1] / c[0] - c[2] / c[0]) for c in cells if c[0])
    return metrics, {"counts": [c[0] for c in cells], "ece": ece}


def test_running_metrics_and_calibration_equal_a_count_by_hand() -> None:
    labels, scores = _split()
    running = RunningMetrics(len(CLASSES))
    for part in _batches(len(labels)):
        running.add(labels[part], scores[part])
    expected, reliability = _by_hand(labels, scores)
    got = running.metrics(CLASSES)
    assert got["confusion_matrix"] == expected["confusion_matrix"]
    assert got["accuracy"] == expected["accuracy"]  # counts: exactly
    assert got["count"] == len(labels)
    _close(got["loss"], expected["loss"])
    _close({name: got["per_class"][name]["f1"] for name in CLASSES}, expected["f1"])
    calibration = running.calibration()
    assert [b["count"] for b in calibration["bins"]] == reliability["counts"]
    assert math.isclose(calibration["ece"], reliability["ece"], rel_tol=1e-9)


def _raw(kind: str, n: int, rng: np.random.Generator) -> list[list[object]]:
    if kind == "category":
        pool = [[b"yelp"], [b"imdb"], [], [b"amazon"]]
        return [pool[i] for i in rng.integers(0, len(pool), n)]
    if kind == "integer":
        return [[int(v)] for v in rng.integers(0, 24, n)]
    if kind == "text":
        return [[b" ".join([b"w"] * int(k))] for k in rng.integers(0, 30, n)]
    if kind == "few floats":
        return [[float(v) / 2] if v else [] for v in rng.integers(0, 6, n)]
    values = rng.normal(10, 3, n).round(2)  # many floats: quantile buckets
    return [[] if i % 13 == 0 else [float(v)] for i, v in enumerate(values)]


@pytest.mark.parametrize(
    ("kind", "spec"),
    [
        ("category", "source"),
        ("integer", "hour"),
        ("text", "text.words"),
        ("few floats", "rate"),
        ("many floats", "fare"),
    ],
)
def test_running_slices_equal_the_whole_split(kind: str, spec: str) -> None:
    labels, scores = _split()
    raw = _raw(kind, len(labels), np.random.default_rng(1))
    running = RunningSlices(spec, len(CLASSES), [8, 16], 4)
    for part in _batches(len(labels)):
        first = [(values or [None])[0] for values in raw[part]]
        running.add(first, labels[part], scores[part])
    values = slice_values(spec, raw, [8, 16], 4)
    expected = slice_metrics(labels, scores, values, CLASSES, min_size=40)
    got = running.result(40)
    _close(got, expected)
    assert len(expected["values"]) > 1 and expected["too_small"] == got["too_small"]
    if kind == "many floats":
        assert len(expected["values"]) == 5  # four buckets and the missing values


def test_worst_examples_keep_the_most_confident_mistakes_in_order() -> None:
    labels, scores = _split()
    worst = WorstExamples(24)
    for part in _batches(len(labels)):

        def item(i: int, start: int = part.start) -> dict[str, object]:
            return {"row": start + i}

        worst.add(part.start, labels[part], scores[part], item)
    expected = confident_mistakes(labels, scores, 24)
    got = worst.items()
    assert [g["index"] for g in got] == expected
    assert [g["row"] for g in got] == expected  # each item built for its own example
    assert WorstExamples(0).items() == []
