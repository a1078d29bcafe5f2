"""Table sources (CSV, JSON Lines, existing TFRecord files of tf.train.Example) and table
transforms (``derive_column``: a column from an expression; ``column_quantiles``: bucket
boundaries of numeric columns from the train split).

Importing this plugin is cheap: Beam loads only when a source runs.
"""

from __future__ import annotations

from typing import Any

from beamline import hookimpl

from .sources import CsvTable, JsonlTable, TfrecordExamples
from .transforms import ColumnQuantiles, DeriveColumn

__all__ = ["ColumnQuantiles", "CsvTable", "DeriveColumn", "JsonlTable", "TfrecordExamples"]


@hookimpl
def register_sources(register: Any) -> None:
    """Register ``csv_table``, ``jsonl_table`` and ``tfrecord_examples``."""
    register(CsvTable)
    register(JsonlTable)
    register(TfrecordExamples)


@hookimpl
def register_transforms(register: Any) -> None:
    """Register ``derive_column`` and ``column_quantiles``."""
    register(DeriveColumn)
    register(ColumnQuantiles)
