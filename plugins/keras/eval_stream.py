"""Running evaluation figures: what the classification evaluator reports, a batch at a time.

Nothing here keeps the examples: ``RunningMetrics`` holds a confusion matrix, a log-loss sum and
the calibration bins; ``RunningSlices`` one confusion matrix and loss sum per slice value (a
numeric slice feature keeps one value, label, prediction and picked score per example until
its quantile buckets are known: four numbers a row, not the row); ``WorstExamples`` a bounded
heap of the most confident mistakes with their raw inputs. Each gives what the whole-array
functions give (``classification_metrics``, ``calibration``, ``slice_metrics`` with
``slice_values``, ``confident_mistakes``): counts, accuracies and F1 exactly, the mean losses and
confidences up to the rounding of a sum taken in another order.
"""

from __future__ import annotations

import heapq
from typing import Any

from .eval_report import CALIBRATION_BINS
from .slices import (
    MAX_DISTINCT,
    length_bucket,
    slice_feature,
    slice_order_key,
    value_length,
    value_text,
)

EPSILON = 1e-12


def _picked_log(labels: Any, scores: Any) -> Any:
    import numpy as np

    picked = scores[np.arange(len(labels)), labels]
    return np.log(np.clip(picked, EPSILON, 1.0))


class RunningMetrics:
    """Accuracy, loss, per-class P/R/F1, confusion matrix and calibration over batches."""

    def __init__(self, k: int, bins: int = CALIBRATION_BINS) -> None:
        import numpy as np

        self.k, self.bins = k, bins
        self.matrix = np.zeros((k, k), dtype=np.int64)
        self.log_sum = 0.0
        self.bin_count = np.zeros(bins, dtype=np.int64)
        self.bin_confidence = np.zeros(bins)
        self.bin_correct = np.zeros(bins, dtype=np.int64)

    @property
    def count(self) -> int:
        """Examples added so far."""
        return int(self.matrix.sum())

    def add(self, labels: Any, scores: Any) -> None:
        """Add a batch: class indices ``labels`` [n], class scores ``scores`` [n, k]."""
        import numpy as np

        predicted = scores.argmax(axis=1)
        np.add.at(self.matrix, (labels, predicted), 1)
        self.log_sum += float(np.sum(_picked_log(labels, scores)))
        confidence = scores.max(axis=1)
        edges = np.linspace(0.0, 1.0, self.bins + 1)
        which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, self.bins - 1)
        np.add.at(self.bin_count, which, 1)
        np.add.at(self.bin_confidence, which, confidence)
        np.add.at(self.bin_correct, which, (predicted == labels).astype(np.int64))

    def metrics(self, classes: list[str]) -> dict[str, Any]:
        """What ``classification_metrics`` gives for every example added."""
        import numpy as np

        k, matrix, n = self.k, self.matrix, self.count
        true_pos = np.diag(matrix).astype(np.float64)
        support = matrix.sum(axis=1)
        predicted_count = matrix.sum(axis=0)
        precision = np.divide(true_pos, predicted_count, out=np.zeros(k), where=predicted_count > 0)
        recall = np.divide(true_pos, support, out=np.zeros(k), where=support > 0)
        denominator = precision + recall
        f1 = np.divide(2 * precision * recall, denominator, out=np.zeros(k), where=denominator > 0)
        return {
            "count": n,
            "accuracy": float(true_pos.sum() / max(1, n)),
            "loss": -self.log_sum / n if n else float("nan"),
            "macro_precision": float(precision.mean()),
            "macro_recall": float(recall.mean()),
            "macro_f1": float(f1.mean()),
            "per_class": {
                name: {
                    "precision": float(precision[i]),
                    "recall": float(recall[i]),
                    "f1": float(f1[i]),
                    "support": int(support[i]),
                }
                for i, name in enumerate(classes)
            },
            "classes": list(classes),
            "confusion_matrix": matrix.tolist(),
        }

    def calibration(self) -> dict[str, Any]:
        """What ``eval_report.calibration`` gives for every example added."""
        import numpy as np

        edges = np.linspace(0.0, 1.0, self.bins + 1)
        n = self.count
        rows, ece = [], 0.0
        for b in range(self.bins):
            count = int(self.bin_count[b])
            if count:
                mean_conf = float(self.bin_confidence[b] / count)
                accuracy = float(self.bin_correct[b] / count)
                ece += count / n * abs(mean_conf - accuracy)
            else:
                mean_conf = accuracy = None
            rows.append(
                {
                    "low": float(edges[b]),
                    "high": float(edges[b + 1]),
                    "count": count,
                    "confidence": mean_conf,
                    "accuracy": accuracy,
                }
            )
        return {"bins": rows, "ece": float(ece)}


class _Cell:
    """One slice value's confusion matrix and log-loss sum."""

    __slots__ = ("log_sum", "matrix")

    def __init__(self, k: int) -> None:
        import numpy as np

        self.matrix = np.zeros((k, k), dtype=np.int64)
        self.log_sum = 0.0

    def add(self, labels: Any, predicted: Any, logs: Any) -> None:
        import numpy as np

        np.add.at(self.matrix, (labels, predicted), 1)
        self.log_sum += float(np.sum(logs))

    def metrics(self) -> dict[str, Any]:
        """``count``, ``accuracy``, ``macro_f1`` (over the classes present) and ``loss``."""
        import numpy as np

        matrix = self.matrix
        n = int(matrix.sum())
        rows, columns = matrix.sum(axis=1), matrix.sum(axis=0)
        f1s = []
        for c in range(len(matrix)):
            if not rows[c] and not columns[c]:
                continue  # neither a label nor a prediction in this slice
            tp = float(matrix[c, c])
            fp, fn = float(columns[c]) - tp, float(rows[c]) - tp
            f1s.append(2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0)
        return {
            "count": n,
            "accuracy": float(matrix.trace() / n) if n else 0.0,
            "macro_f1": float(np.mean(f1s)) if f1s else 0.0,
            "loss": -self.log_sum / n if n else 0.0,
        }


