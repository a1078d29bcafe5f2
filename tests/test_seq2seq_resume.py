"""Resume of the ``model.fit`` trainers (``seq2seq_trainer``, ``forecast_trainer``): a training
killed with SIGKILL after its second checkpointed epoch and rerun continues after that epoch,
from the saved weights, and leaves no scratch folder behind.

Each case trains a small real task (number words -> digits with an LSTM encoder-decoder; the
Mauna Loa CO2 windows with a 1-D CNN) in a subprocess, kills it once ``state.json`` names epoch
2, then reruns the same file in this process.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from data_paths import PIPELINES, TESTS_DIR
from keras_support import python_env

import beamline

EPOCHS = 3
NUMBER_WORDS = f"""name: resumed
steps:
  ingest:
    component: pairs_csv
    path: {TESTS_DIR / "data" / "number_words" / "number_words.csv"}
    transforms: [{{component: seq2seq_vocabulary, source_level: word, target_level: space}}]
    split: {{train: 0.8, eval: 0.1, test: 0.1, key: source}}
  train:
    component: seq2seq_trainer
    examples: ingest
    model: {{component: lstm_attention, embedding_dim: 16, units: 32}}
    epochs: {EPOCHS}
    batch_size: 16
    learning_rate: 0.01
    warmup_steps: 0
"""
CO2 = (PIPELINES / "co2_forecast.yaml").read_text(encoding="utf-8")
CO2 = CO2.replace("name: co2_forecast", "name: resumed").split("  evaluate:")[0]
CO2_SETTINGS = {
    "steps.train.epochs": EPOCHS,
    "steps.train.batch_size": 1,  # a second or so per epoch: time to kill it in between
    "steps.train.model": {"component": "cnn_forecaster", "filters": [8]},
}
CASES = {"seq2seq": (NUMBER_WORDS, {}), "forecast": (CO2, CO2_SETTINGS)}


def _checkpointed_epochs(runs: Path) -> int:
    for state in (runs / "resumed" / ".scratch").glob("train-*/state.json"):
        try:
            return int(json.loads(state.read_text())["epoch"])
        except (OSError, ValueError, KeyError):
            return 0
    return 0


def _kill_after(path: Path, runs: Path, settings: dict, epochs: int) -> None:
    sets = [arg for key, value in settings.items() for arg in ("--set", f"{key}={value}")]
    command = [sys.executable, "-m", "beamline", "run", str(path), "--runs-dir", str(runs)]
    child = subprocess.Popen(
        [*command, *sets],
        env=python_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 240
        while _checkpointed_epochs(runs) < epochs:
            assert child.poll() is None, f"training ended before epoch {epochs} was checkpointed"
            assert time.monotonic() < deadline, f"epoch {epochs} not checkpointed within 240 s"
            time.sleep(0.01)
        child.send_signal(signal.SIGKILL)
    finally:
        child.kill()
        child.wait()


@pytest.mark.slow
@pytest.mark.parametrize("trainer", sorted(CASES))
def test_a_killed_training_reruns_from_its_last_checkpointed_epoch(
    tmp_path: Path, trainer: str
) -> None:
    text, settings = CASES[trainer]
    path, runs = tmp_path / "resumed.yaml", tmp_path / "runs"
    path.write_text(text, encoding="utf-8")
    _kill_after(path, runs, settings, 2)
    killed_at = _checkpointed_epochs(runs)
    assert 2 <= killed_at < EPOCHS

    run = beamline.run(path, settings, runs_dir=runs).run
    train = run.artifact("train").path
    history = json.loads((train / "report" / "history.json").read_text())
    assert history["resumed_from_epoch"] == killed_at
    epochs = history["epochs"]
    assert [e["epoch"] for e in epochs] == list(range(1, EPOCHS + 1))
    # the first epoch after the resume starts from the saved weights, not from new ones
    assert epochs[killed_at]["loss"] < 0.8 * epochs[0]["loss"]
    assert (train / "model.keras").exists()
    assert not list((runs / "resumed" / ".scratch").glob("train-*"))
