"""The Python face of the CLI, for notebooks and scripts."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, TypedDict, Unpack

from .artifacts import Run, list_runs
from .artifacts import open_run as _open_run
from .errors import closest
from .executor import RunResult, execute
from .planner import StepExplanation
from .planner import explain as plan_explain
from .plugins import Plugins, load_plugins
from .progress import Reporter
from .quiet import quiet
from .registry import ComponentInfo
from .spec import PipelineSpec, load_spec

if TYPE_CHECKING:
    from .continuous import LoopResult


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


class RunOptions(TypedDict, total=False):
    """The options ``run`` and ``explain`` share (the CLI's ``pipeline run`` options)."""

    runner: str | None  # the Beam runner, overriding the file's ``runner.name``
    force: bool | Iterable[str]  # rerun every step (True) or the named ones
    runs_dir: str | Path | None  # where runs are stored (default $PIPELINE_RUNS_DIR or ./runs)
    plugins: Iterable[str]  # extra plugin modules
    disable_plugins: Iterable[str]  # plugins not to load
    only: str | None  # run this step alone, its inputs borrowed from earlier runs
    until: str | None  # run the file's steps up to and including this one


def run(
    pipeline_file: str | Path,
    overrides: Iterable[str] | dict[str, object] = (),
    *,
    reporter: Reporter | None = None,
    verbose: bool = False,
    **options: Unpack[RunOptions],
) -> RunResult | LoopResult:
    """Run a pipeline file, like ``pipeline run``; overrides as ``["a.b=c"]`` or ``{"a.b": c}``.

    ``options`` are those of ``RunOptions``: ``only="train"`` runs that step alone, its inputs
    borrowed from earlier runs; ``until="train"`` runs the file's steps up to and including it.

    Quiet by default, as the CLI: TensorFlow's and Beam's log lines are hidden for the rest of
    the process (see ``beamline.quiet``); ``verbose=True`` shows them. Raises ``SpecError`` for
    bad input (nothing runs, no run folder is left), ``StepFailed`` when a step fails and
    ``GateFailed`` when the validation gate stops the run, each with the CLI's ``exit_code``.
    A file with ``continuous:`` runs its loop instead and returns its ``LoopResult``."""
    quiet(verbose)
    spec, loaded = _load_with(pipeline_file, overrides, options)
    if spec.continuous is not None and not (options.get("only") or options.get("until")):
        from .continuous import run_loop  # a continuous file: the loop, its LoopResult

        return run_loop(spec, loaded, runs_dir=options.get("runs_dir"), reporter=reporter)
    return execute(
        spec,
        loaded,
        runs_dir=options.get("runs_dir"),
        force=options.get("force", False),
        reporter=reporter,
        only=options.get("only"),
        until=options.get("until"),
    )


def explain(
    pipeline_file: str | Path,
    overrides: Iterable[str] | dict[str, object] = (),
    **options: Unpack[RunOptions],
) -> list[StepExplanation]:
    """What ``run`` with the same arguments would do with each step, and why, like ``pipeline run
    --explain``: nothing runs and no run folder is made."""
    spec, _ = _load_with(pipeline_file, overrides, options)
    force = options.get("force", False)
    return plan_explain(
        spec,
        runs_dir=options.get("runs_dir"),
        force=force if isinstance(force, bool) else list(force),
        only=options.get("only"),
        until=options.get("until"),
    )


def _load_with(
    pipeline_file: str | Path, overrides: Iterable[str] | dict[str, object], options: RunOptions
) -> tuple[PipelineSpec, Plugins]:
    known = RunOptions.__annotations__
    for name in options:
        if name not in known:  # **options must not swallow a misspelt keyword
            raise TypeError(f"unexpected keyword argument '{name}'{closest(name, known)}")
    return load(
        pipeline_file,
        _override_list(overrides),
        runner=options.get("runner"),
        plugins=options.get("plugins", ()),
        disable_plugins=options.get("disable_plugins", ()),
    )


def _override_list(overrides: Iterable[str] | dict[str, object]) -> list[str]:
    if not isinstance(overrides, dict):
        return list(overrides)
    import yaml

    return [
        f"{k}={yaml.safe_dump(v, default_flow_style=True).strip().removesuffix('...').strip()}"
        for k, v in overrides.items()
    ]


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
