"""MLflow tracking through the lifecycle hooks, read back with the real MLflow client."""

from __future__ import annotations

from pathlib import Path

import pytest
from data_paths import PIPELINES, TESTS_DIR

import beamline

PLUGIN = "beamline_plugins.mlflow_tracking"


@pytest.fixture(autouse=True)
def _importable_support(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(TESTS_DIR))


def test_tracking_is_off_unless_loaded_and_its_uri_defaults_beside_the_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from beamline.plugins import load_plugins
    from beamline_plugins.mlflow_tracking import tracking_uri

    monkeypatch.delenv("PIPELINE_PLUGINS", raising=False)
    assert PLUGIN not in load_plugins().sources
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert tracking_uri(tmp_path / "runs") == (tmp_path / "mlruns").as_uri()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    assert tracking_uri(tmp_path / "runs") == "http://127.0.0.1:5000"


@pytest.mark.slow
def test_a_tracked_run_logs_params_epoch_metrics_artifacts_and_the_export(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from insight_support import DIGITS_OVERRIDES, digits_run, runs_dir
    from mlflow.tracking import MlflowClient

    digits_run()  # trained once; the tracked run below reuses every step
    store = (tmp_path / "mlruns").as_uri()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    monkeypatch.setenv("PIPELINE_PLUGINS", PLUGIN)
    result = beamline.run(PIPELINES / "digits.yaml", DIGITS_OVERRIDES, runs_dir=runs_dir())

    client = MlflowClient(tracking_uri=store)  # MLFLOW_ALLOW_FILE_STORE: set by the plugin
    experiment = client.get_experiment_by_name("digits")
    (tracked,) = client.search_runs([experiment.experiment_id])
    assert tracked.info.status == "FINISHED"
    assert tracked.data.tags["beamline.run_id"] == result.run.run_id
    assert tracked.data.params["train.epochs"] == "4"
    assert tracked.data.params["train.model.component"] == "cnn"
    train = next(r for r in result.records if r.step == "train")
    assert tracked.data.params["train.status"] == train.status  # reused, unless code changed
    accuracy = result.run.artifact("evaluate").metrics["accuracy"]
    assert tracked.data.metrics["evaluate.accuracy"] == pytest.approx(accuracy)
    history = client.get_metric_history(tracked.info.run_id, "val_accuracy")
    assert sorted(m.step for m in history) == [1, 2, 3, 4]
    top = {a.path for a in client.list_artifacts(tracked.info.run_id)}
    assert {"report.html", "train", "evaluate", "export"} <= top
    exported = {a.path for a in client.list_artifacts(tracked.info.run_id, "export/saved_model")}
    assert "export/saved_model/saved_model.pb" in exported
