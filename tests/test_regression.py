"""Regression end to end: ``table_input``, ``linear_regression``/``mlp``, ``keras_trainer``,
``regression_evaluator``, the exporter and ``pipeline predict`` on table rows.

The fast tests build examples artifacts by hand (``beamline.examples`` codec) from generated
tables whose true coefficients are known; the slow test runs ``pipelines/diabetes.yaml``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from data_paths import DIABETES_CSV, PIPELINES, TESTS_DIR
from keras_support import write_pipeline

import beamline
from beamline.examples import encode_example, write_tfrecords
from beamline_plugins.keras.regression import check_thresholds, lower_is_better, regression_metrics

COEFFICIENTS = {"x1": 3.0, "x2": -2.0, "x3": 0.5}
INTERCEPT = 10.0
# Very different scales per column: without normalisation a linear fit would crawl.
SCALES = {"x1": (50.0, 10.0), "x2": (-3.0, 0.5), "x3": (1000.0, 200.0)}


@pytest.fixture(autouse=True)
def _importable_support(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(TESTS_DIR))


def write_table_examples(
    dest: Path, rows: dict[str, list[dict]], dtypes: dict[str, str], label: str
) -> Path:
    """Write an examples artifact of table rows per split (a value of None: missing)."""
    modality = {"float": "numeric", "int64": "numeric", "bytes": "categorical"}
    for split, split_rows in rows.items():
        folder = dest / "examples" / split
        folder.mkdir(parents=True, exist_ok=True)
        records = [
            encode_example({k: (dtypes[k], [v]) for k, v in row.items() if v is not None})
            for row in split_rows
        ]
        write_tfrecords(folder / "part-00000-of-00001.tfrecord.gz", records)
    spec = {
        "features": {
            name: {"dtype": dtype, "modality": "label" if name == label else modality[dtype]}
            for name, dtype in dtypes.items()
        },
        "label": label,
        "classes": None,
        "splits": {split: len(split_rows) for split, split_rows in rows.items()},
    }
    (dest / "features.json").write_text(json.dumps(spec), encoding="utf-8")
    return dest


def linear_rows(count: int, seed: int, noise: float = 0.1) -> list[dict]:
    """Rows of y = 3 x1 - 2 x2 + 0.5 x3 + 10 + noise, on very different column scales."""
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(count):
        row = {name: float(rng.normal(mean, std)) for name, (mean, std) in SCALES.items()}
        y = INTERCEPT + sum(COEFFICIENTS[n] * row[n] for n in COEFFICIENTS)
        rows.append({**row, "y": y + float(rng.normal(0, noise))})
    return rows


LINEAR_DTYPES = {"x1": "float", "x2": "float", "x3": "float", "y": "float"}


@pytest.fixture(scope="module")
def linear_examples(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """An examples artifact of a noisy linear table: 400 train, 60 eval, 60 test rows."""
    rows = {"train": linear_rows(400, 1), "eval": linear_rows(60, 2), "test": linear_rows(60, 3)}
    folder = tmp_path_factory.mktemp("linear")
    return write_table_examples(folder, rows, LINEAR_DTYPES, "y"), rows


LINEAR_STEPS = """\
  train:
    component: keras_trainer
    examples: data
    input: {component: table_input, task: regression}
    model: {component: linear_regression}
    epochs: 40
    learning_rate: 0.05
  evaluate:
    component: regression_evaluator
    model: train
    examples: data
    thresholds: {r2: 0.99, mae: 1.0}
  export:
    component: saved_model_exporter
    model: train
    blessing: evaluate
