"""The step runner: atomic artifacts, reuse of unchanged steps, accounting, failures, resume."""

from __future__ import annotations

import filecmp
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from core_plugin import NUMBERS_PIPELINE as PIPELINE
from data_paths import PROJECT_DIR

import beamline
from beamline import StepFailed
from beamline.errors import AccountingError


def run(path, tmp_path, overrides=(), **kwargs):
    return beamline.run(path, list(overrides), runs_dir=tmp_path / "runs", **kwargs)


def events(log: Path) -> list[str]:
    """The lines the core plugin logged."""
    return log.read_text().splitlines() if log.exists() else []


def test_run_writes_each_step_with_meta_and_accounting(fixtures_plugin, write_pipeline, tmp_path):
    result = run(write_pipeline(PIPELINE), tmp_path)
    assert [r.status for r in result.records] == ["ran", "ran", "ran"]
    meta = result.run.artifact("data").meta
    assert meta["counts"] == {"read": 6, "written": 4, "rejected": 2}
    assert meta["component"] == "numbers" and meta["plugin"] == "core_plugin"
    assert meta["params"]["count"] == 6 and len(meta["fingerprint"]) == 32
    assert meta["seconds"] >= 0 and meta["started"] <= meta["finished"]
    train = result.run.artifact("train")
    assert train.meta["inputs"]["examples"]["fingerprint"] == meta["fingerprint"]
    assert json.loads(train.file("scaled.json").read_text()) == [2.0, 4.0, 6.0, 8.0]
    assert result.run.status == "succeeded"
    assert not (result.run.path / ".partial").exists() or not any(
        (result.run.path / ".partial").iterdir()
    )
    assert (result.run.path / "report.html").read_text().count("<h2") >= 4


def test_unchanged_steps_are_reused_and_changed_ones_rerun(
    fixtures_plugin, write_pipeline, tmp_path
):
    path = write_pipeline(PIPELINE)
    run(path, tmp_path)
    second = run(path, tmp_path, ["steps.train.model.factor=3"])
    assert [r.status for r in second.records] == ["reused", "ran", "ran"]
    reused = second.run.artifact("data")
    assert reused.meta["reused_from"].endswith("/data")
    assert json.loads(reused.file("numbers.json").read_text()) == [1, 2, 3, 4]
    third = run(path, tmp_path, ["steps.train.model.factor=3"])
    assert [r.status for r in third.records] == ["reused", "reused", "reused"]
    assert events(fixtures_plugin).count("run data") == 1


def test_force_reruns_everything_or_named_steps(fixtures_plugin, write_pipeline, tmp_path):
    path = write_pipeline(PIPELINE)
    run(path, tmp_path)
    assert [r.status for r in run(path, tmp_path, force=True).records] == ["ran"] * 3
    statuses = [r.status for r in run(path, tmp_path, force=["train"]).records]
    assert statuses == ["reused", "ran", "reused"]


def test_lost_records_fail_the_step(fixtures_plugin, write_pipeline, tmp_path):
    path = write_pipeline(PIPELINE)
    with pytest.raises(AccountingError, match=r"step 'data'.*lost records: read 6, written 3"):
        run(path, tmp_path, ["steps.data.lose=1"])
    failed = beamline.open_run("numbers", tmp_path / "runs")
    assert failed.status == "failed" and failed.steps() == []


def test_failing_step_names_step_plugin_and_run_dir_and_keeps_finished_steps(
    fixtures_plugin, write_pipeline, tmp_path
):
    path = write_pipeline(PIPELINE)
    with pytest.raises(StepFailed) as err:
        run(path, tmp_path, ["steps.train.fail=true"])
    message = str(err.value)
    failed = beamline.open_run("numbers", tmp_path / "runs")
    assert "step 'train' (component 'fit' of plugin 'core_plugin') failed" in message
    assert "ValueError: the fixture was asked to fail" in message
    assert str(failed.path) in message
    assert "asked to fail" in (failed.path / "train.error.log").read_text()
    assert failed.steps() == ["data"] and not (failed.path / "train").exists()
    assert "on_step_error train ValueError" in events(fixtures_plugin)


def test_lifecycle_hooks_are_called_in_order(fixtures_plugin, write_pipeline, tmp_path):
    path = write_pipeline(PIPELINE)
    run(path, tmp_path)
    run(path, tmp_path, ["steps.again.model.factor=5"])
    log = [e for e in events(fixtures_plugin) if not e.startswith("run ")]
    first = [
        "before_pipeline_run",
        "before_step_run data",
        "after_step_run data ran",
        "before_step_run train",
        "after_step_run train ran",
        "before_step_run again",
        "after_step_run again ran",
        "after_pipeline_run 3",
    ]
    second = [
        "before_pipeline_run",
        "after_step_run data reused",
        "after_step_run train reused",
        "before_step_run again",
        "after_step_run again ran",
        "after_pipeline_run 3",
    ]
    assert log == first + second


def _artifact_files(step_dir: Path) -> list[str]:
    return sorted(str(p.relative_to(step_dir)) for p in step_dir.rglob("*") if p.is_file())


def test_killed_run_resumes_without_redoing_finished_steps(
    fixtures_plugin, write_pipeline, tmp_path
):
    path = write_pipeline(PIPELINE)
    hold = tmp_path / "hold"
    hold.write_text("")
    runs = tmp_path / "runs"
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "beamline",
            "--runs-dir",
            str(runs),
            "run",
            str(path),
            "--set",
            f"steps.train.wait_for={hold}",
        ],
        cwd=PROJECT_DIR,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while not list(runs.glob("numbers/*/.partial/train-*/started")):
            assert child.poll() is None, "the run ended before it could be killed"
            assert time.monotonic() < deadline, "the train step never started"
            time.sleep(0.05)
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
    killed = beamline.open_run("numbers", runs)
    assert killed.status == "interrupted" and killed.steps() == ["data"]
    assert [e for e in events(fixtures_plugin) if e.startswith("run ")] == ["run data", "run train"]

    hold.unlink()  # the same parameters: the rerun must match the killed run's fingerprints
    resumed = run(path, tmp_path, [f"steps.train.wait_for={hold}"])
    assert [r.status for r in resumed.records] == ["reused", "ran", "ran"]
    assert events(fixtures_plugin).count("run data") == 1
    assert not (killed.path / ".partial").exists()
    assert beamline.open_run(killed.path).status == "interrupted"

    fresh = beamline.run(
        path, [f"steps.train.wait_for={hold}"], runs_dir=tmp_path / "fresh", force=True
    )
    for step in ("data", "train", "again"):
        a, b = resumed.run.path / step, fresh.run.path / step
        files = _artifact_files(a)
        assert files == _artifact_files(b)
        compared = [f for f in files if f != "meta.json"]
        match, mismatch, errors = filecmp.cmpfiles(a, b, compared, shallow=False)
        assert mismatch == [] and errors == []
        assert resumed.run.artifact(step).fingerprint == fresh.run.artifact(step).fingerprint


def test_python_api_refuses_a_misspelt_option_naming_the_closest(tmp_path):
    with pytest.raises(TypeError, match="'run_dir'; did you mean 'runs_dir'"):
        beamline.run(tmp_path / "p.yaml", run_dir=tmp_path)
    with pytest.raises(TypeError, match="'untill'; did you mean 'until'"):
        beamline.explain(tmp_path / "p.yaml", untill="train")
    assert not (tmp_path / "runs").exists()
