"""Text sources: ``text_table`` (CSV or JSON Lines) and ``text_folder`` (a folder per class)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from beamline import ParamError, PipelineError, Source, StepContext, param
from beamline.files import FileListing, LabelledFile
from beamline.fingerprint import files_digest
from beamline.ingest import create_source

from . import readers


def _text_features(label: bool, group: bool, extra: list[str]) -> dict[str, Any]:
    features: dict[str, Any] = {"text": {"modality": "text"}}
    if label:
        features["label"] = {"modality": "label"}
    if group:
        features["group"] = {"modality": "id"}
    features.update({name: {"modality": "categorical"} for name in extra})
    return {"features": features, "label": "label" if label else None, "warnings": []}


class TextTable(Source):
    """Texts and labels from a CSV file (with a header row) or a JSON Lines file.

    Records have the features ``text``, ``label`` (from ``label_column``; leave it empty for
    unlabelled text, e.g. a language model), ``group`` (from ``group_column``, an id that keeps
    related rows on one side of the split with ``split: {group_by: group}``) and the ``columns``
    kept as they are. Rows are rejected with ``file:row N`` and the reason when their bytes are
    not valid UTF-8, their text is empty, their label is missing or the row is malformed."""

    name = "text_table"
    path: str = param(help="the CSV or JSONL file (relative to the pipeline file)", path="file")
    format: Literal["auto", "csv", "jsonl"] = param("auto", help="auto: from the file extension")
    text_column: str = param("text", help="column (or JSON key) holding the text")
    label_column: str = param("label", help="column holding the label; '' for unlabelled text")
    group_column: str = param("", help="column holding a group id ('' for none)")
    columns: list[str] = param([], help="other columns kept as features (categorical)")
    delimiter: str = param(",", help="CSV field delimiter")

    def check(self) -> None:
        """The delimiter is one character."""
        super().check()
        if len(self.delimiter) != 1:
            raise ParamError("delimiter", f"must be one character, got {self.delimiter!r}")

    def _path(self, ctx: StepContext) -> Path:
        return ctx.resolve(self.path)

    def _format(self, path: Path) -> str:
        if self.format != "auto":
            return self.format
        return "jsonl" if path.suffix.lower() in (".jsonl", ".ndjson", ".json") else "csv"

    def location(self, ctx: StepContext) -> str:
        """The file this source reads."""
        return str(self._path(ctx))

    def read(self, ctx: StepContext) -> Any:
        """Read the file's rows in Beam (one reader per file)."""
        path = self._path(ctx)
        if not path.is_file():
            raise PipelineError(f"text_table: file not found: {path}")
        columns = readers.Columns(
            text=self.text_column,
            label=self.label_column,
            group=self.group_column,
            extra=tuple(self.columns),
        )
        fn = readers.read_jsonl_rows if self._format(path) == "jsonl" else readers.read_csv_rows
        return create_source(self.name, [(str(path), self.delimiter, columns)], fn)

    def feature_info(self, ctx: StepContext) -> dict[str, Any]:
        """Features: ``text`` (text), ``label`` (label), ``group`` (id), extra columns."""
        return _text_features(bool(self.label_column), bool(self.group_column), self.columns)

    def data_fingerprint(self, ctx: StepContext) -> str | None:
        """A digest of the file (name, size, time)."""
        path = self._path(ctx)
        return files_digest([path]) if path.exists() else "missing"


class TextFolder(Source):
    """Text files from a folder with one sub-folder per class (the folder name is the label).

    Each file is one example: ``text`` (its content, UTF-8) and ``label``. Files whose bytes are
    not valid UTF-8 or that hold no text are rejected with the reason."""

    name = "text_folder"
    root: str = param(
        help="folder of class sub-folders (relative to the pipeline file)", path="folder"
    )
    extensions: list[str] = param([".txt"], help="file extensions read (any case)")

    def _root(self, ctx: StepContext) -> Path:
        return ctx.resolve(self.root)

    def location(self, ctx: StepContext) -> str:
        """The folder this source reads."""
        return str(self._root(ctx))

    def _files(self, ctx: StepContext) -> list[tuple[str, str]]:
        listing = FileListing(self.name, self._root(ctx), tuple(self.extensions))
        return [(str(e.path), e.label) for e in listing.entries() if isinstance(e, LabelledFile)]

    def read(self, ctx: StepContext) -> Any:
        """List the files (in the driver) and read them in Beam."""
        items = self._files(ctx)
        if not items:
            raise PipelineError(
                f"text_folder: no text files ({', '.join(self.extensions)}) in "
                f"{self._root(ctx)}; expected one sub-folder per class"
            )
        return create_source(self.name, items, readers.read_text_file)

    def feature_info(self, ctx: StepContext) -> dict[str, Any]:
        """Features: ``text`` (text) and ``label`` (the class folder)."""
        return _text_features(True, False, [])

    def data_fingerprint(self, ctx: StepContext) -> str | None:
        """A digest of the text files (names, sizes, times)."""
        return files_digest([Path(path) for path, _ in self._files(ctx)])