"""


@pytest.fixture(scope="module")
def linear_run(tmp_path_factory: pytest.TempPathFactory, linear_examples) -> beamline.Run:
    """data -> train (linear_regression) -> evaluate -> export, once for the module."""
    folder = tmp_path_factory.mktemp("pipeline")
    path = write_pipeline(folder, linear_examples[0], LINEAR_STEPS, name="linear")
    result = beamline.run(path, runs_dir=folder / "runs")
    assert [r.status for r in result.records] == ["ran"] * 4
    return result.run


# --- table_input -----------------------------------------------------------------------------


def test_table_input_normalisation_and_vocabulary_come_from_the_train_split_only(
    tmp_path,
) -> None:
    from beamline import Artifact
    from beamline_plugins.keras.table_input import TableInput

    train = [{"a": float(v), "c": "red", "n": v, "y": 2.0 * v} for v in range(1, 11)]
    train[3]["a"] = None  # a missing value is left out of the statistics
    train[4]["c"] = "blue"
    evaluate = [{"a": 1000.0 + v, "c": "green", "n": 99, "y": 5000.0} for v in range(10)]
    dtypes = {"a": "float", "c": "bytes", "n": "int64", "y": "float"}
    folder = write_table_examples(tmp_path, {"train": train, "eval": evaluate}, dtypes, "y")
    examples = Artifact(folder, {})
    pipe = TableInput(categorical=["c"])

    inputs = pipe.model_inputs(examples)
    a = np.array([r["a"] for r in train if r["a"] is not None])
    n = np.array([r["n"] for r in train], dtype=np.float64)
    assert inputs["a"]["mean"] == pytest.approx(a.mean()) and inputs["a"]["missing"] == 1
    assert inputs["a"]["variance"] == pytest.approx(a.var())
    assert inputs["n"]["mean"] == pytest.approx(n.mean())  # int64 columns are numeric too
    assert inputs["c"]["vocabulary"] == ["red", "blue"]  # by train frequency; no "green"
    target = pipe.target_stats(examples)
    assert target["mean"] == pytest.approx(np.mean([r["y"] for r in train]))
    assert target["count"] == 10

    # The eval rows are parsed with the train statistics: the missing train value becomes the
    # train mean, and the unseen category reaches the model as text (the lookup's OOV slot).
    (features, labels), *_ = list(pipe.dataset(examples, "train", inputs=inputs, batch_size=10))
    assert features["a"].shape == (10, 1)
    assert features["a"].numpy()[3, 0] == pytest.approx(a.mean())
    (features, labels), *_ = list(pipe.dataset(examples, "eval", inputs=inputs, batch_size=10))
    assert labels.numpy().tolist() == [5000.0] * 10
    assert set(features["c"].numpy()[:, 0]) == {b"green"}


def test_regression_rejects_a_text_label_and_classification_losses(tmp_path) -> None:
    from beamline import Artifact
    from beamline_plugins.keras.fit_options import resolve_loss
    from beamline_plugins.keras.table_input import TableInput

    rows = {"train": [{"a": 1.0, "y": "big"}]}
    folder = write_table_examples(tmp_path, rows, {"a": "float", "y": "bytes"}, "y")
    with pytest.raises(beamline.PipelineError, match="needs a numeric label"):
        TableInput().label_name(Artifact(folder, {}))
    assert resolve_loss("auto", "regression") == "mse"
    assert resolve_loss("auto", "classification") == "crossentropy"
    assert resolve_loss("huber", "regression") == "huber"
    with pytest.raises(beamline.PipelineError, match="does not fit a regression"):
        resolve_loss("crossentropy", "regression")
    with pytest.raises(beamline.PipelineError, match="does not fit a classification"):
        resolve_loss("mse", "classification")


# --- evaluator arithmetic and blessing ------------------------------------------------------


def test_regression_metrics_match_numpy_and_the_baseline_predicts_the_train_mean() -> None:
    rng = np.random.default_rng(0)
    y = rng.normal(150, 70, 200)
    p = y + rng.normal(5, 30, 200)
    m = regression_metrics(y, p, train_mean=140.0)
    assert m["count"] == 200
    assert m["mae"] == pytest.approx(np.mean(np.abs(y - p)))
    assert m["rmse"] == pytest.approx(np.sqrt(np.mean((y - p) ** 2)))
    assert m["mse"] == pytest.approx(np.mean((y - p) ** 2))
    assert m["r2"] == pytest.approx(1 - np.sum((y - p) ** 2) / np.sum((y - y.mean()) ** 2))
    assert m["mean_residual"] == pytest.approx(np.mean(y - p))
    assert m["max_error"] == pytest.approx(np.max(np.abs(y - p)))
    base = m["baseline"]
    assert base["prediction"] == 140.0
    assert base["mae"] == pytest.approx(np.mean(np.abs(y - 140.0)))
    assert base["rmse"] == pytest.approx(np.sqrt(np.mean((y - 140.0) ** 2)))
    assert base["r2"] < 0 and base["r2"] == pytest.approx(
        1 - np.sum((y - 140.0) ** 2) / np.sum((y - y.mean()) ** 2)
    )
    perfect = regression_metrics(y, y, train_mean=float(y.mean()))
    assert perfect["r2"] == 1.0 and perfect["mae"] == 0.0
    assert perfect["baseline"]["r2"] == pytest.approx(0.0, abs=1e-12)


def test_thresholds_are_minimums_for_r2_and_maximums_for_errors() -> None:
    metrics = regression_metrics(np.array([1.0, 2.0, 3.0, 4.0]), np.array([1.1, 2.1, 2.9, 4.2]), 2)
    assert check_thresholds(metrics, {"r2": 0.9, "mae": 0.2, "rmse": 0.2}) == []
    refused = check_thresholds(metrics, {"r2": 0.999, "mae": 0.1, "baseline.r2": 0.5})
    assert [r.split()[0] for r in refused] == ["r2", "mae", "baseline.r2"]
    assert "mae 0.125 > 0.1" in refused[1]
    assert lower_is_better("mae") and lower_is_better("baseline.rmse") and lower_is_better("loss")
    assert not lower_is_better("r2")
    with pytest.raises(beamline.PipelineError, match="unknown metric 'accuracy'"):
        check_thresholds(metrics, {"accuracy": 0.9})


# --- fitting, evaluating, exporting ---------------------------------------------------------


def test_linear_regression_recovers_the_coefficients_of_a_linear_table(linear_run) -> None:
    import keras

    train = linear_run.artifact("train")
    model = keras.saving.load_model(train.file("model.keras"), compile=False)
    info = json.loads(train.file("model.json").read_text())
    assert info["task"] == "regression" and info["loss"] == "mse" and info["classes"] == []

    def predict(**values: float) -> float:
        row = {n: np.array([[values.get(n, 0.0)]], dtype=np.float32) for n in COEFFICIENTS}
        return float(np.asarray(model(row))[0, 0])

    at_zero = predict()
    for name, true in COEFFICIENTS.items():
        # the model is linear in raw values: its slope along one column is the coefficient
        slope = (predict(**{name: 100.0}) - at_zero) / 100.0
        assert slope == pytest.approx(true, rel=0.03), name
    assert at_zero == pytest.approx(INTERCEPT, abs=2.0)
    history = json.loads(train.file("report", "history.json").read_text())
    last = history["epochs"][-1]
    assert {"loss", "mae", "rmse", "val_loss", "val_mae", "val_rmse"} <= set(last)
    assert "accuracy" not in last
    assert last["rmse"] == pytest.approx(math.sqrt(last["loss"]), rel=1e-4)  # mse loss
    assert train.file("report", "training_curve.png").is_file()
    assert list(train.file("logs", "eval").glob("events.out.tfevents.*"))


def test_evaluator_metrics_equal_numpy_on_its_predictions_and_the_model_is_blessed(
    linear_run, linear_examples
) -> None:
    _, rows = linear_examples
    evaluate = linear_run.artifact("evaluate")
    metrics = json.loads(evaluate.file("metrics.json").read_text())
    lines = evaluate.file("predictions.jsonl").read_text().splitlines()
    predictions = [json.loads(line) for line in lines]
    y = np.array([p["label"] for p in predictions])
    p = np.array([p["predicted"] for p in predictions])
    assert sorted(y.tolist()) == pytest.approx(sorted(r["y"] for r in rows["test"]), rel=1e-6)
    assert metrics["count"] == 60
    assert metrics["r2"] > 0.999
    assert metrics["mae"] == pytest.approx(np.mean(np.abs(y - p)), rel=1e-4)
    assert metrics["r2"] == pytest.approx(
        1 - np.sum((y - p) ** 2) / np.sum((y - y.mean()) ** 2), abs=1e-6
    )
    train_mean = float(np.mean(np.float32([r["y"] for r in rows["train"]])))
    assert metrics["baseline"]["prediction"] == pytest.approx(train_mean, rel=1e-5)
    assert metrics["baseline"]["mae"] == pytest.approx(np.mean(np.abs(y - train_mean)), rel=1e-4)
    blessing = json.loads(evaluate.file("blessing.json").read_text())
    assert blessing["blessed"], blessing["reasons"]
    for name in ("predicted_vs_actual.png", "residuals.png"):
        assert evaluate.file("report", name).read_bytes().startswith(b"\x89PNG")


def test_export_takes_named_raw_columns_and_predicts_what_the_evaluator_predicted(
    linear_run, linear_examples, tmp_path
) -> None:
    from beamline_plugins.keras.predict import predict_command as cli
    from beamline_plugins.keras.predict import predict_rows

    _, rows = linear_examples
    export = linear_run.artifact("export").path
    info = json.loads((export / "export.json").read_text())
    assert info["task"] == "regression" and info["outputs"] == ["prediction"]
    assert info["inputs"] == {"x1": "numeric", "x2": "numeric", "x3": "numeric"}
    table = [
        (f"row {i}", {k: repr(v) for k, v in row.items()}) for i, row in enumerate(rows["test"])
    ]
    served = [r["prediction"] for r in predict_rows(export, table)]
    evaluated = [
        json.loads(line)["predicted"]
        for line in linear_run.artifact("evaluate")
        .file("predictions.jsonl")
        .read_text()
        .splitlines()
    ]
    truth = [r["y"] for r in rows["test"]]
    assert np.corrcoef(served, truth)[0, 1] > 0.999
    assert sorted(served) == pytest.approx(sorted(evaluated), abs=1e-3)

    csv_file = tmp_path / "rows.csv"
    csv_file.write_text("x1,x2,x3,y\n50,-3,1000,0\n50,-3,,0\n", encoding="utf-8")
    result = CliRunner().invoke(cli, [str(export), str(csv_file), "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    expected = INTERCEPT + 3 * 50 - 2 * -3 + 0.5 * 1000
    assert out[0]["input"] == f"{csv_file}:row 1"
    assert out[0]["prediction"] == pytest.approx(expected, abs=1.0)
    # an empty cell is a missing value: the model fills in the train mean of x3
    train_x3 = float(np.mean([r["x3"] for r in rows["train"]]))
    assert out[1]["prediction"] == pytest.approx(expected + 0.5 * (train_x3 - 1000), abs=1.0)

    result = CliRunner().invoke(cli, [str(export), "--row", "x1=50,x2=-3,x3=1000"])
    assert result.exit_code == 0 and result.output.startswith("--row 1: ")
    typo = CliRunner().invoke(cli, [str(export), "--row", "x1=50,x2=-3,x33=1000"])
    assert typo.exit_code == 2 and "unknown column x33; did you mean 'x3'?" in typo.output
    short = CliRunner().invoke(cli, [str(export), "--row", "x1=50"])
    assert short.exit_code == 2 and "no value for x2, x3" in short.output


def test_a_failed_threshold_and_a_worse_model_are_not_blessed_nor_exported(linear_run) -> None:
    runs_dir = linear_run.path.parent.parent
    path = Path(linear_run.info["pipeline_file"])
    strict = {"steps.evaluate.thresholds": {"r2": 0.99, "mae": 1e-6}}
    with pytest.raises(beamline.GateFailed, match=r"did not bless the model: mae .* > 1e-06"):
        beamline.run(path, strict, runs_dir=runs_dir)
    worse = {"steps.train.epochs": 1, "steps.train.learning_rate": 0.001}
    with pytest.raises(beamline.GateFailed, match="worse than the last blessed model's"):
        beamline.run(path, worse, runs_dir=runs_dir)
    failed = beamline.open_run("linear", runs_dir=runs_dir)
    blessing = json.loads(failed.artifact("evaluate").file("blessing.json").read_text())
    assert blessing["baseline"]["run"] == linear_run.run_id and "export" not in failed.steps()


def test_mlp_fits_a_regression_with_a_categorical_column_and_huber_loss(tmp_path) -> None:
    rng = np.random.default_rng(5)
    effect = {"a": -20.0, "b": 0.0, "c": 30.0}

    def rows(count: int) -> list[dict]:
        out = []
        for _ in range(count):
            x = float(rng.uniform(-2, 2))
            group = str(rng.choice(list(effect)))
            out.append({"x": x, "g": group, "y": 5 * x * x + effect[group]})
        return out

    data = {"train": rows(500), "eval": rows(80), "test": rows(80)}
    dtypes = {"x": "float", "g": "bytes", "y": "float"}
    folder = write_table_examples(tmp_path / "examples", data, dtypes, "y")
    steps = """\
  train:
    component: keras_trainer
    examples: data
    input: {component: table_input, categorical: [g], encoding: embedding}
    model: {component: mlp, units: [32, 32]}
    loss: huber
    huber_delta: 5.0
    epochs: 40
    learning_rate: 0.01
  evaluate:
    component: regression_evaluator
    model: train
    examples: data
    thresholds: {r2: 0.9}
