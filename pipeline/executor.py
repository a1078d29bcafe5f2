"""The step executor: fingerprint each step, reuse unchanged ones, run the rest atomically.

A run is a new folder ``runs/<pipeline>/<run-id>/``; each step writes into a temporary folder
under ``.partial/`` that is renamed to ``<step>/`` (with its ``meta.json``) once complete, so a
killed run leaves only complete steps behind.

A step's fingerprint (``beamline.fingerprint``) hashes its component's name, its parameters, the
source of every project module its code imports, the versions of the libraries that shape its
output, its data files and its inputs' fingerprints; ``meta.json`` records those parts. A step
whose fingerprint matches a completed step of an earlier run of the pipeline is reused: its folder
is hard-linked into the new run instead of rerun. ``beamline.planner`` tells, without running,
which steps would be reused and why the others would not.

``only=STEP`` runs that one step, borrowing its inputs' artifacts from earlier runs (the ones
with the current fingerprint, else the latest ones); ``until=STEP`` runs the file's steps up to
and including STEP.
"""

from __future__ import annotations

import os
import secrets
import shutil
import time
import traceback
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from . import __version__
from .artifacts import (
    META_FILE,
    RUN_FILE,
    Artifact,
    Run,
    default_runs_dir,
    write_json_atomic,
)
from .components import StepResult
from .context import StepContext
from .errors import AccountingError, PipelineError, SpecError, StepFailed
from .fingerprint import plain, step_fingerprint
from .planner import Selection, borrow, data_digest, plan_fingerprint, select_steps
from .plugins import Plugins
from .progress import Reporter, StepRecord
from .run_report import REPORT_FILE, write_run_report
from .spec import PipelineSpec, Step
from .step_cache import cached_artifact, previous_artifact, remember, run_folders
from .steps import run_step
from .tuning import PARAMS_FROM, tuned_step

PARTIAL_DIR = ".partial"


@dataclass
class RunResult:
    """A finished run and the record of each of its steps."""

    run: Run
    records: list[StepRecord]


def execute(
    spec: PipelineSpec,
    plugins: Plugins,
    *,
    runs_dir: str | Path | None = None,
    force: bool | Iterable[str] = False,
    reporter: Reporter | None = None,
    only: str | None = None,
    until: str | None = None,
) -> RunResult:
    """Run ``spec``'s steps in order into a new run folder and return the outcome.

    A step whose fingerprint matches a completed step of an earlier run of this pipeline is
    reused (hard-linked) instead of rerun, unless ``force`` is True or names it. ``only`` runs
    one step with its inputs borrowed from earlier runs (a ``SpecError`` names an input that no
    run completed); ``until`` runs the steps up to and including that one."""
    reporter = reporter or Reporter()
    pipeline_root = Path(runs_dir if runs_dir is not None else default_runs_dir()) / spec.name
    selection = select_steps(spec, only, until)
    borrowed = _borrow_inputs(spec, selection, pipeline_root)
    pipeline_root.mkdir(parents=True, exist_ok=True)
    _clean_interrupted_runs(pipeline_root)
    forced = set(spec.step_names) if force is True else set(force or ())
    run = _new_run(pipeline_root, spec, [*selection.borrowed, *selection.steps])
    reporter.run_started(run, [*selection.borrowed, *selection.steps])
    plugins.notify("before_pipeline_run", run=run)
    fingerprints: dict[str, str] = {}
    records: list[StepRecord] = []
    try:
        for name, artifact in borrowed.items():
            record = _link_borrowed(spec.step(name), artifact, run)
            fingerprints[name] = artifact.fingerprint
            records.append(record)
            reporter.step_finished(record)
            plugins.notify("after_step_run", run=run, step=spec.step(name), record=record)
        for step in (spec.step(name) for name in selection.steps):
            record = _run_step(step, spec, run, plugins, reporter, fingerprints, forced)
            records.append(record)
            reporter.step_finished(record)
            plugins.notify("after_step_run", run=run, step=step, record=record)
    except BaseException as exc:
        if _refused(exc, run, records):  # bad input before any step: leave no run folder
            shutil.rmtree(run.path, ignore_errors=True)
            reporter.run_finished(run, records, exc if isinstance(exc, Exception) else None)
            raise
        status = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
        run.update(status=status, finished=_now(), error=str(exc))
        write_run_report(run)
        reporter.run_finished(run, records, exc if isinstance(exc, Exception) else None)
        raise
    run.update(status="succeeded", finished=_now(), records=[r.as_dict() for r in records])
    write_run_report(run)
    reporter.run_finished(run, records, None)
    plugins.notify("after_pipeline_run", run=run, results=records)
    return RunResult(run, records)


