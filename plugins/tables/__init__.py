"""Table sources: CSV, JSON Lines and existing TFRecord files of tf.train.Example.

Importing this plugin is cheap: Beam loads only when a source runs.
"""

from __future__ import annotations

from typing import Any

from beamline import hookimpl

from .sources import CsvTable, JsonlTable, TfrecordExamples

__all__ = ["CsvTable", "JsonlTable", "TfrecordExamples"]


@hookimpl
def register_sources(register: Any) -> None:
    """Register ``csv_table``, ``jsonl_table`` and ``tfrecord_examples``."""
    register(CsvTable)
    register(JsonlTable)
    register(TfrecordExamples)