class RunningSlices:
    """Metrics per value of one slice spec over batches (see ``slices.slice_metrics``)."""

    def __init__(self, spec: str, k: int, length_edges: list[int], numeric_buckets: int) -> None:
        self.spec, self.k = spec, k
        self.unit = slice_feature(spec)[1]
        self.length_edges, self.numeric_buckets = list(length_edges), numeric_buckets
        self.cells: dict[str, _Cell] = {}
        #: While every value is a float (or missing), per example: value, missing, label,
        #: prediction, log of the picked score; the buckets need all the values.
        self.numeric: list[tuple[Any, ...]] | None = None if self.unit else []

    def add(self, first: list[Any], labels: Any, scores: Any) -> None:
        """Add a batch: each example's first value of the slice feature (``None``: missing)."""
        import numpy as np

        predicted = scores.argmax(axis=1)
        logs = _picked_log(labels, scores)
        if self.numeric is not None:
            if all(isinstance(v, float) for v in first if v is not None):
                values = np.asarray([0.0 if v is None else v for v in first], dtype=np.float64)
                missing = np.asarray([v is None for v in first], dtype=bool)
                self.numeric.append((values, missing, labels, predicted, logs))
                return
            self._numeric_to_cells()
        if self.unit:
            keys = [length_bucket(value_length(v, self.unit), self.length_edges, self.unit)
                    for v in first]  # fmt: skip
        else:
            keys = ["(missing)" if v is None else value_text(v) for v in first]
        self._add_keyed(keys, labels, predicted, logs)

    def _add_keyed(self, keys: list[str], labels: Any, predicted: Any, logs: Any) -> None:
        import numpy as np

        column = np.asarray(keys, dtype=object)
        for key in dict.fromkeys(keys):
            mask = column == key
            cell = self.cells.get(key) or self.cells.setdefault(key, _Cell(self.k))
            cell.add(labels[mask], predicted[mask], logs[mask])

    def _numeric_to_cells(self, buckets: bool = False) -> None:
        """Move the kept numeric examples into cells: by value, or by quantile bucket."""
        import numpy as np

        kept, self.numeric = self.numeric or [], None
        if not kept:
            return
        values, missing, labels, predicted, logs = (
            np.concatenate(p) for p in zip(*kept, strict=True)
        )
        if buckets:
            known = values[~missing]
            edges = np.unique(np.quantile(known, np.linspace(0, 1, self.numeric_buckets + 1)))
            index = np.clip(np.searchsorted(edges, values, side="right") - 1, 0, len(edges) - 2)
            names = [f"[{edges[i]:.4g}, {edges[i + 1]:.4g}]" for i in range(len(edges) - 1)]
            keys = ["(missing)" if m else names[i] for i, m in zip(index, missing, strict=True)]
        else:
            pairs = zip(values, missing, strict=True)
            keys = ["(missing)" if m else value_text(float(v)) for v, m in pairs]
        self._add_keyed(keys, labels, predicted, logs)

    def result(self, min_size: int) -> dict[str, Any]:
        """What ``slice_metrics`` gives for every example added."""
        from .slices import summarise_slices

        if self.numeric is not None:
            import numpy as np

            known = [v[~m] for v, m, *_ in self.numeric]
            distinct = np.unique(np.concatenate(known)) if known else []
            self._numeric_to_cells(buckets=len(distinct) > MAX_DISTINCT)
        per_value = {}
        for value in sorted(self.cells, key=slice_order_key):
            entry = self.cells[value].metrics()
            entry["judged"] = bool(entry["count"] >= min_size)
            per_value[value] = entry
        return summarise_slices(per_value, min_size)


class WorstExamples:
    """The ``limit`` most confident mistakes seen (ties: the earlier example first)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.heap: list[tuple[float, int, dict[str, Any]]] = []

    def add(self, start: int, labels: Any, scores: Any, rows: Any) -> None:
        """Add a batch whose first example is number ``start``; ``rows(i)`` gives the ``i``-th
        example's item (its label, prediction, raw inputs), asked only for the ones kept."""
        import numpy as np

        if not self.limit:
            return
        predicted = scores.argmax(axis=1)
        for i in np.flatnonzero(predicted != labels):
            key = (float(scores[i, predicted[i]]), -(start + int(i)))
            if len(self.heap) < self.limit:
                heapq.heappush(self.heap, (*key, rows(int(i))))
            elif key > self.heap[0][:2]:
                heapq.heapreplace(self.heap, (*key, rows(int(i))))

    def items(self) -> list[dict[str, Any]]:
        """The kept items, the most confident first, each with its ``index``."""
        ranked = sorted(self.heap, key=lambda e: (-e[0], -e[1]))
        return [{"index": -negative, **item} for _, negative, item in ranked]
