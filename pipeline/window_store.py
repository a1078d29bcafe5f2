"""A durable store of a stream's windows, kept across runs: what a broker stream acknowledges.

A stream whose ``store(ctx)`` names a folder (a broker stream does) has its windows written
there instead of into the run's temporary step folder, so what was acknowledged survives a
``kill -9`` of the process that wrote it. Layout::

    <store>/parts/<window>/<part>.json          manifest: the part's sources, count, summary
    <store>/examples/<window>/part-<part>.tfrecord.gz
    <store>/rejected/<window>-<part>.jsonl
    <store>/statistics/<window>.pb              (the window checks, when the stream has them)

A *part* is what one run wrote of one window: its id is a digest of the sorted ``__source__``
of its records (message ids), so writing the same messages twice writes the same file. The
commit point of a part is its manifest: the data file is renamed into place first, then the
manifest, and only then is the part acknowledged to the broker. On opening, data files without
a manifest (a kill between the two renames) are removed, and ``stored_sources(window)`` lists
every source already committed in a window, so a message redelivered after a restart is
acknowledged again but never stored twice: each message is counted exactly once, as examples
or as rejected. (A stream whose records come back in another window after a restart, a folder
watch stamping files with their arrival, checks every window: ``sources_across_windows``.)
One process writes a store at a time (an exclusive ``flock`` on ``.lock``).

Nothing here imports Beam or TensorFlow.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from .atomic import atomic_write, write_json
from .errors import PipelineError

PARTS_DIR = "parts"
EXAMPLES = "examples"
REJECTED = "rejected"
LOCK_FILE = ".lock"
DECLARED_FILE = "declared.json"


def part_id(sources: Iterable[str]) -> str:
    """The id of a part holding records with these sources (16 hex digits)."""
    digest = hashlib.sha256()
    for source in sorted(sources):
        digest.update(source.encode("utf-8", "surrogateescape") + b"\n")
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class Part:
    """One committed part of a window (its manifest)."""

    window: str
    part: str
    kind: str  # "examples" or "rejected"
    count: int
    sources: tuple[str, ...]
    info: dict[str, Any]

    @property
    def key(self) -> str:
        """``<window>/<part>``: how cycles and lineage name a part."""
        return f"{self.window}/{self.part}"


class WindowStore:
    """The store at ``root`` (see the module docstring)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    # --- writing (one process at a time) ---------------------------------------------------------

    def lock(self) -> IO[str]:
        """Take the store's exclusive lock (held while the returned handle stays open) and
        remove data files an interrupted writer left without a manifest."""
        self.root.mkdir(parents=True, exist_ok=True)
        handle = open(self.root / LOCK_FILE, "w", encoding="utf-8")  # noqa: SIM115 - kept open
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise PipelineError(
                f"another process is writing the stream store {self.root} (its lock "
                f"{self.root / LOCK_FILE} is held); stop it first"
            ) from None
        self.remove_orphans()
        return handle

    def remove_orphans(self) -> list[Path]:
        """Remove data files without a committed manifest; return them."""
        committed = {(p.window, p.part) for p in self.parts()}
        removed = []
        for path in (self.root / EXAMPLES).glob("*/part-*"):
            part = path.name.removeprefix("part-").split(".", 1)[0]
            if (path.parent.name, part) not in committed:
                path.unlink()
                removed.append(path)
        for path in (self.root / REJECTED).glob("*.jsonl"):
            window, _, part = path.stem.rpartition("-")
            if (window, part) not in committed:
                path.unlink()
                removed.append(path)
        return removed

    def stored_sources(self, window: str | None) -> set[str]:
        """Every source already committed in ``window`` (examples and rejected); in any window
        when ``window`` is None."""
        return {s for p in self.parts(window) for s in p.sources}

    def examples_path(self, window: str, part: str) -> Path:
        """Where a part's examples go."""
        return self.root / EXAMPLES / window / f"part-{part}.tfrecord.gz"

    def rejected_path(self, window: str, part: str) -> Path:
        """Where a part's rejected records go."""
        return self.root / REJECTED / f"{window}-{part}.jsonl"

    def write_rejected(
        self, window: str, entries: list[dict[str, str]], anywhere: bool = False
    ) -> Part | None:
        """Commit a window's rejected records (sources already stored in the window, or in any
        window when ``anywhere``, are skipped)."""
        stored = self.stored_sources(None if anywhere else window)
        entries = [e for e in entries if e["source"] not in stored]
        if not entries:
            return None
        part = part_id(e["source"] for e in entries)
        lines = sorted(json.dumps(e, sort_keys=True, ensure_ascii=False) for e in entries)
        atomic_write(self.rejected_path(window, part), "".join(f"{x}\n" for x in lines))
        return self.commit(window, part, REJECTED, [e["source"] for e in entries], {})

    def commit(
        self, window: str, part: str, kind: str, sources: list[str], info: dict[str, Any]
    ) -> Part:
        """Write a part's manifest (its data file must be in place already)."""
        ordered = sorted(sources)
        entry = {"kind": kind, "count": len(sources), "sources": ordered, **info}
        write_json(self.root / PARTS_DIR / window / f"{part}.json", entry, ensure_ascii=False)
        return Part(window, part, kind, len(sources), tuple(ordered), info)

    def declare(self, declared: dict[str, Any]) -> None:
        """Keep what the stream declares about its features (for steps reading the store)."""
        write_json(self.root / DECLARED_FILE, declared, indent=2, ensure_ascii=False)

    # --- reading ---------------------------------------------------------------------------------

    def declared(self) -> dict[str, Any]:
        """What the stream declared about its features (``declare``)."""
        path = self.root / DECLARED_FILE
        if not path.is_file():
            return {"features": {}, "label": None, "warnings": []}
        return json.loads(path.read_text(encoding="utf-8"))

    def windows(self) -> list[str]:
        """Windows with at least one committed part, in time order."""
        folder = self.root / PARTS_DIR
        return sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []

    def parts(self, window: str | None = None) -> list[Part]:
        """The committed parts (of one window, or of all), in window then part order."""
        names = [window] if window is not None else self.windows()
        out = []
        for name in names:
            for path in sorted((self.root / PARTS_DIR / name).glob("*.json")):
                data = json.loads(path.read_text(encoding="utf-8"))
                info = {k: v for k, v in data.items() if k not in ("kind", "count", "sources")}
                out.append(
                    Part(name, path.stem, data["kind"], data["count"], tuple(data["sources"]), info)
                )
        return out

    def counts(self) -> dict[str, int]:
        """``{"read", "written", "rejected"}`` over every committed part: each message once."""
        written = rejected = 0
        for part in self.parts():
            if part.kind == EXAMPLES:
                written += part.count
            else:
                rejected += part.count
        return {"read": written + rejected, "written": written, "rejected": rejected}


def link_file(source: Path, target: Path) -> None:
    """Hard-link ``source`` to ``target`` (a copy where links fail), creating folders."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
    except OSError:
        import shutil

        shutil.copy2(source, target)
