"""Train, evaluate and export digit classifiers through ``beamline.run``, then predict raw files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from data_paths import DIGITS, TESTS_DIR
from keras_support import write_examples, write_pipeline

import beamline
from beamline import Artifact

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

STEPS = """\
  train:
    component: keras_trainer
    examples: data
    model: {component: cnn, filters: [16, 32], dense_units: [64], dropout: 0.1}
    epochs: 6
    learning_rate: 0.003
    lr_schedule: cosine
  evaluate:
    component: classification_evaluator
    model: train
    examples: data
    thresholds: {accuracy: 0.9}
  export:
    component: saved_model_exporter
    model: train
    blessing: evaluate
"""


@pytest.fixture(autouse=True)
def _importable_support(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(TESTS_DIR))


@pytest.fixture(scope="module")
def digits_examples(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """An examples artifact of all 1797 digits (about 80/10/10 train/eval/test)."""
    folder = tmp_path_factory.mktemp("examples")
    return folder, write_examples(folder, DIGITS)


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory: pytest.TempPathFactory, digits_examples) -> beamline.Run:
    """One run of data -> train -> evaluate -> export."""
    folder = tmp_path_factory.mktemp("pipeline")
    path = write_pipeline(folder, digits_examples[0], STEPS)
    result = beamline.run(path, runs_dir=folder / "runs")
    assert [r.status for r in result.records] == ["ran"] * 4
    return result.run


@pytest.mark.slow
def test_trainer_writes_model_history_curve_and_tensorboard_logs(digits_run) -> None:
    train = digits_run.artifact("train")
    assert train.file("model.keras").is_file()
    history = json.loads(train.file("report", "history.json").read_text())
    assert [e["epoch"] for e in history["epochs"]] == [1, 2, 3, 4, 5, 6]
    assert history["resumed_from_epoch"] == 0 and history["strategy"] == "default"
    rates = [e["learning_rate"] for e in history["epochs"]]
    assert rates == sorted(rates, reverse=True)  # cosine decay
    assert train.file("report", "training_curve.png").read_bytes().startswith(PNG_MAGIC)
    assert list(train.file("logs", "train").glob("events.out.tfevents.*"))
    assert list(train.file("logs", "eval").glob("events.out.tfevents.*"))
    assert train.metrics["val_accuracy"] > 0.9
    info = json.loads(train.file("model.json").read_text())
    assert info["classes"] == [str(i) for i in range(10)]
    assert info["inputs"]["image"]["shape"] == [8, 8, 1]
    assert not (digits_run.path.parent / ".scratch").exists() or not any(
        (digits_run.path.parent / ".scratch").iterdir()
    )  # checkpoints are removed once the step completed


@pytest.mark.slow
def test_evaluator_writes_per_class_metrics_confusion_matrix_and_blessing(
    digits_run, digits_examples
) -> None:
    evaluate = digits_run.artifact("evaluate")
    metrics = json.loads(evaluate.file("metrics.json").read_text())
    test_count = len(digits_examples[1]["test"])
    assert metrics["count"] == test_count and metrics["split"] == "test"
    assert metrics["accuracy"] >= 0.9 and evaluate.metrics["accuracy"] == metrics["accuracy"]
    assert sorted(metrics["per_class"]) == [str(i) for i in range(10)]
    assert sum(c["support"] for c in metrics["per_class"].values()) == test_count
    matrix = metrics["confusion_matrix"]
    assert sum(map(sum, matrix)) == test_count
    assert sum(matrix[i][i] for i in range(10)) == round(metrics["accuracy"] * test_count)
    assert evaluate.file("report", "confusion_matrix.png").read_bytes().startswith(PNG_MAGIC)
    blessing = json.loads(evaluate.file("blessing.json").read_text())
    assert blessing == {
        "blessed": True,
        "reasons": [],
        "thresholds": {"accuracy": 0.9},
        "baseline": None,
    }


@pytest.mark.slow
def test_export_predicts_on_raw_files_what_the_evaluator_predicted(digits_run) -> None:
    import numpy as np

    from beamline_plugins.keras.predict import predict_files

    lines = digits_run.artifact("evaluate").file("predictions.jsonl").read_text().splitlines()
    evaluated = [json.loads(line) for line in lines]
    files = [e["ids"]["path"] for e in evaluated]
    exported = predict_files(digits_run.artifact("export").path, files)
    assert [p["input"] for p in exported] == files
    assert [p["label"] for p in exported] == [e["predicted"] for e in evaluated]
    np.testing.assert_allclose(
        [list(p["scores"].values()) for p in exported],
        [e["scores"] for e in evaluated],
        atol=2e-6,
    )


@pytest.mark.slow
def test_predict_command_prints_label_and_scores_per_file(digits_run) -> None:
    import click
    from click.testing import CliRunner

    from beamline.plugins import load_plugins

    cli = click.Group("pipeline")
    load_plugins().manager.hook.register_commands(cli=cli)
    export = str(digits_run.artifact("export").path)
    files = [str(DIGITS / "3" / "0003.png"), str(DIGITS / "7" / "0007.png")]
    result = CliRunner().invoke(cli, ["predict", export, *files, "--json"])
    assert result.exit_code == 0, result.output
    predictions = json.loads(result.output)
    assert [p["input"] for p in predictions] == files
    assert all(sorted(p["scores"]) == [str(i) for i in range(10)] for p in predictions)
    assert all(abs(sum(p["scores"].values()) - 1) < 1e-4 for p in predictions)
    assert all(p["label"] == max(p["scores"], key=p["scores"].get) for p in predictions)

    text = CliRunner().invoke(cli, ["predict", export, files[0]])
    assert text.exit_code == 0 and text.output.startswith(
        f"{files[0]}: {predictions[0]['label']} ("
    )

    broken = CliRunner().invoke(cli, ["predict", export, __file__])
    assert broken.exit_code == 1 and "cannot be read by the model" in broken.output


@pytest.mark.slow
def test_a_worse_model_is_not_blessed_against_the_last_blessed_and_not_exported(
    digits_run, digits_examples
) -> None:
    runs_dir = digits_run.path.parent.parent
    path = Path(digits_run.info["pipeline_file"])
    again = beamline.run(path, runs_dir=runs_dir)
    assert [r.status for r in again.records] == ["reused"] * 4

    worse = {"steps.train.model": {"component": "logistic_regression"}, "steps.train.epochs": 1}
    with pytest.raises(beamline.GateFailed, match="did not bless the model: accuracy .* below"):
        beamline.run(path, worse, runs_dir=runs_dir)
    failed = beamline.open_run("kdigits", runs_dir=runs_dir)
    blessing = json.loads(failed.artifact("evaluate").file("blessing.json").read_text())
    assert not blessing["blessed"]
    assert blessing["baseline"]["run"] == again.run.run_id  # the latest blessed, reused or not
    assert "export" not in failed.steps()


@pytest.mark.slow
def test_early_stopping_stops_and_mixed_precision_computes_in_bfloat16(
    tmp_path, digits_examples
) -> None:
    import keras

    steps = """\
  train:
    component: keras_trainer
    examples: data
    model: {component: mlp, units: [32]}
    epochs: 30
    optimizer: sgd
    learning_rate: 3.0
    lr_schedule: exponential
    early_stopping: 1
    mixed_precision: true
"""
    path = write_pipeline(tmp_path, digits_examples[0], steps)
    run = beamline.run(path, runs_dir=tmp_path / "runs").run
    train: Artifact = run.artifact("train")
    history = json.loads(train.file("report", "history.json").read_text())
    assert history["stopped_early"] and len(history["epochs"]) < 30
    assert history["best_epoch"] < len(history["epochs"]) and history["restored_best_weights"]
    best = history["epochs"][history["best_epoch"] - 1]
    assert train.metrics["val_loss"] == pytest.approx(best["val_loss"])  # the weights kept
    assert history["precision_policy"] == "mixed_bfloat16"
    rates = [e["learning_rate"] for e in history["epochs"]]
    assert rates[1] == pytest.approx(rates[0] * 0.9, rel=1e-3)
    model = keras.saving.load_model(train.file("model.keras"), compile=False)
    assert model.layers[2].dtype_policy.name == "mixed_bfloat16"
    assert model.get_layer("scores").dtype_policy.name == "float32"
    assert keras.mixed_precision.global_policy().name == "float32"  # restored after the step
