"""The ``audio_folder`` source: a folder per class, or a manifest CSV of path,label[,group]."""

from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import Any, ClassVar

from pipeline import PipelineError, Source, SpecError, StepContext, param
from pipeline.fingerprint import files_digest
from pipeline.ingest import SOURCE_KEY, Reject, create_source

DEFAULT_EXTENSIONS = [".wav"]


def read_audio_file(item: tuple[str, ...]) -> Any:
    """Read one listed item ``("file", path, label, group, path_id)`` into a record (or a Reject).

    ``("reject", where, reason)`` items (bad manifest rows) become rejected records."""
    if item[0] == "reject":
        _, source, reason = item
        yield Reject(reason, source)
        return
    _, path, label, group, path_id = item
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        yield Reject(f"unreadable file: {exc.strerror or exc}", path)
        return
    record: dict[str, Any] = {SOURCE_KEY: path, "audio": data, "label": label}
    if group:
        record["group"] = group
    if path_id:
        record["path"] = path_id
    yield record


class AudioFolder(Source):
    """Audio clips (WAV) from a folder with one sub-folder per class (the folder name is the label).

    With ``manifest``, a CSV with a header holding ``path`` and ``label`` lists the clips instead
    (paths relative to ``root``); its ``group_column`` (default ``group``, e.g. ``speaker``)
    becomes the ``group`` feature. Without a manifest, ``group_pattern`` (a regular expression
    whose first group matches part of the file name, e.g. ``^[^_]+_([^_]+)_`` for
    ``7_george_3.wav``) gives the group. Use ``split: {group_by: group}`` to keep each speaker's
    clips on one side of the split. Records hold ``audio`` (the file's bytes), ``label``,
    ``group`` and, with ``path_feature``, ``path`` (the file relative to ``root``; an id that
    the evaluator writes next to each prediction). Add ``decode_audio`` to ``transforms`` to check
    the files."""

    name = "audio_folder"
    code_modules: ClassVar[tuple[str, ...]] = ("plugins.audio.ops", "plugins.audio.wav")

    root: str = param(help="folder of class sub-folders (relative to the pipeline file)")
    manifest: str = param("", help="CSV of path,label[,group] relative to root; '' = sub-folders")
    group_column: str = param("group", help="manifest column read into the 'group' feature")
    group_pattern: str = param(
        "", help="regex on the file name whose first group is the 'group' feature (no manifest)"
    )
    path_feature: bool = param(False, help="add the file path relative to root as feature 'path'")
    extensions: list[str] = param(DEFAULT_EXTENSIONS, help="file extensions read (any case)")

    def __post_init__(self) -> None:
        """Check ``group_pattern`` when the pipeline file is read."""
        if self.group_pattern:
            try:
                pattern = re.compile(self.group_pattern)
            except re.error as exc:
                raise SpecError(f"audio_folder: group_pattern: {exc}") from None
            if pattern.groups < 1:
                raise SpecError("audio_folder: group_pattern needs a (capturing group)")

    def location(self, ctx: StepContext) -> str:
        """The folder (or manifest) this source reads."""
        return str(self._manifest(ctx) or self._root(ctx))

    def _root(self, ctx: StepContext) -> Path:
        return ctx.resolve(self.root)

    def _manifest(self, ctx: StepContext) -> Path | None:
        return self._root(ctx) / self.manifest if self.manifest else None

    def _is_audio(self, path: Path) -> bool:
        wanted = {e.lower() if e.startswith(".") else f".{e.lower()}" for e in self.extensions}
        return path.suffix.lower() in wanted and not path.name.startswith(".")

    def _class_folders(self, root: Path) -> list[Path]:
        if not root.is_dir():
            raise PipelineError(f"audio_folder: folder not found: {root}")
        return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))

    def _folder_files(self, folder: Path) -> list[Path]:
        return sorted(p for p in folder.rglob("*") if self._is_audio(p) and p.is_file())

    def _group_of(self, path: Path) -> str:
        if not self.group_pattern:
            return ""
        found = re.search(self.group_pattern, path.name)
        return found.group(1) if found else ""

    def _item(self, root: Path, path: Path, label: str, group: str) -> tuple[str, ...]:
        path_id = path.relative_to(root).as_posix() if self.path_feature else ""
        return ("file", str(path), label, group, path_id)

    def _items(self, ctx: StepContext) -> list[tuple[str, ...]]:
        root = self._root(ctx)
        manifest = self._manifest(ctx)
        if manifest is not None:
            return self._manifest_items(root, manifest)
        items = []
        for folder in self._class_folders(root):
            for path in self._folder_files(folder):
                items.append(self._item(root, path, folder.name, self._group_of(path)))
        return items

    def _manifest_items(self, root: Path, manifest: Path) -> list[tuple[str, ...]]:
        if not root.is_dir():
            raise PipelineError(f"audio_folder: folder not found: {root}")
        try:
            text = manifest.read_text(encoding="utf-8")
        except OSError as exc:
            raise PipelineError(f"audio_folder: cannot read manifest {manifest}: {exc}") from exc
        rows = list(csv.reader(text.splitlines()))
        if not rows or "path" not in rows[0] or "label" not in rows[0]:
            raise PipelineError(
                f"audio_folder: manifest {manifest} needs a header with 'path' and 'label' "
                f"(and optionally '{self.group_column}'), got {rows[0] if rows else 'no rows'}"
            )
        header = rows[0]
        col = {name: header.index(name) for name in ("path", "label") if name in header}
        group_col = header.index(self.group_column) if self.group_column in header else None
        items: list[tuple[str, ...]] = []
        for number, row in enumerate(rows[1:], 1):
            where = f"{manifest}:row {number}"
            if not any(cell.strip() for cell in row):
                continue
            if len(row) != len(header):
                items.append(("reject", where, f"expected {len(header)} fields, got {len(row)}"))
                continue
            path, label = row[col["path"]].strip(), row[col["label"]].strip()
            group = row[group_col].strip() if group_col is not None else ""
            if not path or not label:
                items.append(("reject", where, "empty path or label"))
                continue
            full = root / path
            if not full.is_file():
                items.append(("reject", where, f"listed file not found: {full}"))
                continue
            items.append(self._item(root, full, label, group or self._group_of(full)))
        return items

    def read(self, ctx: StepContext) -> Any:
        """List the clips (in the driver) and read them in Beam."""
        items = self._items(ctx)
        if not items:
            raise PipelineError(
                f"audio_folder: no audio files ({', '.join(self.extensions)}) found in "
                f"{self.location(ctx)}; expected one sub-folder per class"
            )
        return create_source(self.name, items, read_audio_file)

    def empty_classes(self, ctx: StepContext) -> list[str]:
        """Class folders with no audio file (only without a manifest)."""
        if self.manifest:
            return []
        return [f.name for f in self._class_folders(self._root(ctx)) if not self._folder_files(f)]

    def feature_info(self, ctx: StepContext) -> dict[str, Any]:
        """Features: ``audio`` (modality audio), ``label``, ``group`` and ``path`` (ids)."""
        root = self._root(ctx)
        warnings = [
            f"class folder '{name}' in {root} has no audio files: the class has no examples"
            for name in self.empty_classes(ctx)
        ]
        return {
            "features": {
                "audio": {"modality": "audio", "format": "wav"},
                "label": {"modality": "label"},
                "group": {"modality": "id"},
                "path": {"modality": "id"},
            },
            "label": "label",
            "warnings": warnings,
        }

    def data_fingerprint(self, ctx: StepContext) -> str | None:
        """A digest of the audio files (names, sizes, times) and of the manifest."""
        root = self._root(ctx)
        manifest = self._manifest(ctx)
        if manifest is not None:
            files = [Path(i[1]) for i in self._manifest_items(root, manifest) if i[0] == "file"]
            files.append(manifest)
        else:
            files = [p for f in self._class_folders(root) for p in self._folder_files(f)]
        return files_digest(files, root if manifest is None else None)
