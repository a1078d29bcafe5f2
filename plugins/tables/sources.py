"""Table sources: CSV files, JSON Lines files and existing TFRecord files of tf.train.Example."""

from __future__ import annotations

import functools
import glob
from pathlib import Path
from typing import Any, Literal

from beamline import ParamError, PipelineError, Source, StepContext, param
from beamline.fingerprint import files_digest
from beamline.ingest import MAIN, REJECTED, create_source, record_stage

from . import readers


def _files(component: str, pattern: str, ctx: StepContext) -> list[str]:
    resolved = ctx.resolve(pattern)
    files = sorted(glob.glob(str(resolved)))
    files = [f for f in files if Path(f).is_file()]
    if not files:
        raise PipelineError(f"{component}: no file matches {resolved}")
    return files


def _info(label: str, modalities: dict[str, str]) -> dict[str, Any]:
    features = {name: {"modality": modality} for name, modality in modalities.items()}
    if label:
        features[label] = {"modality": "label"}
    return {"features": features, "label": label or None, "warnings": []}


class _TableSource(Source):
    """Shared parameters and helpers of the table sources (not registered)."""

    name = "table_source"
    path: str = param(help="file or glob pattern (relative to the pipeline file)", path="glob")
    label: str = param("", help="the label column/feature ('' = none)")
    modalities: dict[str, str] = param(
        {}, help="modality per feature (text, categorical, numeric, image, id...) over inference"
    )

    def location(self, ctx: StepContext) -> str:
        """The files this source reads."""
        return str(ctx.resolve(self.path))

    def data_fingerprint(self, ctx: StepContext) -> str | None:
        """A digest of the matched files (names, sizes, times)."""
        return files_digest([Path(f) for f in _files(self.name, self.path, ctx)])

    def feature_info(self, ctx: StepContext) -> dict[str, Any]:
        """The label and the declared modalities."""
        return _info(self.label, self.modalities)


class CsvTable(_TableSource):
    """Rows of CSV files (with a header) as records, one feature per column.

    Column types are inferred over the whole data set in Beam: a column whose cells are all
    integers becomes int64, all numbers float, anything else text (``types`` overrides this).
    Empty cells of numeric columns are missing values. Malformed rows (wrong number of fields,
    bad quoting, invalid UTF-8, an empty label, a cell that does not fit an explicit type) are
    rejected as ``file.csv:row N`` with the reason."""

    name = "csv_table"
    columns: list[str] = param([], help="columns to keep (the label is always kept); [] = all")
    types: dict[str, str] = param({}, help="column type over inference: int, float or text")
    infer_types: bool = param(True, help="infer numeric columns; false: every column is text")
    delimiter: str = param(",", help="field delimiter")

    def check(self) -> None:
        """Column types are int, float or text; the delimiter is one character."""
        super().check()
        for column, kind in self.types.items():
            if kind not in readers.COLUMN_TYPES:
                raise ParamError(f"types.{column}", f"expected int, float or text, got {kind!r}")
        if len(self.delimiter) != 1:
            raise ParamError("delimiter", f"must be one character, got {self.delimiter!r}")

    def _check(self, files: list[str]) -> None:
        wanted = set(self.columns) | set(self.types) | ({self.label} if self.label else set())
        for file in files:
            header = readers.csv_header(file, self.delimiter)
            missing = sorted(wanted - set(header))
            if header and missing:
                raise PipelineError(
                    f"csv_table: {file} has no column {', '.join(map(repr, missing))} "
                    f"(columns: {', '.join(header)})"
                )

    def read(self, ctx: StepContext) -> Any:
        """Read rows in Beam, infer column types over all rows, then read and convert every row
        (two reads of the files: memory does not grow with the rows)."""
        import apache_beam as beam

        files = _files(self.name, self.path, ctx)
        self._check(files)
        keep = sorted(set(self.columns) | {self.label}) if self.columns else None
        reader = functools.partial(
            readers.read_csv, delimiter=self.delimiter, keep=keep, label=self.label
        )
        # The files are read twice: once for the column types (one summary per file), then
        # again to convert each row with them. Converting the first read's rows would make the
        # runner hold every row until the types (a side input over all rows) are known.
        kinds_of_file = functools.partial(
            readers.file_kinds, delimiter=self.delimiter, keep=keep, label=self.label
        )
        rows_source = create_source(self.name, files, reader)
        explicit, infer, name = dict(self.types), self.infer_types, self.name

        @beam.ptransform_fn
        def _read(root: Any) -> dict[str, Any]:
            kinds = (
                root
                | "column types: files" >> beam.Create(files, reshuffle=True)
                | "column types: per file" >> beam.Map(kinds_of_file)
                | "column types: combine" >> beam.CombineGlobally(readers.merge_kinds)
            )
            rows = root | "rows" >> rows_source
            fn = functools.partial(readers.convert_row, explicit=explicit, infer=infer)
            typed = rows[MAIN] | "convert" >> record_stage(
                name, fn, kinds=beam.pvalue.AsSingleton(kinds)
            )
            rejected = (rows[REJECTED], typed[REJECTED]) | "rejected" >> beam.Flatten()
            return {MAIN: typed[MAIN], REJECTED: rejected}

        transform = _read()
        # The direct runner's in-process ingest reads through this instead (no Beam).
        transform.source_items = (
            name, files, readers.TypedCsvRows(files, self.delimiter, keep, self.label,
                                              explicit, infer)
        )  # fmt: skip
        return transform


class JsonlTable(_TableSource):
    """Objects of JSON Lines files as records, one feature per key.

    Values may be text, numbers, booleans, null (missing) or lists of those. Lines that are not
    JSON, not an object, hold nested objects or lack the label are rejected as ``file:row N``
    (N is the line number) with the reason."""

    name = "jsonl_table"
    columns: list[str] = param([], help="keys to keep (the label is always kept); [] = all")

    def read(self, ctx: StepContext) -> Any:
        """Read every line in Beam."""
        files = _files(self.name, self.path, ctx)
        keep = sorted(set(self.columns) | {self.label}) if self.columns else None
        reader = functools.partial(readers.read_jsonl, keep=keep, label=self.label)
        return create_source(self.name, files, reader)


class TfrecordExamples(_TableSource):
    """Existing TFRecord files of tf.train.Example as records (a glob of files).

    A feature with one value becomes a scalar, several a list. GZIP files are recognised
    automatically. A record that is no Example is rejected as ``file:record N``; a corrupt or
    truncated file is rejected from its first bad record on."""

    name = "tfrecord_examples"
    compression: Literal["auto", "gzip", "none"] = param("auto", help="file compression")

    def read(self, ctx: StepContext) -> Any:
        """Read every file in Beam."""
        files = _files(self.name, self.path, ctx)
        reader = functools.partial(
            readers.read_tfrecord, compression=self.compression, label=self.label
        )
        return create_source(self.name, files, reader)
