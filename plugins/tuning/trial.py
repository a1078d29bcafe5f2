"""One trial, run in a process of its own: the target step's component with the values tried.

The process reads nothing from its parent but the payload (pickled by ``multiprocessing``'s
spawn start method): the trial's component and step, the pipeline, the input artifacts, the
study's storage URL and the trial's id. It reports the objective to the study after every epoch
(``StepContext.on_epoch``) and stops when the pruner says so; it sends its outcome back through
a pipe and exits, so that everything TensorFlow allocated goes back to the system. It dies with
its parent (``PR_SET_PDEATHSIG`` on Linux): a killed search leaves no trial running.
"""

from __future__ import annotations

import os
import resource
import shutil
import sys
import time
import traceback
from pathlib import Path
from typing import Any

#: SQLite waits this long for a lock held by another trial process instead of failing.
ENGINE_KWARGS = {"connect_args": {"timeout": 60}}
STUDY_NAME = "search"


class Pruned(Exception):
    """The pruner stopped the trial after ``epoch``."""

    def __init__(self, epoch: int) -> None:
        super().__init__(f"pruned after epoch {epoch}")
        self.epoch = epoch


def make_pruner(settings: dict[str, Any]) -> Any:
    """The Optuna pruner of a tuner's ``pruner``, ``startup_trials`` and ``warmup_epochs``."""
    import optuna

    kind = settings["pruner"]
    if kind == "median":
        return optuna.pruners.MedianPruner(
            n_startup_trials=settings["startup_trials"], n_warmup_steps=settings["warmup_epochs"]
        )
    if kind == "halving":
        return optuna.pruners.SuccessiveHalvingPruner(
            min_resource=max(1, settings["warmup_epochs"]), reduction_factor=3
        )
    return optuna.pruners.NopPruner()


def trial_main(payload: dict[str, Any], conn: Any) -> None:
    """The trial process's entry point: run the trial, send its outcome through ``conn``."""
    _die_with_parent(payload["parent_pid"])
    _limit_threads(payload["threads"])
    began = time.perf_counter()
    try:
        outcome = _run(payload)
    except Exception as exc:  # the search records the trial as failed, with the reason
        outcome = {
            "state": "fail",
            "error": f"{type(exc).__name__}: {exc}",
            "traceback": traceback.format_exc()[-4000:],
        }
    outcome["seconds"] = round(time.perf_counter() - began, 3)
    outcome["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    conn.send(outcome)
    conn.close()


def _run(payload: dict[str, Any]) -> dict[str, Any]:
    import optuna

    from beamline.artifacts import Run
    from beamline.context import StepContext
    from beamline.progress import Reporter
    from beamline.steps import run_step

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = optuna.storages.RDBStorage(payload["storage"], engine_kwargs=ENGINE_KWARGS)
    pruner = make_pruner(payload["pruner"])
    study = optuna.load_study(study_name=STUDY_NAME, storage=storage, pruner=pruner)
    trial = optuna.trial.Trial(study, payload["trial_id"])
    trial.set_user_attr("pid", os.getpid())
    metric, parent = payload["metric"], payload["parent_pid"]
    epochs: list[dict[str, Any]] = []

    def on_epoch(epoch: int, record: dict[str, Any]) -> bool:
        if os.getppid() != parent:  # the search is gone: stop rather than report to nobody
            os._exit(1)
        epochs.append(record)
        value = record.get(metric)
        if isinstance(value, int | float) and value == value:
            trial.report(float(value), epoch)
            if trial.should_prune():
                raise Pruned(epoch)
        return False

    folder = Path(payload["folder"])
    shutil.rmtree(folder, ignore_errors=True)
    output = folder / "artifact"
    output.mkdir(parents=True)
    step = payload["step"]
    ctx = StepContext(
        step=step,
        spec=payload["spec"],
        run=Run(folder / "runs" / "trial", {}),  # the trainer's scratch goes under the folder
        output_dir=output,
        inputs=payload["inputs"],
        reporter=Reporter(),
        on_epoch=on_epoch,
    )
    try:
        result = run_step(step.component, ctx)
    except Pruned as stop:
        return {"state": "pruned", "epoch": stop.epoch, "epochs": epochs}
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    metrics = dict(result.metrics) if result is not None else {}
    if metric not in metrics:
        return {
            "state": "fail",
            "error": f"step '{step.name}' reported no metric '{metric}' (it reported: "
            f"{', '.join(sorted(metrics)) or 'none'}); set objective.metric to one of them",
            "epochs": epochs,
        }
    return {
        "state": "complete",
        "value": float(metrics[metric]),
        "metrics": metrics,
        "epochs": epochs,
    }


def _die_with_parent(parent_pid: int) -> None:
    """Ask Linux to kill this process when its parent dies (a killed search's trials end too)."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes
            import signal

            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, int(signal.SIGKILL))  # SET_PDEATHSIG
        except OSError:
            pass
    if os.getppid() != parent_pid:  # the parent died before the request took effect
        os._exit(1)


def _limit_threads(threads: int) -> None:
    """Keep TensorFlow (and oneDNN's OpenMP) to ``threads`` threads, read when it loads."""
    for name in ("TF_NUM_INTRAOP_THREADS", "OMP_NUM_THREADS"):
        os.environ[name] = str(threads)
    os.environ["TF_NUM_INTEROP_THREADS"] = str(max(1, min(2, threads)))
