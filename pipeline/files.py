"""Labelled files: a folder with one sub-folder per class, or a manifest CSV of path,label[,group].

Sources that read one example per file list the files in the driver with ``FileListing`` and read
them in Beam with ``read_listed_file``. Hidden files and folders (names starting with ``.``) are
skipped; extensions match in any case. A manifest's bad rows are not errors: each becomes a
listed reject that names ``manifest:row N`` and the reason, so the ingest step reports it with the
other rejected records. Sources that read tables read CSV rows with ``csv_rows`` (per-row rejects
named ``file:row N`` too). Only the standard library is used; nothing here knows what the files
hold.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from .errors import DataNotFound, PipelineError
from .records import SOURCE_KEY, Reject


def wanted_extensions(extensions: Iterable[str]) -> set[str]:
    """``extensions`` lower-cased, each with its leading dot (``"PNG"`` -> ``".png"``)."""
    return {e.lower() if e.startswith(".") else f".{e.lower()}" for e in extensions}


@dataclass(frozen=True)
class LabelledFile:
    """A listed file with its label (the class) and its group ('' for none)."""

    path: Path
    label: str
    group: str = ""

    def item(self, path_id: str = "") -> tuple[str, ...]:
        """The item ``read_listed_file`` reads: ``("file", path, label, group, path_id)``."""
        return ("file", str(self.path), self.label, self.group, path_id)


@dataclass(frozen=True)
class ListedReject:
    """A manifest row that lists no usable file: where it is (``manifest:row N``) and why."""

    where: str
    reason: str

    def item(self) -> tuple[str, ...]:
        """The item ``("reject", where, reason)``: ``read_listed_file`` yields its ``Reject``."""
        return ("reject", self.where, self.reason)


Entry = LabelledFile | ListedReject


@dataclass(frozen=True)
class FileListing:
    """The files of a folder of class sub-folders (the folder name is the label) or of a manifest.

    ``source`` names the source in error messages. With ``manifest`` (a CSV whose header holds
    ``path``, ``label`` and optionally ``group_column``; paths relative to ``root``) the manifest
    lists the files. ``keep_broken`` keeps what cannot be read (broken symbolic links; listed
    paths that exist but are not files) so that reading it reports a reject. ``no_header`` is
    what the header error says was found in an empty manifest."""

    source: str
    root: Path
    extensions: tuple[str, ...]
    manifest: Path | None = None
    group_column: str = "group"
    keep_broken: bool = False
    no_header: str = "an empty file"
    # Listing a large folder costs; a listing is made once per instance and then reused.
    _memo: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def location(self) -> str:
        """The manifest, or else the folder, as text."""
        return str(self.manifest or self.root)

    def _check_root(self) -> None:
        if not self.root.is_dir():
            raise DataNotFound(
                f"folder not found: {self.root} ({self.source})", self.source, "root"
            )

    def class_folders(self) -> list[Path]:
        """The visible sub-folders of ``root``, sorted; raise ``PipelineError`` without root."""
        self._check_root()
        return sorted(p for p in self.root.iterdir() if p.is_dir() and not p.name.startswith("."))

    def folder_files(self, folder: Path) -> list[Path]:
        """The files of ``folder`` (at any depth) with a wanted extension, sorted."""
        extensions = wanted_extensions(self.extensions)
        found: list[tuple[tuple[str, ...], str]] = []
        self._walk(str(folder), (), extensions, found)
        found.sort()
        return [Path(path) for _, path in found]

    def _walk(
        self,
        folder: str,
        parts: tuple[str, ...],
        extensions: set[str],
        found: list[tuple[tuple[str, ...], str]],
    ) -> None:
        # os.scandir: the entry types come with the listing, without a stat() per file.
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):  # as Path.rglob: links not followed
                    self._walk(entry.path, (*parts, entry.name), extensions, found)
                    continue
                if (
                    entry.name.startswith(".")
                    or os.path.splitext(entry.name)[1].lower() not in extensions
                ):
                    continue
                if entry.is_file() or (self.keep_broken and entry.is_symlink()):
                    found.append(((*parts, entry.name), entry.path))

    def entries(self) -> list[Entry]:
        """Every listed file (and, from a manifest, every rejected row), in listing order."""
        if "entries" not in self._memo:
            if self.manifest is not None:
                self._memo["entries"] = self.manifest_entries(self.manifest)
            else:
                self._memo["entries"] = [
                    LabelledFile(path, folder.name)
                    for folder in self.class_folders()
                    for path in self.folder_files(folder)
                ]
        return list(self._memo["entries"])

    def files(self) -> list[Path]:
        """The listed files (not the rejected rows)."""
        return [e.path for e in self.entries() if isinstance(e, LabelledFile)]

    def empty_classes(self) -> list[str]:
        """The class folders with no wanted file (none with a manifest)."""
        if self.manifest is not None:
            return []
        found = {e.label for e in self.entries() if isinstance(e, LabelledFile)}
        return [f.name for f in self.class_folders() if f.name not in found]

    def empty_class_warnings(self, kind: str) -> list[str]:
        """A warning per class folder with no file: ``... has no <kind> files ...``."""
        return [
            f"class folder '{name}' in {self.root} has no {kind} files: the class has no examples"
            for name in self.empty_classes()
        ]

    def data_fingerprint(self) -> str:
        """A digest of the listed files (names, sizes, times), the manifest and the class
        folders: what a source's step fingerprint needs to notice changed data."""
        from .fingerprint import files_digest

        files = [f for f in self.files() if f.exists()]
        if self.manifest is not None:
            return files_digest([*files, self.manifest])
        folders = "|".join(f.name for f in self.class_folders())
        return files_digest(files, self.root) + ":" + folders

    def nothing_found(self, kind: str) -> PipelineError:
        """The error for a listing with no ``kind`` file at all."""
        return PipelineError(
            f"{self.source}: no {kind} files ({', '.join(self.extensions)}) found in "
            f"{self.location()}; expected one sub-folder per class"
        )

    def _exists(self, path: Path) -> bool:
        if self.keep_broken:
            return path.exists() or path.is_symlink()
        return path.is_file()

    def manifest_entries(self, manifest: Path) -> list[Entry]:
        """The rows of ``manifest``; raise ``PipelineError`` when it or its header is unusable.

        Blank rows are skipped (and still counted in ``row N``); a row with the wrong number of
        fields, an empty path or label, or a file that does not exist is a ``ListedReject``."""
        self._check_root()
        try:
            text = manifest.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise DataNotFound(
                f"manifest not found: {manifest} ({self.source})", self.source, "manifest"
            ) from None
        except OSError as exc:
            raise PipelineError(f"{self.source}: cannot read manifest {manifest}: {exc}") from exc
        rows = list(csv.reader(text.splitlines()))
        if not rows or "path" not in rows[0] or "label" not in rows[0]:
            raise PipelineError(
                f"{self.source}: manifest {manifest} needs a header with 'path' and 'label' "
                f"(and optionally '{self.group_column}'), got {rows[0] if rows else self.no_header}"
            )
        header = rows[0]
        path_col, label_col = header.index("path"), header.index("label")
        group_col = header.index(self.group_column) if self.group_column in header else None
        entries: list[Entry] = []
        for number, row in enumerate(rows[1:], 1):
            where = f"{manifest}:row {number}"
            if not any(cell.strip() for cell in row):
                continue
            if len(row) != len(header):
                entries.append(
                    ListedReject(where, f"expected {len(header)} fields, got {len(row)}")
                )
                continue
            path, label = row[path_col].strip(), row[label_col].strip()
            group = row[group_col].strip() if group_col is not None else ""
            if not path or not label:
                entries.append(ListedReject(where, "empty path or label"))
                continue
            full = self.root / path
            if not self._exists(full):
                entries.append(ListedReject(where, f"listed file not found: {full}"))
                continue
            entries.append(LabelledFile(full, label, group))
        return entries


