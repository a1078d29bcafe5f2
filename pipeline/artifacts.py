"""Runs and artifacts on disk: ``runs/<pipeline>/<run-id>/<step>/`` with ``meta.json`` each."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .atomic import write_json
from .errors import PipelineError, SpecError, closest
from .processes import pid_alive

META_FILE = "meta.json"
RUN_FILE = "run.json"
ENV_RUNS_DIR = "PIPELINE_RUNS_DIR"


def default_runs_dir() -> Path:
    """``$PIPELINE_RUNS_DIR`` or ``./runs``."""
    return Path(os.environ.get(ENV_RUNS_DIR, "runs"))


def read_json(path: Path) -> dict[str, Any]:
    """Read a JSON file written by the framework."""
    return json.loads(path.read_text(encoding="utf-8"))


def write_json_atomic(path: Path, data: Any) -> None:
    """Write indented JSON so that readers never see half a file (``beamline.atomic``)."""
    write_json(path, data, indent=2, default=str)


def _folder_json(folder: str | Path, name: str, what: str) -> dict[str, Any]:
    path = Path(folder) / name
    if not path.is_file():
        raise PipelineError(f"{folder}: not {what} (no {name})")
    return read_json(path)


@dataclass
class Artifact:
    """The output folder of one completed step and its ``meta.json``."""

    path: Path
    meta: dict[str, Any]

    @classmethod
    def open(cls, path: str | Path) -> Artifact:
        """Open a completed step folder."""
        return cls(Path(path), _folder_json(path, META_FILE, "a completed step"))

    @property
    def step(self) -> str:
        """The step that produced this artifact."""
        return str(self.meta.get("step", self.path.name))

    @property
    def component(self) -> str:
        """The component that produced this artifact."""
        return str(self.meta.get("component", ""))

    @property
    def fingerprint(self) -> str:
        """The step's fingerprint: equal fingerprints mean equal work."""
        return str(self.meta.get("fingerprint", ""))

    @property
    def counts(self) -> dict[str, int]:
        """Record counts (``read``, ``written``, ``rejected``, ...)."""
        return dict(self.meta.get("counts", {}))

    @property
    def metrics(self) -> dict[str, float]:
        """Metrics the step reported."""
        return dict(self.meta.get("metrics", {}))

    def file(self, *parts: str) -> Path:
        """A path inside the artifact."""
        return self.path.joinpath(*parts)


@dataclass
class Run:
    """One run of a pipeline: its folder, its ``run.json`` and its step artifacts."""

    path: Path
    info: dict[str, Any]

    @classmethod
    def open(cls, path: str | Path) -> Run:
        """Open a run folder."""
        return cls(Path(path), _folder_json(path, RUN_FILE, "a run folder"))

    @property
    def run_id(self) -> str:
        """The run's id (its folder name)."""
        return self.path.name

    @property
    def pipeline(self) -> str:
        """The pipeline's name."""
        return str(self.info.get("pipeline", self.path.parent.name))

    @property
    def status(self) -> str:
        """``running``, ``succeeded``, ``failed`` or ``interrupted``."""
        status = str(self.info.get("status", "unknown"))
        if status == "running" and not pid_alive(self.info.get("pid")):
            return "interrupted"
        return status

    def steps(self) -> list[str]:
        """Names of the completed steps, in run order."""
        order = self.info.get("steps", [])
        done = [s for s in order if (self.path / s / META_FILE).is_file()]
        return done

    def artifact(self, step: str) -> Artifact:
        """The artifact of a completed step."""
        path = self.path / step
        if not (path / META_FILE).is_file():
            done = ", ".join(self.steps()) or "none"
            raise PipelineError(
                f"run {self.pipeline}/{self.run_id} has no completed step '{step}' "
                f"(completed: {done})"
            )
        return Artifact.open(path)

    def update(self, **fields: Any) -> None:
        """Update ``run.json``."""
        self.info.update(fields)
        write_json_atomic(self.path / RUN_FILE, self.info)


def list_runs(runs_dir: str | Path | None = None, pipeline: str | None = None) -> list[Run]:
    """Every run under ``runs_dir`` (oldest first), optionally of one pipeline only."""
    root = Path(runs_dir) if runs_dir is not None else default_runs_dir()
    if not root.is_dir():
        return []
    pipelines = [root / pipeline] if pipeline else sorted(p for p in root.iterdir() if p.is_dir())
    runs = []
    for pipeline_dir in pipelines:
        if not pipeline_dir.is_dir():
            continue
        for run_dir in sorted(pipeline_dir.iterdir()):
            if (run_dir / RUN_FILE).is_file():
                runs.append(Run.open(run_dir))
    return sorted(runs, key=lambda r: (str(r.info.get("started", "")), r.run_id))


def open_run(ref: str | Path, runs_dir: str | Path | None = None) -> Run:
    """Open a run by folder path, ``pipeline/run-id``, run id, or pipeline name (its latest run)."""
    candidate = Path(ref)
    if (candidate / RUN_FILE).is_file():
        return Run.open(candidate)
    root = Path(runs_dir) if runs_dir is not None else default_runs_dir()
    if (root / candidate / RUN_FILE).is_file():
        return Run.open(root / candidate)
    runs = list_runs(root)
    by_id = [r for r in runs if r.run_id == str(ref)]
    if by_id:
        return by_id[-1]
    of_pipeline = [r for r in runs if r.pipeline == str(ref)]
    if of_pipeline:
        return of_pipeline[-1]
    names = sorted({r.pipeline for r in runs} | {f"{r.pipeline}/{r.run_id}" for r in runs})
    raise SpecError(
        f"no run '{ref}' under {root}{closest(str(ref), names)} (use a run folder, "
        f"PIPELINE/RUN_ID, a run id or a pipeline name; 'pipeline runs' lists them)"
    )
