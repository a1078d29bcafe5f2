"""Experiment tracking with MLflow, through the lifecycle hooks only (off unless loaded).

Load it for one pipeline with ``plugins: [beamline_plugins.mlflow_tracking]`` in the pipeline
file, or for every command with ``PIPELINE_PLUGINS=beamline_plugins.mlflow_tracking`` (or
``--plugin``). Each pipeline run becomes an MLflow run in the experiment named after the
pipeline, tagged with the run id and folder:

* parameters: every step's parameters as ``STEP.KEY`` (nested keys dotted), when it ran or was
  reused;
* metrics: every step's metrics as ``STEP.METRIC`` and the trainer's epoch log
  (``report/history.json``: loss, accuracy, val_loss, learning_rate, ... with the epoch as
  MLflow's step);
* artifacts: each step's ``meta.json`` and ``report/``, the run's ``report.html``, and an
  exporter's SavedModel (under ``STEP/``).

The tracking URI is ``$MLFLOW_TRACKING_URI`` when set, else a local ``mlruns`` folder beside
the runs folder (``./mlruns`` for ``./runs``). It works with ``mlflow-skinny`` (the client and
the file store, without the server's dependencies); for a local folder the plugin sets
``MLFLOW_ALLOW_FILE_STORE=true``, which MLflow 3.7+ asks for before it writes a file store
(a ``sqlite:///...`` URI is the database store MLflow recommends). A failed step ends the
MLflow run as FAILED. MLflow is imported only when a run starts.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from beamline import hookimpl

TRACKING_ENV = "MLFLOW_TRACKING_URI"
FILE_STORE_ENV = "MLFLOW_ALLOW_FILE_STORE"
HISTORY = ("report", "history.json")
#: MLflow limits a parameter value to 6000 characters.
PARAM_LIMIT = 6000

_active: dict[str, str] = {}  # run folder -> MLflow run id


def tracking_uri(runs_dir: Path) -> str:
    """``$MLFLOW_TRACKING_URI``, else ``mlruns`` beside the runs folder as a file URI."""
    return os.environ.get(TRACKING_ENV) or (runs_dir.resolve().parent / "mlruns").as_uri()


def _client(run: Any) -> Any:
    uri = tracking_uri(run.path.parent.parent)
    if uri.startswith("file:") or "://" not in uri:
        # MLflow 3.7+ refuses its file store unless asked; a plain folder is the default we
        # offer (nothing to set up), a database store is one MLFLOW_TRACKING_URI away.
        os.environ.setdefault(FILE_STORE_ENV, "true")
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri)


@hookimpl
def before_pipeline_run(run: Any) -> None:
    """Start an MLflow run in the pipeline's experiment."""
    client = _client(run)
    experiment = client.get_experiment_by_name(run.pipeline)
    experiment_id = (
        experiment.experiment_id if experiment else client.create_experiment(run.pipeline)
    )
    tags = {
        "beamline.run_id": run.run_id,
        "beamline.run_folder": str(run.path),
        "beamline.pipeline_file": str(run.info.get("pipeline_file", "")),
        "mlflow.runName": f"{run.pipeline}/{run.run_id}",
    }
    _active[str(run.path)] = client.create_run(experiment_id, tags=tags).info.run_id


@hookimpl
def after_step_run(run: Any, step: Any, record: Any) -> None:
    """Log the step's parameters, metrics, epoch log and artifacts."""
    from mlflow.entities import Metric, Param

    run_id = _active.get(str(run.path))
    if run_id is None:
        return
    client = _client(run)
    folder = Path(record.path) if record.path else run.path / step.name
    meta = _read(folder / "meta.json") or {}
    params = [
        Param(f"{step.name}.{key}", str(value)[:PARAM_LIMIT])
        for key, value in _flatten(meta.get("params", {})).items()
    ]
    params.append(Param(f"{step.name}.status", record.status))
    metrics = [
        Metric(f"{step.name}.{name}", float(value), _now(), 0)
        for name, value in record.metrics.items()
        if isinstance(value, int | float)
    ]
    history = _read(folder.joinpath(*HISTORY))
    if isinstance(history, dict):  # {"best_epoch", "epochs": [...]}
        history = history.get("epochs")
    for epoch in history if isinstance(history, list) else []:
        for name, value in epoch.items():
            if name != "epoch" and isinstance(value, int | float):
                metrics.append(Metric(name, float(value), _now(), int(epoch.get("epoch", 0))))
    for start in range(0, max(len(params), len(metrics)), 100):
        client.log_batch(
            run_id, metrics=metrics[start : start + 100], params=params[start : start + 100]
        )
    if (folder / "meta.json").is_file():
        client.log_artifact(run_id, str(folder / "meta.json"), artifact_path=step.name)
    if (folder / "report").is_dir():
        client.log_artifacts(run_id, str(folder / "report"), artifact_path=f"{step.name}/report")
    if meta.get("kind") == "exporter" and (folder / "saved_model").is_dir():
        client.log_artifacts(
            run_id, str(folder / "saved_model"), artifact_path=f"{step.name}/saved_model"
        )


@hookimpl
def after_pipeline_run(run: Any, results: list[Any]) -> None:
    """Log the run report and end the MLflow run as FINISHED."""
    run_id = _active.pop(str(run.path), None)
    if run_id is None:
        return
    client = _client(run)
    report = run.path / "report.html"
    if report.is_file():
        client.log_artifact(run_id, str(report))
    client.set_terminated(run_id, "FINISHED")


@hookimpl
def on_step_error(run: Any, step: Any, error: BaseException) -> None:
    """End the MLflow run as FAILED, naming the step and the error."""
    run_id = _active.pop(str(run.path), None)
    if run_id is None:
        return
    client = _client(run)
    client.set_tag(run_id, "beamline.failed_step", step.name)
    client.set_tag(run_id, "beamline.error", str(error)[:PARAM_LIMIT])
    client.set_terminated(run_id, "FAILED")


def _read(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, inner in value.items():
            out.update(_flatten(inner, f"{prefix}{key}."))
        return out
    return {prefix.rstrip("."): value}


def _now() -> int:
    import time

    return int(time.time() * 1000)
