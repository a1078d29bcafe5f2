"""The ``transcript_manifest`` source: audio files and their transcripts from a manifest CSV/TSV.

The layout speech corpora ship (LibriSpeech- or Common Voice-style): one row per clip with its
path (relative to the manifest's folder) and its transcript. The manifest is read in the driver;
its bad rows become rejected records naming ``manifest:row N`` and the reason (bad input is
never lost); the files are read in Beam workers.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from beamline import ParamError, PipelineError, Source, StepContext, param
from beamline.errors import DataNotFound
from beamline.fingerprint import files_digest
from beamline.ingest import Reject, create_source
from beamline.records import SOURCE_KEY


def read_transcribed_file(item: tuple[Any, ...]) -> Any:
    """Read one listed item into a record (run in Beam workers).

    ``("file", path, path_id, text, group, extras)`` becomes ``{"audio": bytes, "text": ...,
    "path": path_id}`` with ``group`` and the extra columns; ``("reject", where, reason)`` and
    an unreadable file become a ``Reject``."""
    if item[0] == "reject":
        _, where, reason = item
        yield Reject(reason, where)
        return
    _, path, path_id, text, group, extras = item
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        yield Reject(f"unreadable file: {exc.strerror or exc}", path)
        return
    record: dict[str, Any] = {SOURCE_KEY: path, "audio": data, "text": text, "path": path_id}
    if group:
        record["group"] = group
    record.update(extras)
    yield record


def manifest_items(
    manifest: Path,
    *,
    path_column: str,
    text_column: str,
    group_column: str,
    columns: list[str],
    delimiter: str,
    source: str,
) -> list[tuple[Any, ...]]:
    """The listed items of a manifest (see ``read_transcribed_file``), in row order.

    Raises ``DataNotFound`` for a missing manifest and ``PipelineError`` for one without the
    needed header columns. A row with the wrong number of fields, an empty path or transcript,
    or a file that does not exist becomes a ``("reject", "manifest:row N", reason)`` item."""
    try:
        text = manifest.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise DataNotFound(
            f"manifest not found: {manifest} ({source})", source, "manifest"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PipelineError(f"{source}: cannot read manifest {manifest}: {exc}") from exc
    try:
        rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True))
    except csv.Error as exc:
        raise PipelineError(f"{source}: manifest {manifest} is not valid CSV: {exc}") from None
    header = [name.strip() for name in rows[0]] if rows else []
    wanted = [path_column, text_column] + ([group_column] if group_column else []) + columns
    missing = [name for name in wanted if name not in header]
    if missing:
        raise PipelineError(
            f"{source}: manifest {manifest} has no column {', '.join(map(repr, missing))} in its "
            f"header (found {header or 'an empty file'}); set path_column/text_column/"
            "group_column/columns to the manifest's names"
        )
    index = {name: header.index(name) for name in wanted}
    folder = manifest.parent
    items: list[tuple[Any, ...]] = []
    for number, row in enumerate(rows[1:], 1):
        where = f"{manifest}:row {number}"
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            items.append(("reject", where, f"expected {len(header)} fields, got {len(row)}"))
            continue
        path, transcript = row[index[path_column]].strip(), row[index[text_column]].strip()
        if not path:
            items.append(("reject", where, f"empty '{path_column}'"))
            continue
        if not transcript:
            items.append(("reject", where, f"empty transcript ('{text_column}') for {path}"))
            continue
        full = folder / path
        if not full.is_file():
            items.append(("reject", where, f"listed file not found: {full}"))
            continue
        group = row[index[group_column]].strip() if group_column else ""
        extras = {name: row[index[name]].strip() for name in columns}
        items.append(("file", str(full), path, transcript, group, extras))
    return items


class TranscriptManifest(Source):
    """Audio clips and their transcripts from a manifest (CSV or TSV with a header row).

    Each row names a file (``path_column``, relative to the manifest's folder) and its transcript
    (``text_column``), as LibriSpeech- or Common Voice-style corpora list them (Common Voice:
    ``delimiter: "\\t"``, ``text_column: sentence``). Records hold ``audio`` (the file's bytes),
    ``text``, ``path`` (an id: the path as listed), ``group`` (from ``group_column``, e.g. the
    speaker; use ``split: {group_by: group}``) and the ``columns`` kept as they are (a
    ``split`` column for ``split: {from_feature: split}``). A row with the wrong number of
    fields, an empty path or transcript, or a missing file is rejected with ``manifest:row N``
    and the reason. Add ``decode_audio`` to check the files and ``transcript_vocabulary`` for the
    vocabulary of a CTC model."""

    name = "transcript_manifest"
    manifest: str = param(help="the manifest CSV/TSV (relative to the pipeline file)", path="file")
    path_column: str = param("path", help="column with the audio file (relative to the manifest)")
    text_column: str = param("text", help="column with the transcript")
    group_column: str = param("", help="column read into the 'group' feature ('' for none)")
    columns: list[str] = param([], help="other columns kept as features (e.g. split)")
    delimiter: str = param(",", help="field delimiter (',' for CSV, '\\t' for TSV)")

    def check(self) -> None:
        """The delimiter is one character; extra columns do not shadow the record's features."""
        super().check()
        if len(self.delimiter) != 1:
            raise ParamError("delimiter", f"must be one character, got {self.delimiter!r}")
        taken = {"audio", "text", "path", "group", SOURCE_KEY}
        clash = sorted(taken.intersection(self.columns))
        if clash:
            raise ParamError("columns", f"{clash} would replace a feature of the records")

    def _manifest(self, ctx: StepContext) -> Path:
        return ctx.resolve(self.manifest)

    def _items(self, ctx: StepContext) -> list[tuple[Any, ...]]:
        memo = self.__dict__.setdefault("_items_memo", {})
        manifest = self._manifest(ctx)
        if manifest not in memo:
            memo[manifest] = manifest_items(
                manifest,
                path_column=self.path_column,
                text_column=self.text_column,
                group_column=self.group_column,
                columns=list(self.columns),
                delimiter=self.delimiter,
                source=self.name,
            )
        return memo[manifest]

    def location(self, ctx: StepContext) -> str:
        """The manifest this source reads."""
        return str(self._manifest(ctx))

    def read(self, ctx: StepContext) -> Any:
        """List the manifest's rows (in the driver) and read the files in Beam."""
        items = self._items(ctx)
        if not items:
            raise PipelineError(f"{self.name}: manifest {self._manifest(ctx)} lists no files")
        return create_source(self.name, items, read_transcribed_file)

    def feature_info(self, ctx: StepContext) -> dict[str, Any]:
        """Features: ``audio`` (WAV bytes), ``text`` (the transcript), ``path``/``group`` (ids)."""
        features: dict[str, Any] = {
            "audio": {"modality": "audio", "format": "wav"},
            "text": {"modality": "text", "role": "transcript"},
            "path": {"modality": "id"},
        }
        if self.group_column:
            features["group"] = {"modality": "id"}
        features.update({name: {"modality": "categorical"} for name in self.columns})
        return {"features": features, "label": None, "warnings": []}

    def data_fingerprint(self, ctx: StepContext) -> str | None:
        """A digest of the manifest and the files it lists (names, sizes, times)."""
        manifest = self._manifest(ctx)
        if not manifest.is_file():
            return "missing"
        files = [Path(item[1]) for item in self._items(ctx) if item[0] == "file"]
        return files_digest([manifest, *files])
