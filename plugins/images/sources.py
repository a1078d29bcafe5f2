"""The ``image_folder`` source: a folder per class, or a manifest CSV of path,label[,group]."""

from __future__ import annotations

from typing import Any

from beamline import param
from beamline.files import read_listed_file
from beamline.folder_source import ClassFolderSource

DEFAULT_EXTENSIONS = [".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp"]


def _read_image(item: tuple[str, ...]) -> Any:
    """Read one listed item into a record (or a ``Reject``)."""
    yield from read_listed_file(item, "image")


class ImageFolder(ClassFolderSource):
    """Images from a folder with one sub-folder per class (the folder name is the label).

    With ``manifest``, a CSV with a header ``path,label`` (and optionally ``group``) lists the
    images instead; its paths are relative to ``root``. Records have the features ``image``
    (the file's bytes), ``label`` (the class name) and, from a manifest, ``group``. Add
    ``decode_image`` to ``transforms`` to check that every file decodes. An empty class folder is
    reported as a warning."""

    name = "image_folder"
    file_kind = "image"
    reader = staticmethod(_read_image)
    #: ``image`` (modality image), ``label`` (the class), ``group`` (an id).
    record_features = {
        "image": {"modality": "image"},
        "label": {"modality": "label"},
        "group": {"modality": "id"},
    }
    extensions: list[str] = param(DEFAULT_EXTENSIONS, help="file extensions read (any case)")

    def listing_options(self) -> dict[str, Any]:
        """Keep broken links and listed non-files: reading them reports a reject."""
        return {"keep_broken": True}