def _run_step(
    step: Step,
    spec: PipelineSpec,
    run: Run,
    plugins: Plugins,
    reporter: Reporter,
    fingerprints: dict[str, str],
    forced: set[str],
) -> StepRecord:
    inputs = {param: run.artifact(upstream) for param, upstream in step.inputs.items()}
    step = tuned_step(step, inputs.get(PARAMS_FROM))  # a tune step's best values join the params
    component = step.component
    partial = run.path / PARTIAL_DIR / f"{step.name}-{secrets.token_hex(4)}"
    ctx = StepContext(
        step=step,
        spec=spec,
        run=run,
        output_dir=partial,
        inputs=inputs,
        reporter=reporter,
        previous=previous_artifact(run.path.parent, step.name, before=run.run_id),
    )
    try:
        digest = data_digest(step, spec, ctx)
    except PipelineError:
        raise
    except Exception as exc:
        raise _step_failure(step, run, exc) from exc
    parts = step_fingerprint(
        component, {p: fingerprints[u] for p, u in step.inputs.items()}, digest
    )
    fingerprint = parts.value
    fingerprints[step.name] = fingerprint
    cached = None if step.name in forced else cached_artifact(run.path.parent, fingerprint)
    meta = {
        "step": step.name,
        "component": component.name,
        "kind": component.kind,
        "plugin": step.plugin,
        "params": plain(component),
        "inputs": {p: {"step": a.step, "fingerprint": a.fingerprint} for p, a in inputs.items()},
        "fingerprint": fingerprint,
        "fingerprint_parts": parts.parts(),
        "run_id": run.run_id,
        "framework_version": __version__,
    }
    if step.tuned:
        meta["tuned"] = step.tuned
    started = time.perf_counter()
    if cached is not None:
        _link_tree(cached.path, partial)
        if cached.meta.get("details"):
            meta["details"] = cached.meta["details"]
        meta.update(
            counts=cached.counts,
            metrics=cached.metrics,
            summary=cached.meta.get("summary", ""),
            reused_from=str(cached.path.relative_to(run.path.parent)),
            original_seconds=cached.meta.get("seconds"),
            started=_now(),
        )
        status = "reused"
    else:
        reporter.step_started(step.name, component.name)
        plugins.notify("before_step_run", run=run, step=step)
        partial.mkdir(parents=True)
        meta["started"] = _now()
        try:
            result = run_step(component, ctx) or StepResult()
            _check_accounting(step, result)
        except Exception as exc:
            plugins.notify("on_step_error", run=run, step=step, error=exc)
            _report_failure(reporter, step, started)
            raise _step_failure(step, run, exc) from exc
        except BaseException:
            _report_failure(reporter, step, started)
            raise
        meta.update(counts=result.counts, metrics=result.metrics, summary=result.summary)
        if result.details:
            meta["details"] = result.details
        status = "ran"
    seconds = time.perf_counter() - started
    meta.update(finished=_now(), seconds=round(seconds, 3))
    meta_path = partial / META_FILE
    if meta_path.exists():  # a hard link shared with the cached run: replace, never edit
        meta_path.unlink()
    write_json_atomic(meta_path, meta)
    final = run.path / step.name
    os.rename(partial, final)
    remember(run.path.parent, fingerprint, final)
    return StepRecord(
        step=step.name,
        component=component.name,
        status=status,
        seconds=seconds,
        counts=dict(meta.get("counts") or {}),
        metrics=dict(meta.get("metrics") or {}),
        summary=str(meta.get("summary") or ""),
        path=str(final),
        fingerprint=fingerprint,
    )


def _check_accounting(step: Step, result: StepResult) -> None:
    counts = result.counts
    if "read" not in counts:
        return
    written, rejected = counts.get("written", 0), counts.get("rejected", 0)
    if counts["read"] != written + rejected:
        lost = counts["read"] - written - rejected
        raise AccountingError(
            f"step '{step.name}' ({step.component.name}) lost records: read {counts['read']}, "
            f"written {written}, rejected {rejected} ({lost} unaccounted for)"
        )


def _step_failure(step: Step, run: Run, exc: Exception) -> PipelineError:
    log_path = run.path / f"{step.name}.error.log"
    log_path.write_text("".join(traceback.format_exception(exc)), encoding="utf-8")
    where = (
        f"step '{step.name}' (component '{step.component.name}' of plugin '{step.plugin}') failed"
    )
    if isinstance(exc, PipelineError):
        return type(exc)(f"{where}: {exc}\n  run directory: {run.path}")
    return StepFailed(
        f"{where}: {type(exc).__name__}: {exc}\n  run directory: {run.path}\n"
        f"  traceback: {log_path}"
    )


