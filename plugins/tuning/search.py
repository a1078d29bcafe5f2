"""The search: open (or resume) the study, ask for trials within the budget, run them in
processes, tell their outcomes, then write the artifact.

Resume: the study lives in the step's scratch folder (``study.db``, SQLite). A search started
again over a study its killed predecessor left behind keeps every finished trial; each trial
that was running is closed as failed, listed in the study's ``interrupted`` attribute (it does
not count against the budget) and queued again with the same values. The budget counts
finished trials (complete, pruned, failed), so a resumed search ends with exactly ``trials``.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import time
from pathlib import Path
from typing import Any

from beamline import StepContext, StepResult
from beamline.errors import PipelineError, SpecError
from beamline.fingerprint import plain
from beamline.spec import Step
from beamline.tuning import apply_values, dimensions, fixed_values, write_best

from .pool import TrialPool
from .report import trial_records, write_report
from .space import distributions, to_params, to_values
from .trial import ENGINE_KWARGS, STUDY_NAME, make_pruner

SCRATCH_DIR = ".scratch"
STUDY_FILE = "study.db"


def scratch_folder(ctx: StepContext, tuner: Any) -> Path:
    """The study's folder: same parameters, target and inputs -> same folder (resume)."""
    payload = json.dumps(
        {
            "step": ctx.step.name,
            "params": plain(tuner),
            "inputs": {k: a.fingerprint for k, a in sorted(ctx.inputs.items())},
        },
        sort_keys=True,
        default=str,
    )
    digest = hashlib.sha256(payload.encode()).hexdigest()[:16]
    return ctx.run.path.parent / SCRATCH_DIR / f"{ctx.step.name}-{digest}"


def run_search(tuner: Any, ctx: StepContext) -> StepResult:
    """Run or resume ``tuner``'s search in ``ctx`` and write its artifact."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    scratch = scratch_folder(ctx, tuner)
    scratch.mkdir(parents=True, exist_ok=True)
    storage_url = f"sqlite:///{scratch / STUDY_FILE}"
    storage = optuna.storages.RDBStorage(storage_url, engine_kwargs=ENGINE_KWARGS)
    direction = tuner.objective.resolved()
    study = optuna.create_study(
        study_name=STUDY_NAME,
        storage=storage,
        load_if_exists=True,
        direction=direction,
        sampler=_sampler(tuner),
        pruner=make_pruner(_pruner_settings(tuner)),
    )
    dims = dimensions(tuner.space)
    retried = _requeue_interrupted(study)
    if retried:
        ctx.log(f"resuming the search in {scratch}: retrying interrupted trial(s) {retried}")
    elif study.trials:
        ctx.log(f"resuming the search in {scratch} ({len(study.trials)} trial(s) recorded)")
    else:
        for values in tuner.start_with:
            study.enqueue_trial(to_params(dims, values), user_attrs={"start_with": True})
    _search(tuner, ctx, study, dims, scratch)
    storage.engine.dispose()
    result = _write_artifact(tuner, ctx, study, dims, scratch)
    shutil.rmtree(scratch, ignore_errors=True)
    return result


def _sampler(tuner: Any) -> Any:
    import optuna

    if tuner.sampler == "random":
        return optuna.samplers.RandomSampler(seed=tuner.seed)
    return optuna.samplers.TPESampler(seed=tuner.seed, n_startup_trials=5)


def _pruner_settings(tuner: Any) -> dict[str, Any]:
    return {
        "pruner": tuner.pruner,
        "startup_trials": tuner.startup_trials,
        "warmup_epochs": tuner.warmup_epochs,
    }


def interrupted_trials(study: Any) -> set[int]:
    """The numbers of trials a killed search left running (closed as failed, retried)."""
    return set(study.user_attrs.get("interrupted", []))


def _requeue_interrupted(study: Any) -> list[int]:
    from optuna.trial import TrialState

    running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    if not running:
        return []
    numbers = [t.number for t in running]
    study.set_user_attr("interrupted", sorted(interrupted_trials(study) | set(numbers)))
    for frozen in running:
        study.tell(frozen.number, state=TrialState.FAIL, skip_if_finished=True)
        study.enqueue_trial(frozen.params, user_attrs={"retry_of": frozen.number})
    return numbers


def counted_trials(study: Any) -> int:
    """Finished trials that count against the budget (interrupted ones do not)."""
    from optuna.trial import TrialState

    finished = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
    interrupted = interrupted_trials(study)
    return sum(
        1 for t in study.get_trials(deepcopy=False, states=finished) if t.number not in interrupted
    )


def _search(tuner: Any, ctx: StepContext, study: Any, dims: list[Any], scratch: Path) -> None:
    """The loop: keep ``workers`` trials running while the budget allows, tell each outcome."""
    target = ctx.spec.step(tuner.target)
    inputs = {
        param.removeprefix("target."): artifact
        for param, artifact in ctx.inputs.items()
        if param.startswith("target.")
    }
    threads = tuner.threads or max(1, (os.cpu_count() or 1) // tuner.workers)
    spent = float(study.user_attrs.get("seconds", 0.0))
    began = time.monotonic()
    pool = TrialPool()
    asked: dict[int, Any] = {}
    distributions_ = distributions(dims)
    fixed = fixed_values(tuner.fixed, tuner.trial)

    def budget_left() -> bool:
        if tuner.trials and counted_trials(study) + len(pool) >= tuner.trials:
            return False
        return not tuner.seconds or spent + time.monotonic() - began < tuner.seconds

    try:
        while True:
            while len(pool) < tuner.workers and budget_left():
                trial = study.ask(distributions_)
                values = to_values(dims, trial.params)
                try:
                    component = apply_values(tuner.trial, {**fixed, **values})
                except SpecError as exc:
                    trial.set_user_attr("error", str(exc))
                    study.tell(trial, state=_state("FAIL"))
                    continue
                asked[trial.number] = trial
                payload = {
                    "step": Step(target.name, component, dict(target.inputs), target.plugin),
                    "spec": ctx.spec,
                    "inputs": inputs,
                    "folder": str(scratch / "trials" / str(trial.number)),
                    "storage": f"sqlite:///{scratch / STUDY_FILE}",
                    "trial_id": trial._trial_id,  # Optuna's Trial(study, trial_id) needs it
                    "metric": tuner.objective.metric,
                    "pruner": _pruner_settings(tuner),
                    "threads": threads,
                    "parent_pid": os.getpid(),
                }
                pool.start(trial.number, payload)
            if not len(pool):
                break
            for number, outcome in pool.wait():
                _tell(study, asked.pop(number), outcome)
                study.set_user_attr("seconds", spent + time.monotonic() - began)
                _progress(tuner, ctx, study, number, outcome)
                _fail_fast(study)
    finally:
        pool.stop()


def _state(name: str) -> Any:
    from optuna.trial import TrialState

    return TrialState[name]


def _tell(study: Any, trial: Any, outcome: dict[str, Any]) -> None:
    """Record a trial's outcome: its facts as user attributes, then its state and value."""
    for key in ("seconds", "peak_rss_mib", "error", "metrics", "epoch"):
        if key in outcome:
            trial.set_user_attr(key, outcome[key])
    state = outcome["state"]
    value = outcome.get("value")
    if state == "complete" and isinstance(value, float) and math.isfinite(value):
        study.tell(trial, value)
    elif state == "pruned":
        study.tell(trial, state=_state("PRUNED"))
    else:
        if state == "complete":
            trial.set_user_attr("error", f"the objective is {value}, not a finite number")
        study.tell(trial, state=_state("FAIL"))


