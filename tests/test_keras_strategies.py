"""Training under tf.distribute strategies: mirrored over two logical CPUs, and two workers.

Each runs in subprocesses: device configuration and cluster membership are per process."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from data_paths import DIGITS
from keras_support import python_env, run_script, write_examples, write_pipeline

import beamline


def _steps(strategy: str, extra: str = "") -> str:
    return f"""\
  train:
    component: keras_trainer
    examples: data
    model: {{component: cnn, filters: [8, 16], dense_units: [32]}}
    epochs: 3
    batch_size: 64
    learning_rate: 0.01
    strategy: {strategy}
{extra}"""


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _history(runs: Path) -> dict:
    run = beamline.open_run("kdigits", runs_dir=runs)
    return json.loads(run.artifact("train").file("report", "history.json").read_text())


def _assert_learned(history: dict) -> None:
    losses = [e["loss"] for e in history["epochs"]]
    assert losses == sorted(losses, reverse=True) and len(losses) == 3
    assert history["epochs"][-1]["val_accuracy"] > 0.3  # chance is 0.1


@pytest.fixture(scope="module")
def examples(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An examples artifact of 60 digits per class."""
    folder = tmp_path_factory.mktemp("examples")
    write_examples(folder, DIGITS, per_class=60)
    return folder


@pytest.mark.slow
def test_mirrored_strategy_trains_on_two_logical_cpu_devices(tmp_path, examples) -> None:
    path = write_pipeline(tmp_path, examples, _steps("mirrored", "    cpu_devices: 2\n"))
    runs = tmp_path / "runs"
    done = subprocess.run(
        [sys.executable, "-c", run_script(path, runs, [])],
        env=python_env(),
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    history = _history(runs)
    assert history["strategy"] == "mirrored" and history["replicas"] == 2
    _assert_learned(history)


@pytest.mark.slow
def test_two_workers_train_one_model_and_end_with_equal_weights(tmp_path, examples) -> None:
    import keras
    import numpy as np

    path = write_pipeline(tmp_path, examples, _steps("multi_worker"))
    cluster = {"worker": [f"127.0.0.1:{port}" for port in _free_ports(2)]}
    workers = []
    for index in range(2):
        config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
        runs = tmp_path / f"worker{index}" / "runs"
        workers.append(
            subprocess.Popen(
                [sys.executable, "-c", run_script(path, runs, [])],
                env=python_env(TF_CONFIG=config),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    try:
        errors = [w.communicate(timeout=240)[1] for w in workers]
    finally:
        for w in workers:
            w.kill()
    for worker, error in zip(workers, errors, strict=True):
        assert worker.returncode == 0, error[-3000:]
    weights = []
    for index in range(2):
        runs = tmp_path / f"worker{index}" / "runs"
        history = _history(runs)
        assert history["strategy"] == "multi_worker" and history["replicas"] == 2
        _assert_learned(history)
        model_file = (
            beamline.open_run("kdigits", runs_dir=runs).artifact("train").file("model.keras")
        )
        weights.append(keras.saving.load_model(model_file, compile=False).get_weights())
    assert len(weights[0]) == len(weights[1])
    for a, b in zip(*weights, strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)
