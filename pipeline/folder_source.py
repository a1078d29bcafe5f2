"""``ClassFolderSource``: the base of sources that read one example per file from a folder of
class sub-folders (the folder name is the label) or from a manifest CSV of path,label[,group].

It lists the files with ``beamline.files.FileListing`` (once per instance) and reads them in Beam
with the subclass's reader. The parameters ``root`` and ``manifest`` are declared here (they come
first in ``pipeline describe``, after the kind's own); a subclass declares ``extensions`` and any
other parameter, and sets what is its own: the kind of file, the reader, the features and any
listing options."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from .component_base import param
from .files import Entry, FileListing, shared_listing
from .ingest import create_source
from .kinds import Source

if TYPE_CHECKING:
    from .context import StepContext


class ClassFolderSource(Source):
    """Files from a folder with one sub-folder per class, or from a manifest (a base class).

    Subclasses set ``file_kind`` (the word in messages: ``no audio files ... found``),
    ``reader`` (a module-level function reading one listed item, as ``staticmethod(fn)``) and
    ``record_features`` (the features ``feature_info`` says the records hold, ``label`` among
    them), and declare the parameter ``extensions`` (with their own default)."""

    file_kind: ClassVar[str] = ""
    reader: ClassVar[Callable[[tuple[str, ...]], Iterable[Any]]]
    record_features: ClassVar[dict[str, dict[str, str]]] = {}
    root: str = param(
        help="folder of class sub-folders (relative to the pipeline file)", path="folder"
    )
    manifest: str = param(
        "",
        help="CSV of path,label[,group] relative to root; '' = sub-folders",
        path="file",
        under="root",
    )

    def listing_options(self) -> dict[str, Any]:
        """Keyword arguments of ``FileListing`` beyond the folder, extensions and manifest."""
        return {}

    def item(self, root: Path, entry: Entry) -> tuple[str, ...]:
        """The item the reader gets for one listed entry (``root`` is the listing's folder)."""
        return entry.item()

    def _listing(self, ctx: StepContext) -> FileListing:
        root = ctx.resolve(self.root)
        listing = FileListing(
            self.name,
            root,
            tuple(self.extensions),
            manifest=root / self.manifest if self.manifest else None,
            **self.listing_options(),
        )
        return shared_listing(self, listing)

    def location(self, ctx: StepContext) -> str:
        """The folder (or manifest) this source reads."""
        return self._listing(ctx).location()

    def read(self, ctx: StepContext) -> Any:
        """List the files (in the driver) and read them in Beam."""
        listing = self._listing(ctx)
        items = [self.item(listing.root, entry) for entry in listing.entries()]
        if not items:
            raise listing.nothing_found(self.file_kind)
        return create_source(self.name, items, type(self).reader)

    def empty_classes(self, ctx: StepContext) -> list[str]:
        """Class folders with no wanted file (only without a manifest)."""
        return self._listing(ctx).empty_classes()

    def feature_info(self, ctx: StepContext) -> dict[str, Any]:
        """``record_features`` with ``label`` as the label, and a warning per empty class."""
        warnings = self._listing(ctx).empty_class_warnings(self.file_kind)
        features = copy.deepcopy(self.record_features)
        return {"features": features, "label": "label", "warnings": warnings}

    def data_fingerprint(self, ctx: StepContext) -> str | None:
        """A digest of the listed files (names, sizes, times) and of the manifest."""
        return self._listing(ctx).data_fingerprint()