def _progress(tuner: Any, ctx: StepContext, study: Any, number: int, outcome: dict) -> None:
    done = counted_trials(study)
    metric = tuner.objective.metric
    what = outcome["state"]
    if what == "complete":
        what = f"{metric} {outcome['value']:.4g}"
    elif what == "pruned":
        what = f"pruned after epoch {outcome.get('epoch')}"
    else:
        what = f"failed: {outcome.get('error', '')[:120]}"
    try:
        best = f"; best {study.best_value:.4g} (trial {study.best_trial.number})"
    except ValueError:
        best = ""
    ctx.progress(done, tuner.trials or None, f"trial {number}: {what}{best}")


def _fail_fast(study: Any) -> None:
    """Stop a search whose first trials all failed: the next would fail the same way."""
    from optuna.trial import TrialState

    interrupted = interrupted_trials(study)
    trials = [t for t in study.get_trials(deepcopy=False) if t.number not in interrupted]
    finished = [t for t in trials if t.state.is_finished()]
    if len(finished) >= 2 and all(t.state == TrialState.FAIL for t in finished):
        reason = finished[0].user_attrs.get("error", "no reason recorded")
        raise PipelineError(f"the first {len(finished)} trials failed; the first: {reason}")


def _write_artifact(
    tuner: Any, ctx: StepContext, study: Any, dims: list[Any], scratch: Path
) -> StepResult:
    from optuna.trial import TrialState

    out = ctx.output_dir
    records = trial_records(study, dims, interrupted_trials(study))
    with (out / "trials.jsonl").open("w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, default=str) + "\n")
    shutil.copy2(scratch / STUDY_FILE, out / STUDY_FILE)
    complete = [t for t in study.trials if t.state == TrialState.COMPLETE]
    if not complete:
        errors = [r.get("error") for r in records if r.get("error")]
        raise PipelineError(
            "no trial completed"
            + (f"; the first error: {errors[0]}" if errors else " (every trial was pruned)")
        )
    best = study.best_trial
    values = to_values(dims, best.params)
    metric, direction = tuner.objective.metric, tuner.objective.resolved()
    write_best(out, values, trial=best.number, metric=metric, value=best.value, direction=direction)
    details = write_report(out / "report", records, dims, study, metric, direction)
    counts = {
        state: sum(1 for r in records if r["state"] == state and not r.get("interrupted"))
        for state in ("complete", "pruned", "fail")
    }
    metrics = {
        f"best_{metric}": float(best.value),
        "trials": float(sum(counts.values())),
        "complete": float(counts["complete"]),
        "pruned": float(counts["pruned"]),
        "failed": float(counts["fail"]),
        "retried": float(len(interrupted_trials(study))),
    }
    shown = ", ".join(f"{k}={_short(v)}" for k, v in values.items())
    summary = (
        f"best {metric} {best.value:.4g} in trial {best.number} of {sum(counts.values())} "
        f"({counts['pruned']} pruned): {shown}"
    )
    details["best"] = {"trial": best.number, "value": best.value, "params": values}
    return StepResult(metrics=metrics, summary=summary, details=details)


def _short(value: Any) -> str:
    """A value as the summary line shows it: floats to 4 significant digits."""
    return f"{value:.4g}" if isinstance(value, float) else json.dumps(value)