"""
    path = write_pipeline(tmp_path, folder, steps, name="curve")
    run = beamline.run(path, runs_dir=tmp_path / "runs").run
    metrics = json.loads(run.artifact("evaluate").file("metrics.json").read_text())
    assert metrics["r2"] > 0.9 > metrics["baseline"]["r2"]  # a curve and groups: not linear
    info = json.loads(run.artifact("train").file("model.json").read_text())
    assert info["loss"] == "huber"
    assert sorted(info["inputs"]["g"]["vocabulary"]) == ["a", "b", "c"]


@pytest.mark.slow
def test_diabetes_pipeline_trains_evaluates_exports_and_predicts_csv_rows(tmp_path) -> None:
    from beamline_plugins.keras.predict import predict_rows, read_csv_rows

    overrides = {"steps.train.epochs": 8, "steps.evaluate.thresholds": {"r2": 0.1}}
    result = beamline.run(PIPELINES / "diabetes.yaml", overrides, runs_dir=tmp_path / "runs")
    assert [r.status for r in result.records] == ["ran"] * 5
    run = result.run
    counts = run.artifact("ingest").meta["counts"]
    assert counts["read"] == 442 and counts["rejected"] == 0
    metrics = json.loads(run.artifact("evaluate").file("metrics.json").read_text())
    assert metrics["split"] == "test"
    assert metrics["r2"] > 0.1 and metrics["mae"] < metrics["baseline"]["mae"]
    info = json.loads(run.artifact("train").file("model.json").read_text())
    assert sorted(info["inputs"]) == sorted(
        ["age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6"]
    )
    assert 25 < info["target"]["mean"] < 346
    rows = read_csv_rows(DIABETES_CSV)
    predictions = predict_rows(run.artifact("export").path, rows)
    assert len(predictions) == 442
    values = np.array([p["prediction"] for p in predictions])
    truth = np.array([float(r["progression"]) for _, r in rows])
    assert np.corrcoef(values, truth)[0, 1] > 0.5
    assert predictions[0]["input"].endswith("diabetes.csv:row 1")


def test_table_classification_reuses_the_label_classes_and_exports_labels(tmp_path) -> None:
    from beamline_plugins.keras.predict import predict_rows

    rng = np.random.default_rng(7)

    def rows(count: int) -> list[dict]:
        out = []
        for _ in range(count):
            x = float(rng.normal(100, 20))
            color = str(rng.choice(["red", "blue"]))
            label = "high" if x + (30 if color == "red" else -30) > 100 else "low"
            out.append({"x": x, "color": color, "label": label})
        return out

    data = {"train": rows(400), "eval": rows(60), "test": rows(60)}
    folder = write_table_examples(
        tmp_path / "examples", data, {"x": "float", "color": "bytes", "label": "bytes"}, "label"
    )
    spec = json.loads((folder / "features.json").read_text())
    spec["classes"] = ["high", "low"]
    (folder / "features.json").write_text(json.dumps(spec), encoding="utf-8")
    steps = """\
  train:
    component: keras_trainer
    examples: data
    input: {component: table_input, task: classification, categorical: [color]}
    model: {component: logistic_regression}
    epochs: 30
    learning_rate: 0.05
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
    path = write_pipeline(tmp_path, folder, steps, name="tableclass")
    run = beamline.run(path, runs_dir=tmp_path / "runs").run
    assert run.artifact("evaluate").metrics["accuracy"] >= 0.9
    history = json.loads(run.artifact("train").file("report", "history.json").read_text())
    assert "accuracy" in history["epochs"][-1] and "mae" not in history["epochs"][-1]
    export = run.artifact("export").path
    out = predict_rows(
        export, [("a", {"x": "150", "color": "red"}), ("b", {"x": "60", "color": "blue"})]
    )
    assert [p["label"] for p in out] == ["high", "low"]
    assert sorted(out[0]["scores"]) == ["high", "low"]


def test_streaming_column_statistics_equal_numpy_over_many_batches() -> None:
    from beamline_plugins.keras.table_columns import ColumnStats

    rng = np.random.default_rng(3)
    values = rng.normal(1e4, 3.0, 10_000)  # a large mean: a naive sum of squares loses digits
    values[::7] = np.nan
    stats = ColumnStats()
    for chunk in np.array_split(values, 13):
        stats.add_numbers(chunk)
    present = values[~np.isnan(values)]
    assert stats.count == len(present) and stats.missing == len(values) - len(present)
    assert stats.mean == pytest.approx(present.mean(), rel=1e-12)
    assert stats.variance == pytest.approx(present.var(), rel=1e-9)
