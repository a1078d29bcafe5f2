"""Exact resume: a shipped pipeline's training killed (SIGKILL) at several points and rerun each
time ends with exactly the weights of an uninterrupted run."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from data_paths import PIPELINES
from keras_support import python_env

DIGITS_YAML = PIPELINES / "digits.yaml"
EPOCHS = 6
#: digits as shipped (dropout, shuffling) with fewer epochs, plus crops, flips and brightness
#: drawn in a parallel map (the plain file passed the same test: the augmentation adds to it).
SETTINGS = {
    "digits_augmented": [
        f"steps.train.epochs={EPOCHS}",
        "steps.train.input={component: image_input, augment: [flip, crop, brightness]}",
    ],
}


def _command(runs: Path, overrides: list[str], *, train_only: bool = False) -> list[str]:
    sets = [arg for item in overrides for arg in ("--set", item)]
    # after the first run, the train step alone, forced, on the examples of that run
    steps = ["--only", "train", "--force-step", "train"] if train_only else ["--until", "train"]
    return [
        sys.executable,
        "-m",
        "beamline",
        "run",
        str(DIGITS_YAML),
        "--runs-dir",
        str(runs),
        *steps,
        *sets,
    ]


def _completed_epochs(runs: Path) -> int:
    for state in (runs / "digits" / ".scratch").glob("train-*/state.json"):
        try:
            return int(json.loads(state.read_text())["epoch"])
        except (OSError, ValueError):
            return 0
    return 0


def _kill_after(runs: Path, overrides: list[str], epochs: int) -> None:
    """Start the pipeline and SIGKILL it once ``epochs`` epochs are checkpointed."""
    child = subprocess.Popen(
        _command(runs, overrides, train_only=True),
        env=python_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 240
        while _completed_epochs(runs) < epochs:
            assert child.poll() is None, f"training ended before epoch {epochs} was checkpointed"
            assert time.monotonic() < deadline, f"epoch {epochs} not checkpointed within 240 s"
            time.sleep(0.02)
    finally:
        child.kill()
        child.wait()


def _final(runs: Path, overrides: list[str], *, train_only: bool = False) -> Path:
    done = subprocess.run(
        _command(runs, overrides, train_only=train_only),
        env=python_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    (train,) = sorted((runs / "digits").glob("*/train"))[-1:]
    return train


def _weights(train: Path) -> list[np.ndarray]:
    import keras

    model = keras.saving.load_model(str(train / "model.keras"), compile=False)
    return [w.numpy() for w in model.weights]


@pytest.mark.slow
@pytest.mark.parametrize("variant", sorted(SETTINGS))
def test_training_killed_at_several_points_ends_with_the_uninterrupted_weights(
    tmp_path: Path, variant: str
) -> None:
    overrides = SETTINGS[variant]
    runs = tmp_path / "runs"
    straight = _final(runs, overrides)
    for epochs in (1, 4):
        _kill_after(runs, overrides, epochs)
    resumed = _final(runs, overrides, train_only=True)
    assert resumed != straight
    history = json.loads((resumed / "report" / "history.json").read_text())
    assert history["resumed_from_epoch"] >= 4
    assert [e["epoch"] for e in history["epochs"]] == list(range(1, EPOCHS + 1))
    for mine, theirs in zip(_weights(resumed), _weights(straight), strict=True):
        np.testing.assert_array_equal(mine, theirs)
    expected = json.loads((straight / "report" / "history.json").read_text())["epochs"]
    # the epoch sums add the same per-batch values grouped differently after a resume
    assert [e["loss"] for e in history["epochs"]] == pytest.approx(
        [e["loss"] for e in expected], rel=1e-6
    )
    assert not list((runs / "digits" / ".scratch").glob("train-*"))
