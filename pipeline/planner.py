"""Which steps a run would reuse, and why the others would run, without running anything.

Every step's fingerprint is computed as the executor computes it (the fingerprint depends on the
inputs' fingerprints, never on their outputs, so nothing upstream needs to run) and looked up in
the cache; a step that would run is compared, part by part, with the latest earlier run that
completed it: which parameter, input, data, module or library version changed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .artifacts import Artifact, Run, default_runs_dir
from .context import StepContext
from .errors import DataNotFound, PipelineError, SpecError
from .fingerprint import Fingerprint, step_fingerprint
from .progress import Reporter
from .spec import PipelineSpec, Step
from .step_cache import cached_artifact, previous_artifact
from .tuning import PARAMS_FROM, planned_tuned_step

_MAX_PARAMS = 8  # parameter changes listed one by one; the rest are counted


@dataclass(frozen=True)
class Selection:
    """The steps one run executes (``steps``) and those whose earlier artifacts it borrows as
    inputs (``borrowed``: the inputs of ``--only STEP``), in file order."""

    steps: list[str]
    borrowed: list[str] = field(default_factory=list)


def select_steps(
    spec: PipelineSpec, only: str | None = None, until: str | None = None
) -> Selection:
    """The steps ``--only STEP`` (that step; its inputs borrowed from earlier runs) or ``--until
    STEP`` (every step of the file up to and including STEP) selects; all steps by default."""
    if only and until:
        raise SpecError("--only and --until cannot be combined: choose one step selection")
    if until:
        spec.step(until)
        names = spec.step_names
        return Selection(names[: names.index(until) + 1])
    if only:
        step = spec.step(only)
        upstream = set(step.inputs.values())
        return Selection([only], [n for n in spec.step_names if n in upstream])
    return Selection(spec.step_names)


@dataclass
class StepExplanation:
    """What a run would do with one step, and why.

    ``decision`` is ``reuse``, ``run``, ``borrow`` (an input of ``--only``, taken from an earlier
    run), ``missing`` (such an input that no earlier run completed) or ``skip`` (not selected)."""

    step: str
    component: str
    decision: str
    reasons: list[str]
    fingerprint: str = ""
    artifact: str = ""  # the artifact reused or borrowed, or the one compared with

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary."""
        return dict(self.__dict__)


def planning_context(step: Step, spec: PipelineSpec, pipeline_root: Path) -> StepContext:
    """A context for asking a component about its data before any run folder exists."""
    run = Run(pipeline_root / "(planned)", {})
    return StepContext(step, spec, run, run.path / step.name, {}, Reporter())


def data_digest(step: Step, spec: PipelineSpec, ctx: StepContext) -> str | None:
    """The step's data fingerprint, for the planner and the executor alike.

    Missing data is bad input located at the step's key in the pipeline file; any other error
    is the caller's to report (the executor writes its traceback)."""
    try:
        return step.component.data_fingerprint(ctx)
    except DataNotFound as exc:
        raise exc.located(spec.path, step.name, step.component) from None


