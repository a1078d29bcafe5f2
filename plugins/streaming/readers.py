"""Per-file record readers for the file streams: the default one and ``module:function`` ones.

A reader turns one arrived file into records (dicts with ``__source__``), yielding or raising
``beamline.ingest.Reject`` for a file it cannot read, exactly like a batch source's reader; the
records then go through the same transforms (``decode_image``, ``resize_image``, ...)."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from beamline import SpecError
from beamline.ingest import SOURCE_KEY, Reject


def read_labelled_file(path: str, root: str, feature: str, label: str) -> Iterator[Any]:
    """One record per file: ``feature`` holds its bytes; ``label`` (when not '') the name of
    the first sub-folder of ``root`` that holds it, like ``image_folder``'s class folders.

    A file directly in ``root`` has no label value; an unreadable file is rejected."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        yield Reject(f"unreadable file: {exc.strerror or exc}", path)
        return
    record: dict[str, Any] = {SOURCE_KEY: path, feature: data}
    if label:
        parts = Path(path).relative_to(root).parts
        if len(parts) > 1:
            record[label] = parts[0]
    yield record


def load_reader(spec: str) -> Callable[[str], Iterable[Any]]:
    """The function named ``module:function`` (or ``module.function``); a ``SpecError`` if absent.

    It is called with a file's path and yields records or ``Reject``."""
    module_name, sep, name = spec.partition(":")
    if not sep:
        module_name, _, name = spec.rpartition(".")
    if not module_name or not name:
        raise SpecError(f"reader: expected 'module:function', got {spec!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise SpecError(f"reader {spec!r}: cannot import module '{module_name}': {exc}") from exc
    fn = getattr(module, name, None)
    if not callable(fn):
        raise SpecError(f"reader {spec!r}: module '{module_name}' has no function '{name}'")
    return fn
