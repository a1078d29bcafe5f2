"""Exact resume: a shipped pipeline's training killed (SIGKILL) at several points and rerun each
time ends with exactly the weights of an uninterrupted run, for each trainer that checkpoints
(``keras_trainer`` on digits, ``lm_trainer`` on text_generation, ``gan_trainer`` on digits_gan)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from data_paths import PIPELINES
from keras_support import python_env


@dataclass(frozen=True)
class Case:
    """A shipped pipeline file cut short: the train step, its epochs, the settings that make it
    small, when to kill it (after that many checkpointed epochs, plus a delay in seconds that
    lands the kill inside the next epoch or inside its checkpoint write) and its model files."""

    file: str
    step: str
    epochs: int
    settings: tuple[str, ...]
    kills: tuple[tuple[int, float], ...]
    models: tuple[str, ...] = ("model.keras",)

    @property
    def name(self) -> str:
        return Path(self.file).stem

    def overrides(self) -> list[str]:
        return [f"steps.{self.step}.epochs={self.epochs}", *self.settings]


CASES = {
    # digits as shipped (dropout, shuffling) with fewer epochs, plus crops, flips and brightness
    # drawn in a parallel map (the plain file passed the same test: the augmentation adds to it)
    "digits_augmented": Case(
        "digits.yaml",
        "train",
        6,
        ("steps.train.input={component: image_input, augment: [flip, crop, brightness]}",),
        kills=((1, 0.0), (4, 0.0)),
    ),
    # the character LSTM with dropout, early stopping watching eval, a smaller layer
    "text_generation": Case(
        "text_generation.yaml",
        "train",
        3,
        ("steps.train.model.units=[32]", "steps.train.batch_size=128"),
        kills=((1, 0.0), (2, 0.3)),
    ),
    # the DCGAN (noise from a generator whose state is checkpointed), narrower models; the
    # classifier before it in the file trains one epoch
    "digits_gan": Case(
        "digits_gan.yaml",
        "train_gan",
        3,
        (
            "steps.train_classifier.epochs=1",
            "steps.train_gan.generator.filters=[32, 16]",
            "steps.train_gan.discriminator.filters=[16, 32]",
            "steps.train_gan.batch_size=64",
            "steps.train_gan.sample_every=1",
        ),
        kills=((1, 0.0), (2, 0.2)),
        models=("generator.keras", "discriminator.keras"),
    ),
}


def _command(runs: Path, case: Case, *, train_only: bool = False) -> list[str]:
    sets = [arg for item in case.overrides() for arg in ("--set", item)]
    # after the first run, the train step alone, forced, on the examples of that run
    steps = (
        ["--only", case.step, "--force-step", case.step] if train_only else ["--until", case.step]
    )
    file = PIPELINES / case.file
    return [
        sys.executable,
        "-m",
        "beamline",
        "run",
        str(file),
        "--runs-dir",
        str(runs),
        *steps,
        *sets,
    ]


def _completed_epochs(runs: Path, case: Case) -> int:
    for state in (runs / case.name / ".scratch").glob(f"{case.step}-*/state.json"):
        try:
            return int(json.loads(state.read_text())["epoch"])
        except (OSError, ValueError):
            return 0
    return 0


def _kill_after(runs: Path, case: Case, epochs: int, delay: float) -> None:
    """Start the step and SIGKILL it ``delay`` s after ``epochs`` epochs are checkpointed."""
    child = subprocess.Popen(
        _command(runs, case, train_only=True),
        env=python_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 240
        while _completed_epochs(runs, case) < epochs:
            assert child.poll() is None, f"training ended before epoch {epochs} was checkpointed"
            assert time.monotonic() < deadline, f"epoch {epochs} not checkpointed within 240 s"
            time.sleep(0.02)
        time.sleep(delay)
        assert child.poll() is None, f"training ended before it was killed after epoch {epochs}"
    finally:
        child.kill()
        child.wait()


def _final(runs: Path, case: Case, *, train_only: bool = False) -> Path:
    done = subprocess.run(
        _command(runs, case, train_only=train_only),
        env=python_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    (train,) = sorted((runs / case.name).glob(f"*/{case.step}"))[-1:]
    return train


def _weights(train: Path, case: Case) -> list[np.ndarray]:
    import keras

    from beamline_plugins.generative.models import minibatch_stddev_layer

    minibatch_stddev_layer()  # registers the discriminator's own layer for loading
    tensors = []
    for name in case.models:
        model = keras.saving.load_model(str(train / name), compile=False)
        tensors += [w.numpy() for w in model.weights]
    return tensors


@pytest.mark.slow
@pytest.mark.parametrize("variant", sorted(CASES))
def test_training_killed_at_several_points_ends_with_the_uninterrupted_weights(
    tmp_path: Path, variant: str
) -> None:
    case = CASES[variant]
    runs = tmp_path / "runs"
    straight = _final(runs, case)
    for epochs, delay in case.kills:
        _kill_after(runs, case, epochs, delay)
    last_kill = case.kills[-1][0]
    assert _completed_epochs(runs, case) >= last_kill
    resumed = _final(runs, case, train_only=True)
    assert resumed != straight
    history = json.loads((resumed / "report" / "history.json").read_text())
    assert history["resumed_from_epoch"] >= last_kill
    assert [e["epoch"] for e in history["epochs"]] == list(range(1, case.epochs + 1))
    mine, theirs = _weights(resumed, case), _weights(straight, case)
    assert len(mine) == len(theirs) > 0
    for resumed_tensor, straight_tensor in zip(mine, theirs, strict=True):
        np.testing.assert_array_equal(resumed_tensor, straight_tensor)
    expected = json.loads((straight / "report" / "history.json").read_text())["epochs"]
    # the epoch sums add the same per-batch values grouped differently after a resume
    loss = "d_loss" if "d_loss" in expected[0] else "loss"
    assert [e[loss] for e in history["epochs"]] == pytest.approx(
        [e[loss] for e in expected], rel=1e-6
    )
    assert not list((runs / case.name / ".scratch").glob(f"{case.step}-*"))
