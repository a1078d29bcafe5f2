"""The Beam combine of ``csv_table``'s column types (imported when a CSV step runs: it imports
Apache Beam)."""

from __future__ import annotations

from typing import Any

import apache_beam as beam

from . import readers


class ColumnKinds(beam.CombineFn):
    """Rows -> the kinds of each column's cells, as ``readers.merge_kinds`` gives them over every
    ``readers.row_kinds``: a set per column per accumulator instead of a dict per row."""

    def create_accumulator(self) -> dict[str, set[str]]:
        """No column yet."""
        return {}

    def add_input(self, kinds: dict[str, set[str]], row: dict[str, Any]) -> dict[str, set[str]]:
        """Add one row's cells."""
        return readers.add_row_kinds(kinds, row)

    def merge_accumulators(self, parts: Any) -> dict[str, set[str]]:
        """Union per column."""
        out: dict[str, set[str]] = {}
        for part in parts:
            for name, kinds in part.items():
                out.setdefault(name, set()).update(kinds)
        return out

    def extract_output(self, kinds: dict[str, set[str]]) -> dict[str, list[str]]:
        """``{column: sorted kinds}``."""
        return {name: sorted(k) for name, k in kinds.items()}
