"""Element functions of the table transforms (run inside Beam workers) and the quantile asset.

Assets: ``assets/quantiles/<column>.json`` = ``{"column", "buckets", "boundaries", "count"}``,
the boundaries of ``buckets`` buckets of about equal train counts (sorted, no repeats).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from beamline.ingest import Reject

from .expression import MISSING, Expression, ExpressionError, Unvectorised

QUANTILES_DIR = "quantiles"


def identity(record: dict[str, Any]) -> dict[str, Any]:
    """The record unchanged (a stage whose work is in its analyzer)."""
    return record


def derive_record(
    record: dict[str, Any], column: str, expression: Expression, on_missing: str, fill: float
) -> dict[str, Any]:
    """``record`` with ``column`` = ``expression`` (0/1 for a truth value, else a float)."""
    try:
        value = expression.evaluate(record)
    except ExpressionError as exc:
        raise Reject(f"{column} = {expression.text}: {exc}") from None
    out = dict(record)
    if value is MISSING:
        if on_missing == "reject":
            missing = [c for c in expression.columns if _missing(record.get(c))]
            raise Reject(f"{column} = {expression.text}: no value for {', '.join(missing)}")
        out[column] = None if on_missing == "empty" else _stored(fill, expression.boolean)
        return out
    out[column] = _stored(value, expression.boolean)
    return out


def derive_columns(
    batch: Any, column: str, expression: Expression, on_missing: str, fill: float
) -> Any:
    """``derive_record`` on every row of a ``beamline.ingest_columnar.ColumnBatch``: the new
    column as int64 0/1 (a truth value) or float64; raises ``NotColumnar`` where a row must be
    computed (or rejected) a record at a time."""
    import numpy as np
    import pyarrow as pa

    from beamline.ingest_columnar import ColumnBatch, NotColumnar

    try:
        values, missing = expression.evaluate_columns(batch.columns, len(batch))
    except Unvectorised as exc:
        raise NotColumnar(str(exc)) from None
    if missing.any():
        if on_missing == "reject":
            raise NotColumnar("rows to reject")  # the record path names their columns
        if on_missing == "fill":
            values = np.where(missing, float(_stored(fill, expression.boolean)), values)
            missing = np.zeros(len(values), bool)
    if expression.boolean:
        out = pa.array((values != 0).astype(np.int64), pa.int64(), mask=missing)
    else:
        out = pa.array(values, pa.float64(), mask=missing)
    return ColumnBatch({**batch.columns, column: out}, batch.sources)


def _stored(value: Any, boolean: bool) -> Any:
    """One type per column: 0/1 integers for a truth value, floats for arithmetic."""
    if boolean:
        return int(bool(value))
    if isinstance(value, str):
        raise Reject(f"the expression gives text ({value!r}), not a number")
    return float(value)


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def column_values(record: dict[str, Any], column: str) -> list[float]:
    """The numeric value of ``column`` in ``record`` as a list (empty when missing)."""
    value = record.get(column)
    if isinstance(value, list):
        value = value[0] if value else None
    if value is None or isinstance(value, bool | str | bytes):
        return []
    number = float(value)
    return [] if math.isnan(number) else [number]


def _one(_: Any) -> int:
    return 1


def boundaries(quantiles: list[float]) -> list[float]:
    """Bucket boundaries from ``[min, q1, ..., max]``: the inner quantiles, without repeats."""
    inner = quantiles[1:-1]
    out: list[float] = []
    for value in inner:
        if not out or value > out[-1]:
            out.append(float(value))
    return out


def _asset(quantiles: list[float], column: str, buckets: int, count: int) -> Any:
    document = {
        "column": column,
        "buckets": buckets,
        "boundaries": boundaries(list(quantiles)) if count else [],
        "count": count,
    }
    text = json.dumps(document, indent=1, sort_keys=True) + "\n"
    yield f"{QUANTILES_DIR}/{column}.json", text.encode("utf-8")


def quantiles_analyzer(columns: dict[str, int]) -> Any:
    """A Beam ``PTransform``: train records -> one quantile asset per column."""
    import apache_beam as beam

    @beam.ptransform_fn
    def _analyze(records: Any) -> Any:
        files = []
        for column, buckets in sorted(columns.items()):
            label = f"Quantiles ({column})"
            values = records | f"{label}: values" >> beam.FlatMap(column_values, column)
            quantiles = values | f"{label}: compute" >> beam.ApproximateQuantiles.Globally(
                buckets + 1
            )
            count = (
                values
                | f"{label}: ones" >> beam.Map(_one)
                | f"{label}: count" >> beam.CombineGlobally(sum)
            )
            files.append(
                quantiles
                | f"{label}: file"
                >> beam.FlatMap(_asset, column, buckets, count=beam.pvalue.AsSingleton(count))
            )
        return files | "Quantiles: files" >> beam.Flatten()

    return _analyze()


#: Arrow type ids of int64 and float64 (``pyarrow.int64().id``, ``pyarrow.float64().id``).
_NUMERIC_TYPE_IDS = (9, 12)


class InProcessQuantiles:
    """``quantiles_analyzer`` in plain Python: ``add`` each train record, then ``assets()``.

    The same computation as the Beam transform (Beam's ``ApproximateQuantilesCombineFn``, its
    buffers filled a batch of values at a time, and a count per column); like it, approximate
    (within the combine's error bound, not bit-identical between runs of the Beam path either)."""

    _BATCH = 4096

    def __init__(self, columns: dict[str, int]) -> None:
        from apache_beam.transforms.stats import ApproximateQuantilesCombineFn

        self.columns = dict(sorted(columns.items()))
        self.fns = {
            c: ApproximateQuantilesCombineFn.create(num_quantiles=b + 1)
            for c, b in self.columns.items()
        }
        self.states = {c: fn.create_accumulator() for c, fn in self.fns.items()}
        self.pending: dict[str, list[float]] = {c: [] for c in self.columns}
        self.counts = dict.fromkeys(self.columns, 0)

    def add(self, record: dict[str, Any]) -> None:
        """Count one train record's values."""
        for column, pending in self.pending.items():
            values = column_values(record, column)
            if values:
                pending.extend(values)
                if len(pending) >= self._BATCH:
                    self._flush(column)

    def add_columns(self, columns: dict[str, Any]) -> None:
        """Count the values of a batch of train rows (Arrow arrays by column), as ``add`` of
        each row in order does."""
        import numpy as np

        for column, pending in self.pending.items():
            found = columns.get(column)
            if found is None or found.type.id not in _NUMERIC_TYPE_IDS:
                if found is not None:
                    for value in found.to_pylist():
                        pending.extend(column_values({column: value}, column))
                        if len(pending) >= self._BATCH:
                            self._flush(column)
                continue
            values = found.drop_null().to_numpy(zero_copy_only=False).astype(np.float64)
            pending.extend(values[~np.isnan(values)].tolist())
            while len(pending) >= self._BATCH:  # flushed where add would flush
                rest = pending[self._BATCH :]
                del pending[self._BATCH :]
                self._flush(column)
                self.pending[column] = pending = rest

    def _flush(self, column: str) -> None:
        pending = self.pending[column]
        if pending:
            self.counts[column] += len(pending)
            fn, state = self.fns[column], self.states[column]
            add_all = getattr(fn, "_add_inputs", None)  # Beam's batched add, when it has one
            if add_all is not None:
                state = add_all(state, pending)
            else:
                for value in pending:
                    state = fn.add_input(state, value)
            self.states[column] = state
            self.pending[column] = []

    def assets(self) -> list[tuple[str, bytes]]:
        """``(relative path, bytes)`` of one file per column."""
        out = []
        for column, buckets in self.columns.items():
            self._flush(column)
            quantiles = self.fns[column].extract_output(self.states[column])
            out.extend(_asset(quantiles, column, buckets, self.counts[column]))
        return out


def load_quantiles(examples_path: Path, column: str) -> dict[str, Any] | None:
    """The quantile asset of ``column`` in an examples artifact folder, or None."""
    path = Path(examples_path) / "assets" / QUANTILES_DIR / f"{column}.json"
    if not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8"))
