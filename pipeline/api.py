"""The Python face of the CLI, for notebooks and scripts."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from .artifacts import Run, list_runs
from .artifacts import open_run as _open_run
from .executor import RunResult, execute
from .plugins import Plugins, load_plugins
from .progress import Reporter
from .registry import ComponentInfo
from .spec import PipelineSpec, load_spec


def load(
    pipeline_file: str | Path,
    overrides: Iterable[str] = (),
    *,
    runner: str | None = None,
    plugins: Iterable[str] = (),
    disable_plugins: Iterable[str] = (),
) -> tuple[PipelineSpec, Plugins]:
    """Load plugins and check a pipeline file; return the spec and the loaded plugins."""
    loaded = load_plugins(plugins, disable_plugins)
    return load_spec(pipeline_file, loaded, overrides, runner), loaded


def run(
    pipeline_file: str | Path,
    overrides: Iterable[str] | dict[str, object] = (),
    *,
    runner: str | None = None,
    force: bool | Iterable[str] = False,
    runs_dir: str | Path | None = None,
    plugins: Iterable[str] = (),
    disable_plugins: Iterable[str] = (),
    reporter: Reporter | None = None,
) -> RunResult:
    """Run a pipeline file, like ``pipeline run``; overrides as ``["a.b=c"]`` or ``{"a.b": c}``."""
    if isinstance(overrides, dict):
        import yaml

        overrides = [
            f"{k}={yaml.safe_dump(v, default_flow_style=True).strip().removesuffix('...').strip()}"
            for k, v in overrides.items()
        ]
    spec, loaded = load(
        pipeline_file, overrides, runner=runner, plugins=plugins, disable_plugins=disable_plugins
    )
    return execute(spec, loaded, runs_dir=runs_dir, force=force, reporter=reporter)


def components(
    plugins: Iterable[str] = (), disable_plugins: Iterable[str] = ()
) -> list[ComponentInfo]:
    """Every registered component, like ``pipeline plugins``."""
    return load_plugins(plugins, disable_plugins).registry.all()


def runs(pipeline: str | None = None, runs_dir: str | Path | None = None) -> list[Run]:
    """Every run (oldest first), like ``pipeline runs``."""
    return list_runs(runs_dir, pipeline)


def open_run(ref: str | Path, runs_dir: str | Path | None = None) -> Run:
    """Open a run by folder, ``pipeline/run-id``, run id or pipeline name (latest run)."""
    return _open_run(ref, runs_dir)
