"""Table transforms: a column derived from others by an expression, and quantile boundaries of
numeric columns computed on the train split (the analyzer ``table_input`` bakes into a model)."""

from __future__ import annotations

import functools
from typing import Any, Literal

from beamline import ParamError, StepContext, Transform, param
from beamline.ingest import record_stage

from . import columns_ops
from .expression import ExpressionError, parse

OnMissing = Literal["fill", "reject", "empty"]


class DeriveColumn(Transform):
    """Add a column computed from others by an expression, such as a label: ``tips > 0.2 * fare``.

    The expression language (``beamline_plugins.tables.expression``) has numbers, quoted text,
    column names, ``+ - * / %``, comparisons, ``and``/``or``/``not`` and parentheses; it is parsed,
    never ``eval``-ed. A comparison or logic result is stored as an integer 0/1 (so a derived label
    has the classes 0 and 1), arithmetic as a float. When an operand is missing (an empty cell),
    ``on_missing`` decides: ``fill`` stores ``fill`` (TFX's taxi example counts a trip without a
    fare as no big tipper: ``fill: 0``), ``empty`` leaves the column missing, ``reject`` rejects
    the record with the reason. ``label: true`` makes the new column the examples' label."""

    name = "derive_column"
    column: str = param(help="the new column's name")
    expression: str = param(help="how to compute it from other columns, e.g. 'tips > 0.2 * fare'")
    label: bool = param(False, help="the new column is the label of the examples")
    on_missing: OnMissing = param("fill", help="when an operand is missing: fill, empty or reject")
    fill: float = param(0.0, help="the value stored when an operand is missing (on_missing: fill)")

    def check(self) -> None:
        """The expression parses and does not read the column it writes."""
        try:
            parsed = parse(self.expression)
        except ExpressionError as exc:
            raise ParamError("expression", str(exc)) from None
        if self.column in parsed.columns:
            raise ParamError("expression", f"reads '{self.column}', the column it writes")
        if not self.column.strip():
            raise ParamError("column", "is empty: name the new column")

    def stage(self, ctx: StepContext) -> Any:
        """The Beam stage: compute the column on every record."""
        fn = functools.partial(
            columns_ops.derive_record,
            column=self.column,
            expression=parse(self.expression),
            on_missing=self.on_missing,
            fill=self.fill,
        )
        return record_stage(self.name, fn)

    def columns_stage(self, ctx: StepContext) -> Any:
        """The stage on a batch of columns (the in-process ingest's columnar path): the
        expression computed per column where it can be, else the batch goes a record at a
        time through ``stage``'s function."""
        return functools.partial(
            columns_ops.derive_columns,
            column=self.column,
            expression=parse(self.expression),
            on_missing=self.on_missing,
            fill=self.fill,
        )

    def feature_info(self, ctx: StepContext, info: dict[str, Any]) -> dict[str, Any]:
        """The new column is numeric, or the label with ``label: true``."""
        features = {name: dict(spec) for name, spec in info.get("features", {}).items()}
        features[self.column] = {"modality": "label" if self.label else "numeric"}
        out = {**info, "features": features}
        if self.label:
            previous = info.get("label")
            if previous and previous != self.column:
                features[previous] = {**features.get(previous, {}), "modality": "numeric"}
            out["label"] = self.column
        return out


class ColumnQuantiles(Transform):
    """Quantile boundaries of numeric columns, computed on the TRAIN split in Beam.

    ``columns: {pickup_latitude: 10}`` asks for 10 buckets of about equal train counts: 9
    boundaries (fewer when values repeat). Records pass unchanged; ingest applies ``analyze`` to
    the train split only and writes ``assets/quantiles/<column>.json`` (``{"column", "buckets",
    "boundaries", "count"}``). ``table_input`` (``buckets: [...]``) reads them and the model
    bakes them in (a ``Discretization`` layer), so the exported model buckets raw values itself.
    Missing values are left out of the count."""

    name = "column_quantiles"
    columns: dict[str, int] = param(help="numeric column -> number of buckets (2 or more)")

    def check(self) -> None:
        """At least one column, each with at least 2 buckets."""
        if not self.columns:
            raise ParamError("columns", "is empty: give {column: buckets, ...}")
        for column, buckets in self.columns.items():
            if buckets < 2:
                raise ParamError(f"columns.{column}", f"needs at least 2 buckets, got {buckets}")

    def stage(self, ctx: StepContext) -> Any:
        """Records pass unchanged (the work is in ``analyze``)."""
        return record_stage(self.name, columns_ops.identity)

    def columns_stage(self, ctx: StepContext) -> Any:
        """Batches of columns pass unchanged."""
        return columns_ops.identity

    def analyze(self, ctx: StepContext) -> Any:
        """The analyzer: train records -> ``(relative path, bytes)`` of one file per column."""
        return columns_ops.quantiles_analyzer(dict(self.columns))

    def analyze_in_process(self, ctx: StepContext) -> Any:
        """The same analyzer without Beam (the ``direct`` runner's in-process ingest): Beam's
        own quantile combine over the train values, fed in batches."""
        return columns_ops.InProcessQuantiles(dict(self.columns))
