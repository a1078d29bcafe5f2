"""Atomic file writes: a file is either absent, its old content, or its whole new content.

Every artifact file, shard and work file of the framework is written through ``atomic_path``:
the content goes to a hidden temporary file beside the target, which is renamed over the target
once complete (``os.replace``, atomic on POSIX and Windows). A reader never sees a half-written
file, and a killed step leaves only a hidden ``.<name>.<id>.tmp`` behind, which no listing of
the framework picks up.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


@contextmanager
def atomic_path(path: str | Path, *, keep_suffix: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; when the block ends without error, rename it to
    ``path`` (creating the parent folder first); when it raises, remove it.

    With ``keep_suffix`` the temporary name ends with ``path``'s own suffix, for writers that
    choose the format by it (Keras's ``model.save``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tag = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
    name = f".tmp-{tag}-{path.name}" if keep_suffix else f".{path.name}.{tag}.tmp"
    tmp = path.with_name(name)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write(path: str | Path, data: bytes | str, *, encoding: str = "utf-8") -> None:
    """Write ``data`` (bytes, or text in ``encoding``) to ``path`` atomically."""
    payload = data.encode(encoding) if isinstance(data, str) else data
    with atomic_path(path) as tmp:
        tmp.write_bytes(payload)


def write_json(path: str | Path, data: Any, *, indent: int | None = None, **options: Any) -> None:
    """Write ``data`` as JSON (keys sorted; with ``indent``, a final newline) atomically.

    ``options`` go to ``json.dumps`` (``default``, ``ensure_ascii``)."""
    text = json.dumps(data, indent=indent, sort_keys=True, **options)
    atomic_write(path, text + "\n" if indent is not None else text)
