"""Real searches on a slice of the digits: trials in their own processes, a train step that takes
the best values, pruning, and a search killed with SIGKILL that resumes with exactly its trials.

Trials are tiny (1-4 epochs over 200-500 8x8 images); each still starts a Python process with its
own TensorFlow, which is most of their cost."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from data_paths import DIGITS, TESTS_DIR
from keras_support import python_env, run_script, write_examples, write_pipeline

import beamline

MODEL = "model: {component: cnn, filters: [8], dense_units: [16]}"


def _steps(tune: str, epochs: int = 1) -> str:
    return f"""\
  tune:
    component: optuna_tuner
    target: train
{tune}
  train:
    component: keras_trainer
    params_from: tune
    examples: data
    input: {{component: image_input, image_size: [8, 8]}}
    {MODEL}
    epochs: {epochs}
    batch_size: 32
"""


@pytest.fixture
def digits(tmp_path, monkeypatch):
    """A small digits examples artifact; trial processes import the test plugin too."""
    monkeypatch.syspath_prepend(str(TESTS_DIR))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(TESTS_DIR.parent), str(TESTS_DIR)]))
    write_examples(tmp_path / "examples", DIGITS, per_class=20)
    return tmp_path / "examples"


def _trials(artifact: Path) -> list[dict]:
    lines = (artifact / "trials.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


@pytest.mark.slow
def test_tiny_search_tunes_the_train_step_and_a_new_search_reruns_training_only(
    tmp_path, digits
) -> None:
    tune = """\
    space:
      learning_rate: {log_uniform: [1.0e-3, 3.0e-2]}
      model.filters: {choice: [[4], [8]]}
    objective: {metric: val_accuracy}
    trials: 3
    workers: 2
    pruner: none"""
    path = write_pipeline(tmp_path, digits, _steps(tune), name="tdigits")
    runs = tmp_path / "runs"
    result = beamline.run(path, runs_dir=runs)
    tune_dir, train_dir = result.run.path / "tune", result.run.path / "train"
    trials = _trials(tune_dir)
    assert [t["state"] for t in trials] == ["complete"] * 3
    assert all(1e-3 <= t["values"]["learning_rate"] <= 3e-2 for t in trials)
    assert {tuple(t["values"]["model.filters"]) for t in trials} <= {(4,), (8,)}
    assert all(t["peak_rss_mib"] > 100 for t in trials)  # each trial had a process of its own
    best = json.loads((tune_dir / "best.json").read_text())
    values = max(trials, key=lambda t: t["value"])["values"]
    assert best["params"] == values and best["metric"] == "val_accuracy"

    meta = json.loads((train_dir / "meta.json").read_text())
    assert meta["tuned"]["from"] == "tune" and meta["tuned"]["params"] == values
    assert meta["params"]["learning_rate"] == values["learning_rate"]
    assert meta["params"]["model"]["filters"] == values["model.filters"]
    assert meta["fingerprint_parts"]["inputs"]["params_from"] == result.records[1].fingerprint
    model = json.loads((train_dir / "model.json").read_text())
    assert model["model"]["filters"] == values["model.filters"]  # trained with the best values

    shown = subprocess.run(
        [sys.executable, "-m", "beamline", "show", "tdigits", "--runs-dir", str(runs), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        env=python_env(),
        check=True,
    )
    details = {s["step"]: s for s in json.loads(shown.stdout)["step_details"]}["tune"]["details"]
    assert details["best"]["params"] == values
    assert [t["trial"] for t in details["best_trials"]][0] == best["trial"]
    assert len(details["history"]) == 3 and "importances" in details
    report = tune_dir / "report"
    assert {"optimization_history.png", "trial_epochs.png", "summary.html"} <= {
        p.name for p in report.iterdir()
    }
    assert "best trials" in (report / "summary.html").read_text()

    same = beamline.explain(path, runs_dir=runs)
    assert [s.decision for s in same] == ["reuse", "reuse", "reuse"], [s.reasons for s in same]
    searched_again = beamline.explain(path, ["steps.tune.seed=1"], runs_dir=runs)
    assert [s.decision for s in searched_again] == ["reuse", "run", "run"]
    assert searched_again[2].reasons[0] == "parameters from step 'tune', whose best trial sets them"


@pytest.mark.slow
def test_pruning_stops_a_bad_trial_after_its_first_epoch(tmp_path, digits) -> None:
    tune = """\
    space:
      learning_rate: {log_uniform: [1.0e-7, 1.0e-1]}
    start_with: [{learning_rate: 0.02}, {learning_rate: 1.0e-7}]
    objective: {metric: val_loss}
    trials: 2
    pruner: median
    startup_trials: 1
    warmup_epochs: 0"""
    path = write_pipeline(tmp_path, digits, _steps(tune, epochs=4), name="tprune")
    result = beamline.run(path, runs_dir=tmp_path / "runs")
    good, bad = _trials(result.run.path / "tune")
    assert good["values"] == {"learning_rate": 0.02} and good["state"] == "complete"
    assert list(good["epochs"]) == ["1", "2", "3", "4"]
    assert bad["values"] == {"learning_rate": 1e-7} and bad["state"] == "pruned"
    assert list(bad["epochs"]) == ["1"] and bad["epoch"] == 1


def _study_trials(db: Path) -> list:
    import optuna

    storage = optuna.storages.RDBStorage(f"sqlite:///{db}")
    try:
        return optuna.load_study(study_name="search", storage=storage).get_trials()
    finally:
        storage.engine.dispose()


def _states(db: Path) -> list[str]:
    """The trials' states (``RUNNING started``: its process runs), read without Optuna while a
    search writes (none before its tables exist)."""
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            rows = conn.execute(
                "select t.state, a.key from trials t left join trial_user_attributes a "
                "on a.trial_id = t.trial_id and a.key = 'pid'"
            )
            return [state if key is None else f"{state} started" for state, key in rows]
    except sqlite3.Error:
        return []


@pytest.mark.slow
def test_a_killed_search_resumes_with_exactly_the_planned_trials(tmp_path, digits) -> None:
    tune = """\
    space:
      learning_rate: {log_uniform: [1.0e-3, 3.0e-2]}
    trials: 3
    pruner: none"""
    path = write_pipeline(tmp_path, digits, _steps(tune, epochs=2), name="tkill")
    runs = tmp_path / "runs"
    child = subprocess.Popen(
        [sys.executable, "-c", run_script(path, runs, [])],
        env=python_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 600
        while True:  # kill it once a trial has completed and the next one is running
            assert child.poll() is None, "the search ended before it could be killed"
            assert time.monotonic() < deadline, "no trial completed within 600 s"
            dbs = list((runs / "tkill" / ".scratch").glob("tune-*/study.db"))
            states = _states(dbs[0]) if dbs else []
            if any(s.startswith("COMPLETE") for s in states) and "RUNNING started" in states:
                break
            time.sleep(0.5)
    finally:
        child.kill()  # SIGKILL: the search process only; its trial process must die with it
        child.wait()
    before = _study_trials(dbs[0])
    done = {t.number: t.params for t in before if t.state.name == "COMPLETE"}
    (running,) = [t for t in before if t.state.name == "RUNNING"]
    pid = running.user_attrs["pid"]
    for _ in range(100):
        if not Path(f"/proc/{pid}").exists():
            break
        time.sleep(0.1)
    assert not Path(f"/proc/{pid}").exists(), "the trial process outlived the killed search"

    result = beamline.run(path, runs_dir=runs)
    trials = _trials(result.run.path / "tune")
    counted = [t for t in trials if not t.get("interrupted")]
    assert len(counted) == 3 and all(t["state"] == "complete" for t in counted)
    for number, params in done.items():  # finished trials were kept, not redone
        assert trials[number]["values"] == params and trials[number]["state"] == "complete"
    assert trials[running.number]["interrupted"] is True
    (retry,) = [t for t in trials if t.get("retry_of") == running.number]
    assert retry["values"] == running.params and retry["state"] == "complete"
    assert result.records[1].metrics["retried"] == 1.0
