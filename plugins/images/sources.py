"""The ``image_folder`` source: a folder per class, or a manifest CSV of path,label[,group]."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any, ClassVar

from pipeline import PipelineError, Source, StepContext, param
from pipeline.fingerprint import files_digest
from pipeline.ingest import SOURCE_KEY, Reject, create_source

DEFAULT_EXTENSIONS = [".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp"]


def _read_image(item: tuple[str, ...]) -> Any:
    """Read one listed item into a record (or a ``Reject``)."""
    if item[0] == "reject":
        _, source, reason = item
        yield Reject(reason, source)
        return
    _, path, label, group = item
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        yield Reject(f"unreadable file: {exc.strerror or exc}", path)
        return
    record: dict[str, Any] = {SOURCE_KEY: path, "image": data, "label": label}
    if group:
        record["group"] = group
    yield record


class ImageFolder(Source):
    """Images from a folder with one sub-folder per class (the folder name is the label).

    With ``manifest``, a CSV with a header ``path,label`` (and optionally ``group``) lists the
    images instead; its paths are relative to ``root``. Records have the features ``image``
    (the file's bytes), ``label`` (the class name) and, from a manifest, ``group``. Add
    ``decode_image`` to ``transforms`` to check that every file decodes. An empty class folder is
    reported as a warning."""

    name = "image_folder"
    code_modules: ClassVar[tuple[str, ...]] = ("plugins.images.ops",)

    root: str = param(help="folder of class sub-folders (relative to the pipeline file)")
    manifest: str = param("", help="CSV of path,label[,group] relative to root; '' = sub-folders")
    extensions: list[str] = param(DEFAULT_EXTENSIONS, help="file extensions read (any case)")

    def location(self, ctx: StepContext) -> str:
        """The folder (or manifest) this source reads."""
        return str(self._manifest(ctx) or self._root(ctx))

    def _root(self, ctx: StepContext) -> Path:
        return ctx.resolve(self.root)

    def _manifest(self, ctx: StepContext) -> Path | None:
        return self._root(ctx) / self.manifest if self.manifest else None

    def _is_image(self, path: Path) -> bool:
        wanted = {e.lower() if e.startswith(".") else f".{e.lower()}" for e in self.extensions}
        return path.suffix.lower() in wanted and not path.name.startswith(".")

    def _class_folders(self, root: Path) -> list[Path]:
        if not root.is_dir():
            raise PipelineError(f"image_folder: folder not found: {root}")
        return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))

    def _folder_files(self, folder: Path) -> list[Path]:
        return sorted(
            p for p in folder.rglob("*") if self._is_image(p) and (p.is_file() or p.is_symlink())
        )

    def _items(self, ctx: StepContext) -> list[tuple[str, ...]]:
        root = self._root(ctx)
        manifest = self._manifest(ctx)
        if manifest is not None:
            return self._manifest_items(root, manifest)
        items: list[tuple[str, ...]] = []
        for folder in self._class_folders(root):
            items.extend(("file", str(p), folder.name, "") for p in self._folder_files(folder))
        return items

    def _manifest_items(self, root: Path, manifest: Path) -> list[tuple[str, ...]]:
        if not root.is_dir():
            raise PipelineError(f"image_folder: folder not found: {root}")
        try:
            text = manifest.read_text(encoding="utf-8")
        except OSError as exc:
            raise PipelineError(f"image_folder: cannot read manifest {manifest}: {exc}") from exc
        rows = list(csv.reader(text.splitlines()))
        if not rows or "path" not in rows[0] or "label" not in rows[0]:
            raise PipelineError(
                f"image_folder: manifest {manifest} needs a header with 'path' and 'label' "
                f"(and optionally 'group'), got {rows[0] if rows else 'an empty file'}"
            )
        header = rows[0]
        col = {name: header.index(name) for name in ("path", "label", "group") if name in header}
        items: list[tuple[str, ...]] = []
        for number, row in enumerate(rows[1:], 1):
            where = f"{manifest}:row {number}"
            if not any(cell.strip() for cell in row):
                continue
            if len(row) != len(header):
                reason = f"expected {len(header)} fields, got {len(row)}"
                items.append(("reject", where, reason))
                continue
            path, label = row[col["path"]].strip(), row[col["label"]].strip()
            group = row[col["group"]].strip() if "group" in col else ""
            if not path or not label:
                items.append(("reject", where, "empty path or label"))
                continue
            full = root / path
            if not full.exists() and not full.is_symlink():
                items.append(("reject", where, f"listed file not found: {full}"))
                continue
            items.append(("file", str(full), label, group))
        return items

    def read(self, ctx: StepContext) -> Any:
        """List the images (in the driver) and read them in Beam."""
        items = self._items(ctx)
        if not items:
            raise PipelineError(
                f"image_folder: no image files ({', '.join(self.extensions)}) found in "
                f"{self.location(ctx)}; expected one sub-folder per class"
            )
        return create_source(self.name, items, _read_image)

    def empty_classes(self, ctx: StepContext) -> list[str]:
        """Class folders with no image file (only without a manifest)."""
        if self.manifest:
            return []
        return [f.name for f in self._class_folders(self._root(ctx)) if not self._folder_files(f)]

    def feature_info(self, ctx: StepContext) -> dict[str, Any]:
        """Features: ``image`` (modality image), ``label`` (the class), ``group`` (an id)."""
        root = self._root(ctx)
        warnings = [
            f"class folder '{name}' in {root} has no image files: the class has no examples"
            for name in self.empty_classes(ctx)
        ]
        return {
            "features": {
                "image": {"modality": "image"},
                "label": {"modality": "label"},
                "group": {"modality": "id"},
            },
            "label": "label",
            "warnings": warnings,
        }

    def data_fingerprint(self, ctx: StepContext) -> str | None:
        """A digest of the image files (names, sizes, times) and of the manifest."""
        root = self._root(ctx)
        manifest = self._manifest(ctx)
        if manifest is not None:
            items = self._manifest_items(root, manifest)
            files = [Path(item[1]) for item in items if item[0] == "file"]
            files = [f for f in files if f.exists()] + [manifest]
        else:
            files = [p for f in self._class_folders(root) for p in self._folder_files(f)]
            files = [f for f in files if f.exists()]
        folders = "|".join(f.name for f in self._class_folders(root))
        return files_digest(files) + ":" + folders
