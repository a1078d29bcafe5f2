"""Versioned model folders: ``ROOT/NAME/<version>/``, the layout TensorFlow Serving loads.

A model folder holds one subfolder per published version, named by an increasing integer, each
a complete SavedModel (``saved_model.pb``, ``variables/``, ``assets/``) plus the export's
``export.json`` and ``published.json`` (where the version came from and its content digest)::

    models/digits/1/saved_model.pb
    models/digits/1/variables/...
    models/digits/2/...

``tensorflow_model_server --model_base_path=models/digits`` serves it as it is, and so does
``pipeline serve models/digits``. A version appears whole or not at all: it is copied to a
hidden ``.<version>.<pid>-<id>.tmp`` folder beside the others, then renamed into place (a
rename is atomic on POSIX), so a watcher never sees a half-written version and a killed
publisher leaves only a hidden folder, which both servers ignore and the next publish removes.
Publishing the same content twice (a restarted loop that had not recorded its publish) returns
the version already there instead of adding a copy.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from .errors import DataNotFound, PipelineError
from .processes import pid_alive

SAVED_MODEL_FILE = "saved_model.pb"
EXPORT_INFO = "export.json"
PUBLISH_INFO = "published.json"


@dataclass(frozen=True)
class Published:
    """One published version: its number, its folder, and whether it was already there."""

    name: str
    version: int
    path: Path
    reused: bool = False


def saved_model_dir(export: str | Path) -> Path:
    """The SavedModel folder of an exporter artifact (``EXPORT/saved_model/``) or of a folder
    that is itself a SavedModel (a published version, say)."""
    export = Path(export)
    for folder in (export / "saved_model", export):
        if (folder / SAVED_MODEL_FILE).is_file():
            return folder
    raise DataNotFound(
        f"{export}: no SavedModel here (expected {SAVED_MODEL_FILE} or "
        f"saved_model/{SAVED_MODEL_FILE}; pass the folder of an exporter step)"
    )


def export_info(export: str | Path) -> dict:
    """The ``export.json`` of an export or a published version (``{}`` when there is none)."""
    folder = saved_model_dir(export)
    for path in (folder / EXPORT_INFO, folder.parent / EXPORT_INFO):
        if path.is_file():
            return json.loads(path.read_text(encoding="utf-8"))
    return {}


def versions(base: str | Path) -> list[int]:
    """The complete versions in model folder ``base`` (``ROOT/NAME``), oldest first."""
    base = Path(base)
    if not base.is_dir():
        return []
    found = []
    for child in base.iterdir():
        if child.name.isdigit() and (child / SAVED_MODEL_FILE).is_file():
            found.append(int(child.name))
    return sorted(found)


def latest_version(base: str | Path) -> int | None:
    """The newest version in ``base``, or ``None`` when it holds none."""
    found = versions(base)
    return found[-1] if found else None


def is_model_folder(path: str | Path) -> bool:
    """Whether ``path`` is a model folder (``ROOT/NAME`` with numbered versions) rather than an
    export: it has no SavedModel of its own, and at least one numbered version."""
    path = Path(path)
    has_own = (path / SAVED_MODEL_FILE).is_file() or (
        path / "saved_model" / SAVED_MODEL_FILE
    ).is_file()
    return not has_own and bool(versions(path))


def content_digest(folder: str | Path) -> str:
    """sha256 over the relative paths and bytes of every file of a SavedModel folder."""
    folder = Path(folder)
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(path.relative_to(folder).as_posix().encode("utf-8") + b"\0")
        with path.open("rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
        digest.update(b"\0")
    return digest.hexdigest()


def publish(
    export: str | Path,
    root: str | Path,
    name: str,
    *,
    keep: int | None = None,
    source: str = "",
) -> Published:
    """Publish the SavedModel of ``export`` as the next version of ``ROOT/NAME``.

    The version is one more than the newest there (1 for an empty folder). Content already
    published (same digest) returns that version with ``reused=True``. With ``keep``, only the
    newest ``keep`` versions stay (older ones are renamed to a hidden name, then removed).
    ``source`` is recorded in ``published.json`` (default: the export's path), for lineage."""
    if not name or "/" in name or name.startswith("."):
        raise PipelineError(f"model name {name!r}: expected a plain folder name such as 'digits'")
    if keep is not None and keep < 1:
        raise PipelineError(f"keep={keep}: expected at least 1 version to keep")
    model_dir = saved_model_dir(export)
    info = export_info(export)
    base = Path(root) / name
    base.mkdir(parents=True, exist_ok=True)
    _remove_abandoned(base)
    digest = content_digest(model_dir)
    for version in reversed(versions(base)):
        if _digest_of(base / str(version)) == digest:
            return Published(name, version, base / str(version), reused=True)

    tmp = base / f".{uuid.uuid4().hex[:8]}.{os.getpid()}.tmp"
    try:
        shutil.copytree(model_dir, tmp)
        if info:
            (tmp / EXPORT_INFO).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
        record = {
            "digest": digest,
            "source": source or str(Path(export).resolve()),
            "time": time.time(),
        }
        (tmp / PUBLISH_INFO).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
        version = (latest_version(base) or 0) + 1
        while True:
            target = base / str(version)
            try:
                if target.exists():  # a version folder left without its SavedModel
                    raise FileExistsError(errno.EEXIST, "exists", str(target))
                os.rename(tmp, target)
                break
            except OSError as exc:  # another publisher took this number first
                if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                    raise
                version += 1
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if keep is not None:
        prune(base, keep)
    return Published(name, version, target)


def prune(base: str | Path, keep: int) -> list[int]:
    """Remove all but the newest ``keep`` versions of ``base``; return the removed numbers.

    Each is first renamed to a hidden name, so no half-removed version is ever visible."""
    base = Path(base)
    removed = versions(base)[:-keep] if keep else versions(base)
    for version in removed:
        hidden = base / f".{uuid.uuid4().hex[:8]}.{os.getpid()}.removed"
        os.rename(base / str(version), hidden)
        shutil.rmtree(hidden, ignore_errors=True)
    return removed


def _digest_of(version_dir: Path) -> str | None:
    try:
        return json.loads((version_dir / PUBLISH_INFO).read_text(encoding="utf-8")).get("digest")
    except (OSError, ValueError):
        return None


def _remove_abandoned(base: Path) -> None:
    """Remove hidden work folders whose process is gone (a publisher killed mid-copy)."""
    for child in base.iterdir():
        parts = child.name.split(".")
        if not (child.name.startswith(".") and len(parts) == 4 and parts[2].isdigit()):
            continue
        if parts[3] not in ("tmp", "removed") or pid_alive(int(parts[2])):
            continue
        shutil.rmtree(child, ignore_errors=True)
