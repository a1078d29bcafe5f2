"""The ``image_folder`` source: a folder per class, or a manifest CSV of path,label[,group]."""

from __future__ import annotations

from typing import Any

from beamline import Source, StepContext, param
from beamline.files import FileListing, read_listed_file, shared_listing
from beamline.ingest import create_source

DEFAULT_EXTENSIONS = [".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp"]


def _read_image(item: tuple[str, ...]) -> Any:
    """Read one listed item into a record (or a ``Reject``)."""
    yield from read_listed_file(item, "image")


class ImageFolder(Source):
    """Images from a folder with one sub-folder per class (the folder name is the label).

    With ``manifest``, a CSV with a header ``path,label`` (and optionally ``group``) lists the
    images instead; its paths are relative to ``root``. Records have the features ``image``
    (the file's bytes), ``label`` (the class name) and, from a manifest, ``group``. Add
    ``decode_image`` to ``transforms`` to check that every file decodes. An empty class folder is
    reported as a warning."""

    name = "image_folder"
    root: str = param(
        help="folder of class sub-folders (relative to the pipeline file)", path="folder"
    )
    manifest: str = param(
        "",
        help="CSV of path,label[,group] relative to root; '' = sub-folders",
        path="file",
        under="root",
    )
    extensions: list[str] = param(DEFAULT_EXTENSIONS, help="file extensions read (any case)")

    def location(self, ctx: StepContext) -> str:
        """The folder (or manifest) this source reads."""
        return self._listing(ctx).location()

    def _listing(self, ctx: StepContext) -> FileListing:
        root = ctx.resolve(self.root)
        listing = FileListing(
            self.name,
            root,
            tuple(self.extensions),
            manifest=root / self.manifest if self.manifest else None,
            keep_broken=True,
        )
        return shared_listing(self, listing)

    def read(self, ctx: StepContext) -> Any:
        """List the images (in the driver) and read them in Beam."""
        listing = self._listing(ctx)
        items = [entry.item() for entry in listing.entries()]
        if not items:
            raise listing.nothing_found("image")
        return create_source(self.name, items, _read_image)

    def empty_classes(self, ctx: StepContext) -> list[str]:
        """Class folders with no image file (only without a manifest)."""
        return self._listing(ctx).empty_classes()

    def feature_info(self, ctx: StepContext) -> dict[str, Any]:
        """Features: ``image`` (modality image), ``label`` (the class), ``group`` (an id)."""
        warnings = self._listing(ctx).empty_class_warnings("image")
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
        return self._listing(ctx).data_fingerprint()
