"""pipelines/digits_gan.yaml, reduced: ingest a subset of the digits, train a classifier and a
GAN, score the samples against real and noise images; a killed GAN fit resumes."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
from data_paths import DIGITS, PIPELINES

import beamline
from beamline.progress import Reporter

PIPELINE_FILE = PIPELINES / "digits_gan.yaml"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
PER_CLASS = 80


def reduced(data: Path, **gan: object) -> dict[str, object]:
    """Overrides for a quick run: a subset of digits, few epochs, few samples."""
    overrides: dict[str, object] = {
        "steps.ingest.root": str(data),
        "steps.train_classifier.epochs": 20,
        "steps.train_gan.epochs": 3,
        "steps.train_gan.sample_every": 2,
        "steps.evaluate_gan.samples": 200,
        "steps.evaluate_gan.grid_size": 5,
    }
    overrides.update({f"steps.train_gan.{k}": v for k, v in gan.items()})
    return overrides


@pytest.fixture(scope="module")
def digits_subset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first ``PER_CLASS`` images of each digit, in class folders."""
    root = tmp_path_factory.mktemp("digits")
    for folder in sorted(p for p in DIGITS.iterdir() if p.is_dir()):
        (root / folder.name).mkdir()
        for file in sorted(folder.glob("*.png"))[:PER_CLASS]:
            shutil.copy2(file, root / folder.name / file.name)
    return root


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One runs folder for the module: later runs reuse the ingest and classifier steps."""
    return tmp_path_factory.mktemp("gan") / "runs"


@pytest.fixture(scope="module")
def gan_run(digits_subset: Path, runs_dir: Path) -> beamline.Run:
    """One reduced run of digits_gan.yaml."""
    result = beamline.run(PIPELINE_FILE, reduced(digits_subset), runs_dir=runs_dir)
    assert [r.step for r in result.records] == [
        "ingest",
        "train_classifier",
        "train_gan",
        "evaluate_gan",
    ]
    return result.run


@pytest.mark.slow
def test_gan_trainer_writes_models_history_and_sample_grids(gan_run: beamline.Run) -> None:
    train = gan_run.artifact("train_gan")
    assert train.file("generator.keras").is_file() and train.file("discriminator.keras").is_file()
    history = json.loads(train.file("report", "history.json").read_text())
    assert [e["epoch"] for e in history["epochs"]] == [1, 2, 3]
    for epoch in history["epochs"]:
        assert math.isfinite(epoch["d_loss"]) and math.isfinite(epoch["g_loss"])
        assert 0.0 <= epoch["d_real_accuracy"] <= 1.0
    assert history["resumed_from_epoch"] == 0 and history["strategy"] == "default"
    for grid in ("samples_epoch_002.png", "samples.png", "losses.png"):
        assert train.file("report", grid).read_bytes().startswith(PNG_MAGIC), grid
    assert not train.file("report", "samples_epoch_003.png").exists()
    info = json.loads(train.file("gan.json").read_text())
    assert info["image_shape"] == [8, 8, 1] and info["classes"] == [str(i) for i in range(10)]
    assert train.metrics["epochs"] == 3.0 and "g_loss" in train.metrics
    scratch = gan_run.path.parent / ".scratch"
    assert not list(scratch.glob("train_gan-*"))  # checkpoints go once the step completed


@pytest.mark.slow
def test_evaluator_writes_scores_baselines_grid_and_blessing(gan_run: beamline.Run) -> None:
    evaluate = gan_run.artifact("evaluate_gan")
    details = json.loads(evaluate.file("metrics.json").read_text())
    metrics = details["metrics"]
    for prefix in ("", "real_", "noise_"):
        assert 0.1 <= metrics[f"{prefix}confidence"] <= 1.0
        assert 0.0 <= metrics[f"{prefix}evenness"] <= 1.0
        assert 0.0 < metrics[f"{prefix}coverage"] <= 1.0
        assert 1.0 <= metrics[f"{prefix}inception_score"] <= 10.0
    assert sum(details["sets"]["generated"]["histogram"]) == 200
    assert sum(details["sets"]["noise"]["histogram"]) == 200
    assert details["examples_step"] == "ingest"  # the classifier's examples by default
    for plot in ("generated.png", "class_histogram.png"):
        assert evaluate.file("report", plot).read_bytes().startswith(PNG_MAGIC), plot
    blessing = json.loads(evaluate.file("blessing.json").read_text())
    assert blessing["thresholds"] == {"confidence": 0.7, "evenness": 0.9, "coverage": 1.0}
    assert blessing["blessed"] == (not blessing["reasons"])
    assert evaluate.metrics["blessed"] == float(blessing["blessed"])
    assert evaluate.metrics["confidence"] == pytest.approx(metrics["confidence"])


@pytest.mark.slow
def test_real_digits_are_classified_more_confidently_and_evenly_than_noise(
    gan_run: beamline.Run,
) -> None:
    metrics = json.loads(gan_run.artifact("evaluate_gan").file("metrics.json").read_text())
    metrics = metrics["metrics"]
    assert metrics["real_confidence"] > metrics["noise_confidence"] + 0.1
    assert metrics["real_evenness"] > metrics["noise_evenness"]
    assert metrics["real_inception_score"] > 1.5 * metrics["noise_inception_score"]
    assert metrics["real_coverage"] == 1.0


class StopAfterEpoch(Reporter):
    """Interrupts the run (like Ctrl-C) once ``train_gan`` reported ``epoch``."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def step_progress(self, step: str, completed: float, total: float | None, message: str) -> None:
        """Raise KeyboardInterrupt after the chosen epoch of the GAN step."""
        if step == "train_gan" and completed == self.epoch:
            raise KeyboardInterrupt


@pytest.mark.slow
def test_an_interrupted_conditional_gan_resumes_after_its_last_epoch(
    gan_run: beamline.Run, digits_subset: Path, runs_dir: Path
) -> None:
    overrides = reduced(digits_subset, epochs=4, conditional=True)
    with pytest.raises(KeyboardInterrupt):
        beamline.run(PIPELINE_FILE, overrides, runs_dir=runs_dir, reporter=StopAfterEpoch(2))
    (state,) = (runs_dir / "digits_gan" / ".scratch").glob("train_gan-*/state.json")
    assert json.loads(state.read_text())["epoch"] == 2

    result = beamline.run(PIPELINE_FILE, overrides, runs_dir=runs_dir)
    status = {r.step: r.status for r in result.records}
    assert status == {
        "ingest": "reused",
        "train_classifier": "reused",
        "train_gan": "ran",
        "evaluate_gan": "ran",
    }
    train = result.run.artifact("train_gan")
    history = json.loads(train.file("report", "history.json").read_text())
    assert history["resumed_from_epoch"] == 2
    assert [e["epoch"] for e in history["epochs"]] == [1, 2, 3, 4]
    # the grid of epoch 2 was drawn before the interruption and still reaches the report
    assert train.file("report", "samples_epoch_002.png").is_file()
    assert train.file("report", "samples_epoch_004.png").is_file()
    assert json.loads(train.file("gan.json").read_text())["conditional"] is True
    metrics = result.run.artifact("evaluate_gan").metrics
    assert 0.0 <= metrics["label_agreement"] <= 1.0