def shared_listing(owner: Any, listing: FileListing) -> FileListing:
    """``listing``, or the equal listing ``owner`` (a source) made before: each step lists its
    folder once, though its fingerprint, reader and feature description all ask for the files."""
    memo = owner.__dict__.setdefault("_file_listings", {})
    return memo.setdefault(listing, listing)


def read_listed_file(item: tuple[str, ...], feature: str) -> Iterator[Any]:
    """Read one listed item into a record, or a ``Reject`` (run in Beam workers).

    ``("file", path, label, group, path_id)`` becomes ``{feature: the file's bytes, "label":
    label}`` with ``"group"`` and ``"path"`` (an id) when not empty; ``("reject", where,
    reason)`` and an unreadable file become a ``Reject``."""
    if item[0] == "reject":
        _, where, reason = item
        yield Reject(reason, where)
        return
    _, path, label, group, path_id = item
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        yield Reject(f"unreadable file: {exc.strerror or exc}", path)
        return
    record: dict[str, Any] = {SOURCE_KEY: path, feature: data, "label": label}
    if group:
        record["group"] = group
    if path_id:
        record["path"] = path_id
    yield record


def decoded_text(path: str) -> str:
    """A file's text: UTF-8, undecodable bytes kept as surrogate escapes, a leading BOM removed.

    Raises ``OSError`` when the file cannot be read."""
    data = Path(path).read_bytes()
    return data.decode("utf-8", errors="surrogateescape").removeprefix("\ufeff")


