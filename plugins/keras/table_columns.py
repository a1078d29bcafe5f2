"""Table columns for ``table_input``: raw values parsed per batch, their train-split statistics,
the quantile boundaries ingest computed, and raw values -> model features (the one conversion
training and serving share).

TensorFlow is imported inside the functions only.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from beamline import Artifact
from beamline.errors import PipelineError
from beamline.examples import feature_spec
from beamline_plugins.training.records import read_records

#: Rows per batch when reading a table (statistics and training parse a batch at once).
STATS_BATCH = 4096
#: The name of a column's missing-value flag input: ``<column>_missing``.
FLAG_SUFFIX = "_missing"
#: Where the ``column_quantiles`` transform writes a column's boundaries (under the examples).
QUANTILES_ASSET = "assets/quantiles/{column}.json"


@dataclass
class ColumnStats:
    """Streaming statistics of one column: count, missing, mean and variance (numeric columns,
    merged batch by batch with Chan's parallel formula) or value counts (categorical ones)."""

    count: int = 0
    missing: int = 0
    mean: float = 0.0
    m2: float = 0.0
    values: Counter[str] = field(default_factory=Counter)

    @property
    def variance(self) -> float:
        """The population variance of the values seen."""
        return self.m2 / self.count if self.count else 0.0

    def add_numbers(self, batch: Any) -> None:
        """Add a batch of numbers (NaN: a missing value)."""
        import numpy as np

        batch = np.asarray(batch, dtype=np.float64)
        present = batch[~np.isnan(batch)]
        self.missing += int(len(batch) - len(present))
        if not len(present):
            return
        n, mean = len(present), float(present.mean())
        m2 = float(((present - mean) ** 2).sum())
        total = self.count + n
        delta = mean - self.mean
        self.mean += delta * n / total
        self.m2 += m2 + delta * delta * self.count * n / total
        self.count = total

    def filled(self, value: float) -> ColumnStats:
        """These statistics with every missing value counted as ``value`` (what a model that
        fills missing values with a constant sees; TFX's taxi example fills, then z-scores)."""
        if not self.missing:
            return self
        n, total = self.missing, self.count + self.missing
        delta = value - self.mean
        mean = self.mean + delta * n / total
        m2 = self.m2 + delta * delta * self.count * n / total
        return ColumnStats(count=total, missing=0, mean=mean, m2=m2)

    def add_values(self, batch: Any) -> None:
        """Add a batch of categorical values (bytes)."""
        self.values.update(v.decode("utf-8", "replace") for v in batch)
        self.count += len(batch)


def column_stats(examples: Artifact, split: str, kinds: dict[str, str]) -> dict[str, ColumnStats]:
    """Statistics of each column of ``kinds`` (``numeric`` or ``categorical``) over ``split``.

    One streaming pass over the split's shards in batches: memory does not grow with rows."""
    try:
        ds = read_records(examples, split, None).batch(STATS_BATCH)
        ds = ds.map(raw_parser(examples, kinds))
    except FileNotFoundError as exc:
        raise PipelineError(f"table_input: {exc}") from None
    stats = {name: ColumnStats() for name in kinds}
    rows = 0
    for batch in ds.as_numpy_iterator():
        for name, kind in kinds.items():
            if kind == "numeric":
                stats[name].add_numbers(batch[name])
            else:
                stats[name].add_values(batch[name])
        rows += len(next(iter(batch.values())))
    if not rows:
        raise PipelineError(f"table_input: split '{split}' of {examples.path} is empty")
    return stats


def raw_parser(examples: Artifact, kinds: dict[str, str]) -> Callable[[Any], dict[str, Any]]:
    """A function from a batch of serialized examples to raw column values, ``[batch]`` each.

    ``kinds`` maps each column to ``numeric`` or ``categorical``. Numeric columns become float32
    (NaN when a row has no value), categorical columns text (integer codes written as text; an
    empty string when a row has no value). One ``parse_example`` per batch: a wide table costs
    a few ops per batch, not a few per cell."""
    import tensorflow as tf

    features = feature_spec(examples)["features"]
    dtypes = {name: features[name]["dtype"] for name in kinds}
    tf_dtype = {"int64": tf.int64, "float": tf.float32, "bytes": tf.string}
    spec = {name: tf.io.VarLenFeature(tf_dtype[dtypes[name]]) for name in kinds}

    def first(sparse: Any, default: Any) -> Any:
        dense = tf.sparse.to_dense(sparse, default_value=default)
        return tf.pad(dense, [[0, 0], [0, 1]], constant_values=default)[:, 0]

    def parse(serialized: Any) -> dict[str, Any]:
        record = tf.io.parse_example(serialized, spec)
        out = {}
        for name, kind in kinds.items():
            values = record[name]
            if kind == "numeric":
                out[name] = first(tf.cast(values, tf.float32), math.nan)
            elif dtypes[name] == "bytes":
                out[name] = first(values, "")
            else:
                out[name] = first(tf.sparse.map_values(tf.strings.as_string, values), "")
        return out

    return parse


def quantile_boundaries(examples: Artifact, column: str) -> list[float]:
    """The train-split bucket boundaries of ``column`` that ingest's ``column_quantiles`` wrote."""
    path = examples.path / QUANTILES_ASSET.format(column=column)
    if not path.is_file():
        raise PipelineError(
            f"table_input: buckets: no quantiles of '{column}' in {examples.path}: add the "
            f"transform {{component: column_quantiles, columns: {{{column}: 10}}}} to step "
            f"'{examples.step}'"
        )
    boundaries = json.loads(path.read_text(encoding="utf-8"))["boundaries"]
    if not boundaries:
        raise PipelineError(f"table_input: buckets: '{column}' has no train value ({path})")
    return [float(b) for b in boundaries]


def to_model_features(columns: dict[str, Any], inputs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Raw column batches (``[batch]`` float32 or text) -> the model's inputs (``[batch, 1]``).

    A missing numeric value (NaN) becomes the column's ``fill`` value (the train mean unless
    the input pipeline was told otherwise); a flag input (``flag_of``) is 1.0 where its column
    is missing, else 0.0. Training and serving both call this one function, so they cannot
    disagree."""
    import tensorflow as tf

    out = {}
    for name, spec in inputs.items():
        if spec.get("flag_of"):
            value = tf.cast(tf.math.is_nan(columns[spec["flag_of"]]), tf.float32)
        elif spec.get("modality") == "numeric":
            value = columns[name]
            fill = tf.constant(spec.get("fill", spec["mean"]), tf.float32)
            value = tf.where(tf.math.is_nan(value), fill, value)
        else:
            value = columns[name]
        out[name] = tf.reshape(value, [-1, 1])
    return out