def plan_fingerprint(
    step: Step, spec: PipelineSpec, pipeline_root: Path, fingerprints: dict[str, str]
) -> Fingerprint:
    """The fingerprint ``step`` would have, given its upstream steps' fingerprints."""
    step = planned_tuned_step(step, fingerprints, lambda f: cached_artifact(pipeline_root, f))
    ctx = planning_context(step, spec, pipeline_root)
    inputs = {param: fingerprints[upstream] for param, upstream in step.inputs.items()}
    try:
        digest = data_digest(step, spec, ctx)
    except PipelineError:
        raise
    except Exception as exc:
        raise PipelineError(
            f"step '{step.name}' ({step.component.name}): cannot fingerprint its data: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    return step_fingerprint(step.component, inputs, digest)


def borrow(
    step: Step, pipeline_root: Path, planned: Fingerprint
) -> tuple[Artifact | None, list[str]]:
    """The artifact ``--only`` takes for upstream ``step``: the one with its current fingerprint,
    else its latest earlier one (out of date, and the reasons); None when no run completed it."""
    cached = cached_artifact(pipeline_root, planned.value)
    if cached is not None:
        return cached, [f"up to date (from run {_run_of(cached)})"]
    previous = previous_artifact(pipeline_root, step.name)
    if previous is None:
        return None, [
            f"no earlier run completed step '{step.name}': run it first "
            f"(pipeline run FILE --until {step.name})"
        ]
    why = changes(step, planned, previous)
    return previous, [f"out of date, borrowed anyway from run {_run_of(previous)}", *why]


def explain(
    spec: PipelineSpec,
    *,
    runs_dir: str | Path | None = None,
    force: bool | set[str] | list[str] | tuple[str, ...] = False,
    only: str | None = None,
    until: str | None = None,
) -> list[StepExplanation]:
    """For every step of ``spec``, what ``execute`` with the same arguments would do and why."""
    pipeline_root = Path(runs_dir if runs_dir is not None else default_runs_dir()) / spec.name
    selection = select_steps(spec, only, until)
    forced = set(spec.step_names) if force is True else set(force or ())
    wanted = set(selection.steps) | set(selection.borrowed)
    last = max(spec.step_names.index(n) for n in wanted)
    fingerprints: dict[str, str] = {}
    borrowed: dict[str, str] = {}  # the fingerprints of what --only's step really reads
    out: list[StepExplanation] = []
    for index, step in enumerate(spec.steps):
        if index > last:
            out.append(StepExplanation(step.name, step.component.name, "skip", ["not selected"]))
            continue
        upstream = {**fingerprints, **borrowed} if step.name == only else fingerprints
        planned = plan_fingerprint(step, spec, pipeline_root, upstream)
        fingerprints[step.name] = planned.value
        if step.name in selection.borrowed:
            artifact, reasons = borrow(step, pipeline_root, planned)
            if artifact is not None:
                borrowed[step.name] = artifact.fingerprint
            decision = "borrow" if artifact is not None else "missing"
            out.append(_explained(step, decision, reasons, planned, artifact))
        elif step.name not in selection.steps:
            out.append(_explained(step, "skip", ["not selected"], planned, None))
        else:
            out.append(_decide(step, pipeline_root, planned, step.name in forced))
    return out


def _decide(step: Step, pipeline_root: Path, planned: Fingerprint, forced: bool) -> StepExplanation:
    previous = previous_artifact(pipeline_root, step.name)
    if forced:
        return _explained(step, "run", ["forced (--force)"], planned, previous)
    cached = cached_artifact(pipeline_root, planned.value)
    if cached is not None:
        reasons = [f"unchanged since run {_run_of(cached)}"]
        return _explained(step, "reuse", reasons, planned, cached)
    if previous is None:
        return _explained(step, "run", ["no earlier run completed this step"], planned, None)
    reasons = changes(step, planned, previous)
    if not reasons:
        reasons = ["no artifact with this fingerprint is left (the runs that made it were removed)"]
    return _explained(step, "run", reasons, planned, previous)


def changes(step: Step, current: Fingerprint, previous: Artifact) -> list[str]:
    """What differs between ``current`` and the fingerprint ``previous`` was made with."""
    reasons: list[str] = []
    parts = previous.meta.get("fingerprint_parts")
    old_tuner = ((parts or {}).get("inputs") or {}).get(PARAMS_FROM)
    if previous.component != current.component:
        reasons.append(f"component {previous.component} -> {current.component}")
    elif step.params_from and old_tuner != current.inputs.get(PARAMS_FROM):
        reasons.append(f"parameters from step '{step.params_from}', whose best trial sets them")
    else:
        reasons.extend(_param_changes(previous.meta.get("params"), current.params))
    if not isinstance(parts, dict):
        if not reasons:
            reasons.append(
                f"run {_run_of(previous)} recorded no fingerprint parts (an older framework)"
            )
        return reasons
    old_inputs = parts.get("inputs") or {}
    for param in sorted(set(old_inputs) | set(current.inputs)):
        if old_inputs.get(param) != current.inputs.get(param):
            upstream = step.inputs.get(param, "?")
            reasons.append(f"input '{param}' changed (step '{upstream}' has a new fingerprint)")
    if parts.get("data") != current.data:
        reasons.append(f"data changed ({_short(parts.get('data'))} -> {_short(current.data)})")
    reasons.extend(_module_changes(parts.get("modules") or {}, current.modules))
    old_libraries = parts.get("libraries") or {}
    for name in sorted(set(old_libraries) | set(current.libraries)):
        old, new = old_libraries.get(name, "none"), current.libraries.get(name, "none")
        if old != new:
            reasons.append(f"library {name} {old} -> {new}")
    if not reasons and previous.fingerprint != current.value:
        reasons.append("the fingerprint's format changed (a newer framework)")
    return reasons


def _module_changes(old: dict[str, str], new: dict[str, str]) -> list[str]:
    reasons = [f"module {m} changed" for m in sorted(old.keys() & new.keys()) if old[m] != new[m]]
    reasons += [f"module {m} is now imported" for m in sorted(new.keys() - old.keys())]
    reasons += [f"module {m} is no longer imported" for m in sorted(old.keys() - new.keys())]
    return reasons


def _param_changes(old: Any, new: Any) -> list[str]:
    found: list[str] = []
    _diff(old, new, "", found)
    if len(found) > _MAX_PARAMS:
        found = [*found[:_MAX_PARAMS], f"and {len(found) - _MAX_PARAMS} more parameter changes"]
    return found


def _diff(old: Any, new: Any, key: str, found: list[str]) -> None:
    if isinstance(old, dict) and isinstance(new, dict):
        for name in [*old, *(k for k in new if k not in old)]:
            where = f"{key}.{name}" if key else name
            _diff(old.get(name, _ABSENT), new.get(name, _ABSENT), where, found)
    elif isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        for index, (a, b) in enumerate(zip(old, new, strict=True)):
            _diff(a, b, f"{key}[{index}]", found)
    elif old != new:
        found.append(f"parameter {key or '(all)'}: {_show(old)} -> {_show(new)}")


class _Absent:
    def __repr__(self) -> str:
        return "(unset)"


_ABSENT = _Absent()


def _show(value: Any) -> str:
    if isinstance(value, _Absent):
        return "(unset)"
    text = json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def _short(digest: Any) -> str:
    return "none" if digest is None else str(digest)[:12]


def _run_of(artifact: Artifact) -> str:
    return artifact.path.parent.name


def _explained(
    step: Step,
    decision: str,
    reasons: list[str],
    planned: Fingerprint,
    artifact: Artifact | None,
) -> StepExplanation:
    return StepExplanation(
        step.name,
        step.component.name,
        decision,
        reasons,
        planned.value,
        str(artifact.path) if artifact is not None else "",
    )


def explanation_summary(pipeline: str, steps: list[StepExplanation]) -> str:
    """One line: how many steps a run would reuse, run, borrow or skip (nothing ran)."""
    counts: dict[str, int] = {}
    for step in steps:
        counts[step.decision] = counts.get(step.decision, 0) + 1
    words = {"reuse": "reused", "run": "to run", "borrow": "borrowed", "missing": "missing"}
    words["skip"] = "skipped"
    told = ", ".join(f"{counts[d]} {w}" for d, w in words.items() if counts.get(d))
    return f"{pipeline}: {told} (explained; nothing ran)"


def explanation_lines(steps: list[StepExplanation]) -> list[str]:
    """A step per line (step, component, decision, first reason), further reasons below."""
    width = max((len(s.step) for s in steps), default=0)
    component_width = max((len(s.component) for s in steps), default=0)
    lines = []
    for s in steps:
        head = f"  {s.step:<{width}}  {s.component:<{component_width}}  {s.decision:<7}"
        reasons = s.reasons or [""]
        lines.append(f"{head}  {reasons[0]}".rstrip())
        lines.extend(f"  {'':<{len(head) - 2}}  {reason}" for reason in reasons[1:])
    return lines
