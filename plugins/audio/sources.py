"""The ``audio_folder`` source: a folder per class, or a manifest CSV of path,label[,group]."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import Any

from beamline import ParamError, param
from beamline.files import Entry, LabelledFile, read_listed_file
from beamline.folder_source import ClassFolderSource

DEFAULT_EXTENSIONS = [".wav"]


def read_audio_file(item: tuple[str, ...]) -> Any:
    """Read one listed item ``("file", path, label, group, path_id)`` into a record (or a Reject).

    ``("reject", where, reason)`` items (bad manifest rows) become rejected records."""
    yield from read_listed_file(item, "audio")


class AudioFolder(ClassFolderSource):
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
    file_kind = "audio"
    reader = staticmethod(read_audio_file)
    #: ``audio`` (modality audio), ``label``, ``group`` and ``path`` (ids).
    record_features = {
        "audio": {"modality": "audio", "format": "wav"},
        "label": {"modality": "label"},
        "group": {"modality": "id"},
        "path": {"modality": "id"},
    }
    group_column: str = param("group", help="manifest column read into the 'group' feature")
    group_pattern: str = param(
        "", help="regex on the file name whose first group is the 'group' feature (no manifest)"
    )
    path_feature: bool = param(False, help="add the file path relative to root as feature 'path'")
    extensions: list[str] = param(DEFAULT_EXTENSIONS, help="file extensions read (any case)")

    def check(self) -> None:
        """Check ``group_pattern`` when the pipeline file is read."""
        super().check()
        if self.group_pattern:
            try:
                pattern = re.compile(self.group_pattern)
            except re.error as exc:
                raise ParamError("group_pattern", str(exc)) from None
            if pattern.groups < 1:
                raise ParamError("group_pattern", "needs a (capturing group)")

    def listing_options(self) -> dict[str, Any]:
        """The manifest's group column; an empty manifest's header error says "no rows"."""
        return {"group_column": self.group_column, "no_header": "no rows"}

    def _group_of(self, path: Path) -> str:
        if not self.group_pattern:
            return ""
        found = re.search(self.group_pattern, path.name)
        return found.group(1) if found else ""

    def item(self, root: Path, entry: Entry) -> tuple[str, ...]:
        """A listed clip with its group (from ``group_pattern`` where the manifest gives none)
        and, with ``path_feature``, its path relative to ``root``."""
        if not isinstance(entry, LabelledFile):
            return entry.item()
        path_id = entry.path.relative_to(root).as_posix() if self.path_feature else ""
        return replace(entry, group=entry.group or self._group_of(entry.path)).item(path_id)