HeaderCheck = Callable[[list[str]], str | None]


def csv_rows(
    path: str, delimiter: str, check_header: HeaderCheck | None = None, line_numbers: bool = False
) -> Iterator[tuple[str, list[str], list[str], int] | Reject]:
    """Yield ``(where, header, row, line)`` for each data row of a CSV file with a header row.

    ``where`` is ``path:row N`` (blank lines not counted), ``line`` the reader's line number
    (run in Beam workers). An unreadable file, a malformed row and a row with the wrong number of
    fields (`` (line N)`` added to the reason when ``line_numbers``) are yielded as ``Reject``.
    With ``check_header``, a malformed header row, or one for which ``check_header`` returns a
    reason, rejects the whole file; without it, a malformed first row is rejected as ``row 1``
    and the next row is the header."""
    # Read as a stream (decoded as ``decoded_text`` decodes): a whole file's text, and the
    # reader's copy of it, would grow memory with the file.
    try:
        handle = open(path, encoding="utf-8-sig", errors="surrogateescape", newline="")
    except OSError as exc:
        yield Reject(f"unreadable file: {exc.strerror or exc}", path)
        return
    with handle:
        yield from _csv_items(path, handle, delimiter, check_header, line_numbers)


def _csv_items(
    path: str,
    handle: TextIO,
    delimiter: str,
    check_header: HeaderCheck | None,
    line_numbers: bool,
) -> Iterator[tuple[str, list[str], list[str], int] | Reject]:
    reader = csv.reader(handle, delimiter=delimiter, strict=True)
    header: list[str] | None = None
    number = 0
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except OSError as exc:
            yield Reject(f"unreadable file: {exc.strerror or exc}", path)
            return
        except csv.Error as exc:
            if header is None and check_header is not None:
                yield Reject(f"malformed CSV header: {exc}", path)
                return
            number += 1
            yield Reject(f"malformed CSV (line {reader.line_num}): {exc}", f"{path}:row {number}")
            continue
        if header is None:
            header = [name.strip() for name in row]
            problem = check_header(header) if check_header is not None else None
            if problem:
                yield Reject(problem, path)
                return
            continue
        if not row or (len(row) == 1 and not row[0].strip()):
            continue  # a blank line
        number += 1
        where = f"{path}:row {number}"
        if len(row) != len(header):
            line = f" (line {reader.line_num})" if line_numbers else ""
            yield Reject(f"expected {len(header)} fields, got {len(row)}{line}", where)
            continue
        yield where, header, row, reader.line_num
