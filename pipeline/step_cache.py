"""Finding reusable step artifacts: by fingerprint, or the latest earlier one of a step.

``runs/<pipeline>/.cache/<fingerprint>`` holds the path (relative to the pipeline's runs folder)
of the last completed artifact with that fingerprint; run ids sort in start order, so the
latest earlier artifact of a step is found by trying run folders newest first by name.
"""

from __future__ import annotations

from pathlib import Path

from .artifacts import META_FILE, RUN_FILE, Artifact
from .atomic import atomic_write

CACHE_DIR = ".cache"


def cached_artifact(pipeline_root: Path, fingerprint: str) -> Artifact | None:
    """The completed artifact with ``fingerprint``, or None."""
    pointer = pipeline_root / CACHE_DIR / fingerprint
    if not pointer.is_file():
        return None
    path = pipeline_root / pointer.read_text(encoding="utf-8").strip()
    if not (path / META_FILE).is_file():
        return None
    artifact = Artifact.open(path)
    return artifact if artifact.fingerprint == fingerprint else None


def remember(pipeline_root: Path, fingerprint: str, path: Path) -> None:
    """Point ``fingerprint`` at the completed artifact ``path`` (atomically)."""
    atomic_write(pipeline_root / CACHE_DIR / fingerprint, str(path.relative_to(pipeline_root)))


def previous_artifact(pipeline_root: Path, step: str, before: str | None = None) -> Artifact | None:
    """Step ``step`` in the latest run of this pipeline (started before run id ``before``, when
    given) that completed it; only that step's ``meta.json`` is read."""
    for path in reversed(run_folders(pipeline_root)):
        if (before is not None and path.name >= before) or not (path / RUN_FILE).is_file():
            continue
        if (path / step / META_FILE).is_file():
            return Artifact.open(path / step)
    return None


def run_folders(pipeline_root: Path) -> list[Path]:
    """The run folders of a pipeline (not ``.cache``), sorted by run id: in start order."""
    if not pipeline_root.is_dir():
        return []
    return sorted(p for p in pipeline_root.iterdir() if not p.name.startswith("."))