def _refused(exc: BaseException, run: Run, records: list[StepRecord]) -> bool:
    """Whether the run stopped on bad input (exit code 2) before any step ran or was reused."""
    return (
        getattr(exc, "exit_code", None) == 2
        and not records
        and not (run.path / PARTIAL_DIR).exists()
    )


def _report_failure(reporter: Reporter, step: Step, started: float) -> None:
    elapsed = time.perf_counter() - started
    reporter.step_finished(StepRecord(step.name, step.component.name, "failed", elapsed))


def _borrow_inputs(
    spec: PipelineSpec, selection: Selection, pipeline_root: Path
) -> dict[str, Artifact]:
    """The earlier artifacts ``--only`` reads (before any run folder exists), by step name."""
    if not selection.borrowed:
        return {}
    fingerprints: dict[str, str] = {}
    borrowed: dict[str, Artifact] = {}
    for step in spec.steps:
        if step.name == selection.steps[0]:
            break
        planned = plan_fingerprint(step, spec, pipeline_root, fingerprints)
        fingerprints[step.name] = planned.value
        if step.name in selection.borrowed:
            artifact, reasons = borrow(step, pipeline_root, planned)
            if artifact is None:
                raise SpecError(
                    f"{spec.path}: --only {selection.steps[0]} reads step '{step.name}', "
                    f"which has no completed run under {pipeline_root}: {reasons[0]}"
                )
            borrowed[step.name] = artifact
    return borrowed


def _link_borrowed(step: Step, artifact: Artifact, run: Run) -> StepRecord:
    """Link an earlier artifact into ``run`` as step ``step``, recorded as reused."""
    started = time.perf_counter()
    partial = run.path / PARTIAL_DIR / f"{step.name}-{secrets.token_hex(4)}"
    _link_tree(artifact.path, partial)
    meta = dict(artifact.meta)
    meta.update(
        run_id=run.run_id,
        reused_from=str(artifact.path.relative_to(run.path.parent)),
        original_seconds=artifact.meta.get("seconds"),
        started=_now(),
        finished=_now(),
        seconds=0.0,
    )
    (partial / META_FILE).unlink()  # a hard link shared with the earlier run: replace it
    write_json_atomic(partial / META_FILE, meta)
    final = run.path / step.name
    os.rename(partial, final)
    return StepRecord(
        step=step.name,
        component=step.component.name,
        status="reused",
        seconds=time.perf_counter() - started,
        counts=dict(meta.get("counts") or {}),
        metrics=dict(meta.get("metrics") or {}),
        summary=str(meta.get("summary") or ""),
        path=str(final),
        fingerprint=artifact.fingerprint,
    )


def _new_run(pipeline_root: Path, spec: PipelineSpec, steps: list[str]) -> Run:
    while True:  # ids sort in start order; two runs in one millisecond get distinct ids
        run_id = datetime.now().strftime("%Y%m%d-%H%M%S-%f")[:-3]
        path = pipeline_root / run_id
        try:
            path.mkdir(parents=True)
            break
        except FileExistsError:
            time.sleep(0.001)
    run = Run(path, {})
    run.update(
        pipeline=spec.name,
        pipeline_file=str(spec.path),
        overrides=spec.overrides,
        runner=plain(spec.runner),
        steps=steps,
        status="running",
        pid=os.getpid(),
        started=_now(),
    )
    return run


def _clean_interrupted_runs(pipeline_root: Path) -> None:
    """Mark runs whose process died as interrupted and remove their partial step folders.

    A run that ended (in any way its process saw) has its ``report.html``: only the others'
    ``run.json`` is read, so the check stays cheap however many runs the folder holds."""
    for path in run_folders(pipeline_root):
        if (path / REPORT_FILE).is_file() or not (path / RUN_FILE).is_file():
            continue
        run = Run.open(path)
        if run.info.get("status") == "running" and run.status == "interrupted":
            shutil.rmtree(run.path / PARTIAL_DIR, ignore_errors=True)
            run.update(status="interrupted")


def _link_tree(source: Path, target: Path) -> None:
    """Copy a finished artifact by hard links (cheap, and immutable in practice)."""

    def link(src: str, dst: str) -> None:
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)

    shutil.copytree(source, target, copy_function=link)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


__all__ = ["execute", "RunResult", "RUN_FILE"]
