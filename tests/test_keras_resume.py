"""A training run killed mid-fit (SIGKILL) resumes from its last completed epoch."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
from data_paths import DIGITS, TESTS_DIR
from keras_support import python_env, run_script, write_examples, write_pipeline

import beamline

EPOCHS = 8
STEPS = f"""\
  train:
    component: keras_trainer
    examples: data
    input: {{component: image_input, image_size: [32, 32]}}
    model: {{component: cnn, filters: [32, 64], dense_units: [128]}}
    epochs: {EPOCHS}
    lr_schedule: cosine
"""


@pytest.mark.slow
def test_a_killed_fit_resumes_after_its_last_completed_epoch(tmp_path, monkeypatch) -> None:
    monkeypatch.syspath_prepend(str(TESTS_DIR))
    write_examples(tmp_path / "examples", DIGITS, per_class=100)
    path = write_pipeline(tmp_path, tmp_path / "examples", STEPS)
    runs = tmp_path / "runs"
    scratch = runs / "kdigits" / ".scratch"
    child = subprocess.Popen(
        [sys.executable, "-c", run_script(path, runs, [])],
        env=python_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while not list(scratch.glob("train-*/state.json")):
            assert child.poll() is None, "training ended before it could be killed"
            assert time.monotonic() < deadline, "no epoch completed within 120 s"
            time.sleep(0.05)
        time.sleep(0.3)  # let it get into the next epoch
    finally:
        child.kill()
        child.wait()
    (state_file,) = scratch.glob("train-*/state.json")
    done = json.loads(state_file.read_text())["epoch"]
    assert 1 <= done < EPOCHS, f"killed after epoch {done}: too late to test resuming"
    assert beamline.open_run("kdigits", runs_dir=runs).status == "interrupted"

    messages: list[str] = []

    class Recorder(beamline.progress.Reporter):
        """Keeps the messages steps tell the user."""

        def step_message(self, step: str, message: str) -> None:
            messages.append(message)

    result = beamline.run(path, runs_dir=runs, reporter=Recorder())
    assert [r.status for r in result.records] == ["reused", "ran"]
    history = json.loads(result.run.artifact("train").file("report", "history.json").read_text())
    assert history["resumed_from_epoch"] == done
    assert [e["epoch"] for e in history["epochs"]] == list(range(1, EPOCHS + 1))
    assert any(m.startswith(f"resuming after epoch {done} of {EPOCHS}") for m in messages)
    rates = [e["learning_rate"] for e in history["epochs"]]
    assert rates == sorted(rates, reverse=True)  # the schedule continued, it did not restart
    assert history["epochs"][-1]["val_accuracy"] > 0.9
    assert not state_file.parent.exists()
