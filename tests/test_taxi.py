"""Table features on real Chicago taxi rows: a label derived by an expression, train-split
quantile buckets computed in Beam, missing-value rules, vocabularies with out-of-vocabulary
buckets, integer columns as categories, the wide-and-deep model and its raw-row export.

One short run of ``pipelines/taxi.yaml`` on the first 1,200 rows of the shipped sample (3 epochs)
serves most tests; the parser and the layers are also tested on their own.
"""

from __future__ import annotations

import csv
import json
import pickle
from pathlib import Path

import numpy as np
import pytest
from data_paths import PIPELINES, TAXI_CSV

import beamline
from beamline.examples import decode_example, example_files, read_tfrecords
from beamline.ingest import Reject
from beamline_plugins.tables.columns_ops import boundaries, derive_record
from beamline_plugins.tables.expression import MISSING, ExpressionError, parse

ROWS = 1200
BUCKETED = ["pickup_latitude", "pickup_longitude", "dropoff_latitude", "dropoff_longitude"]


def big_tipper(row: dict[str, str]) -> int:
    """TFX's label on a CSV row: tips > 0.2 * fare; a trip without a fare is no big tipper."""
    if not row["fare"].strip():
        return 0
    return int(float(row["tips"] or 0) > 0.2 * float(row["fare"]))


@pytest.fixture(scope="module")
def taxi_rows() -> list[dict[str, str]]:
    with TAXI_CSV.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def taxi_run(tmp_path_factory: pytest.TempPathFactory, taxi_rows: list[dict[str, str]]) -> object:
    """The taxi pipeline on the first ROWS rows: ingest, validate, 3 epochs, evaluate, export."""
    folder = tmp_path_factory.mktemp("taxi")
    data = folder / "taxi.csv"
    with data.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(taxi_rows[0]))
        writer.writeheader()
        writer.writerows(taxi_rows[:ROWS])
    overrides = {
        "steps.ingest.path": str(data),
        "steps.validate.schema": str(folder / "schema.pbtxt"),
        "steps.validate.fail_on": "none",
        "steps.train.epochs": 3,
        "steps.train.learning_rate": 0.01,
        # the ready pipeline fills missing coordinates with 0 as TFX does; one flag rule here
        "steps.train.input.fill": {
            "trip_miles": 0,
            "fare": 0,
            "trip_seconds": 0,
            "pickup_latitude": "flag",
            "pickup_longitude": 0,
            "dropoff_latitude": 0,
            "dropoff_longitude": 0,
        },
        "steps.evaluate.thresholds": {"accuracy": 0.5},
    }
    result = beamline.run(PIPELINES / "taxi.yaml", overrides, runs_dir=folder / "runs")
    assert [r.status for r in result.records] == ["ran"] * 5
    return result.run


def split_records(examples: Path, split: str) -> list[dict]:
    """The decoded records of one split of an examples artifact."""
    from beamline.artifacts import Artifact

    artifact = Artifact.open(examples)
    out = []
    for path in example_files(artifact, split):
        for data in read_tfrecords(path, compression="gzip"):
            out.append({k: v[0] for k, (_, v) in decode_example(data).items() if v})
    return out


# --- the expression language -------------------------------------------------------------


def test_expression_computes_comparisons_arithmetic_and_logic_without_eval() -> None:
    label = parse("tips > 0.2 * fare")
    assert label.columns == ("tips", "fare") and label.boolean
    assert label.evaluate({"tips": 3.0, "fare": 10.0}) is True
    assert label.evaluate({"tips": 2.0, "fare": 10.0}) is False
    mean = parse("(a + b) / 2 - -1")
    assert not mean.boolean and mean.evaluate({"a": 1, "b": 4}) == 3.5
    rule = parse("payment_type == 'Cash' and not fare < 10 or x % 2 == 1")
    assert rule.evaluate({"payment_type": "Cash", "fare": 12, "x": 0}) is True
    assert rule.evaluate({"payment_type": "Card", "fare": 12, "x": 3}) is True
    assert pickle.loads(pickle.dumps(label)).evaluate({"tips": 5, "fare": 10}) is True
    assert parse("__import__").evaluate({}) is None  # a name is a column, never Python


def test_expression_result_is_missing_when_an_operand_is_missing() -> None:
    label = parse("tips > 0.2 * fare")
    assert label.evaluate({"tips": 1.0, "fare": None}) is MISSING
    assert label.evaluate({"tips": 1.0, "fare": ""}) is MISSING
    assert label.evaluate({"tips": 1.0}) is MISSING


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("tips >", "ends where a value is expected"),
        ("(tips + 1", "'(' at character 1 is not closed"),
        ("tips $ fare", "unexpected '$' at character 6"),
        ("tips fare", "unexpected 'fare' at character 6"),
        ("   ", "empty expression"),
    ],
)
def test_malformed_expression_names_the_position(text: str, message: str) -> None:
    with pytest.raises(ExpressionError, match=message.replace("(", r"\(").replace("$", r"\$")):
        parse(text)


def test_derived_column_fills_rejects_or_empties_a_missing_operand() -> None:
    label = parse("tips > 0.2 * fare")
    row = {"tips": 1.0, "fare": None}
    assert derive_record(row, "y", label, "fill", 0.0)["y"] == 0
    assert derive_record(row, "y", label, "empty", 0.0)["y"] is None
    with pytest.raises(Reject, match="no value for fare"):
        derive_record(row, "y", label, "reject", 0.0)
    with pytest.raises(Reject, match="is not a number"):
        derive_record({"a": "red", "b": 1}, "y", parse("a * b"), "fill", 0.0)
    assert derive_record({"a": 2, "b": 3}, "y", parse("a * b"), "fill", 0.0)["y"] == 6.0


def test_bucket_boundaries_are_the_inner_quantiles_without_repeats() -> None:
    assert boundaries([0.0, 1.0, 1.0, 2.0, 5.0]) == [1.0, 2.0]


# --- ingest: derived label, train quantiles --------------------------------------------------


def test_derived_label_equals_tfx_rule_on_every_row(taxi_run, taxi_rows) -> None:
    examples = taxi_run.artifact("ingest")
    spec = json.loads(examples.file("features.json").read_text())
    assert spec["label"] == "big_tipper" and spec["classes"] == ["0", "1"]
    records = [r for s in ("train", "eval", "test") for r in split_records(examples.path, s)]
    assert len(records) == examples.meta["counts"]["written"] == ROWS
    for record in records:  # stored as float32: ties at exactly 20 % are left to the sum below
        margin = record.get("tips", 0.0) - 0.2 * record["fare"]
        if abs(margin) > 1e-4:
            assert record["big_tipper"] == int(margin > 0)
    assert sum(r["big_tipper"] for r in records) == sum(map(big_tipper, taxi_rows[:ROWS]))


def test_quantile_boundaries_come_from_the_train_split_in_equal_buckets(taxi_run) -> None:
    examples = taxi_run.artifact("ingest")
    train = split_records(examples.path, "train")
    for column in BUCKETED:
        asset = json.loads(examples.file("assets", "quantiles", f"{column}.json").read_text())
        values = np.array([r[column] for r in train if column in r])
        assert asset["count"] == len(values)  # train only: eval and test rows are not counted
        edges = np.array(asset["boundaries"])
        assert 5 <= len(edges) <= 9 and np.all(np.diff(edges) > 0)
        share = np.bincount(np.searchsorted(edges, values, side="right"), minlength=len(edges) + 1)
        assert share.max() / len(values) < 0.35  # ~10 % each; ties of one location merge
        assert np.all(np.isin(edges.astype(np.float32), values.astype(np.float32)))  # train values


# --- model inputs, wide and deep, export ------------------------------------------------------


def test_model_inputs_hold_fill_rules_vocabularies_buckets_and_flags(taxi_run) -> None:
    info = json.loads(taxi_run.artifact("train").file("model.json").read_text())
    inputs = info["inputs"]
    assert inputs["fare"]["fill"] == 0.0 and inputs["fare"]["mean"] > 5
    latitude = inputs["pickup_latitude"]
    assert latitude["fill"] == latitude["mean"] and latitude["boundaries"]
    assert inputs["pickup_latitude_missing"]["flag_of"] == "pickup_latitude"
    company = inputs["company"]
    assert company["oov_buckets"] == 10 and company["modality"] == "categorical"
    hours = inputs["trip_start_hour"]["vocabulary"]
    assert set(hours) <= {str(h) for h in range(24)} and len(hours) > 12  # integers as categories
    assert "tips" not in inputs and "big_tipper" not in inputs
    assert inputs["dropoff_latitude"]["fill"] == 0.0 and "dropoff_latitude_missing" not in inputs


def test_constant_fill_counts_missing_values_in_the_z_score_as_tfx_does() -> None:
    from beamline_plugins.keras.table_columns import ColumnStats

    values = np.array([3.0, np.nan, 5.0, 10.0, np.nan, 1.0])
    stats = ColumnStats()
    stats.add_numbers(values[:3])
    stats.add_numbers(values[3:])
    filled = np.nan_to_num(values, nan=0.0)
    assert stats.filled(0.0).mean == pytest.approx(filled.mean())
    assert stats.filled(0.0).variance == pytest.approx(filled.var())  # population variance
    assert stats.variance == pytest.approx(np.nanvar(values))  # left out without a constant


def test_whole_batches_fill_every_training_batch_from_the_next_pass(taxi_run) -> None:
    from beamline.artifacts import Artifact
    from beamline_plugins.keras.table_input import TableInput

    examples = Artifact.open(taxi_run.artifact("ingest").path)
    rows = json.loads((examples.path / "features.json").read_text())["splits"]["train"]
    batch = 64 if rows % 64 else 63
    table = TableInput(task="classification", features=["fare"], whole_batches=True)
    data = table.dataset(examples, "train", training=True, batch_size=batch, seed=3)
    assert [len(y) for _, y in data] == [batch] * -(-rows // batch)  # the last one topped up
    plain = TableInput(task="classification", features=["fare"])
    data = plain.dataset(examples, "train", training=True, batch_size=batch, seed=3)
    assert len(list(data)[-1][1]) == rows % batch


def test_logistic_output_is_one_sigmoid_unit_given_as_two_class_scores() -> None:
    import keras

    from beamline_plugins.keras.wide_deep import WideDeep

    inputs = {"x": {"modality": "numeric", "mean": 0.0, "variance": 1.0}}
    model = WideDeep(units=[3], activation="linear", output="logistic").build(inputs, 2)
    x = np.array([[-2.0], [0.5], [4.0]], np.float32)
    scores = np.asarray(model({"x": x}))
    logit = np.asarray(keras.Model(model.inputs, model.get_layer("logit").output)({"x": x}))
    sigmoid = 1 / (1 + np.exp(-logit[:, 0]))
    assert scores[:, 1] == pytest.approx(sigmoid, abs=1e-6)
    assert scores.sum(axis=1) == pytest.approx(1.0, abs=1e-6)
    assert len(model.trainable_weights) == 2 * 2  # two dense layers; the zero logit is frozen
    wide = WideDeep(units=[300], output="logistic").build(inputs, 2).get_layer("logit")
    narrow = WideDeep(units=[300], output="logistic", output_fan_in=2162).build(inputs, 2)
    limit = (6 / 2163) ** 0.5  # Glorot-uniform over TFX's 2,162 inputs, not the layer's 300
    assert np.abs(wide.kernel.numpy()).max() > limit
    assert np.abs(narrow.get_layer("logit").kernel.numpy()).max() <= limit


def test_wide_part_one_hots_buckets_and_hashes_unseen_values_into_oov_slots() -> None:
    import keras
    import numpy as np

    from beamline_plugins.keras.wide_deep import WideDeep

    inputs = {
        "x": {"modality": "numeric", "mean": 0.0, "variance": 1.0},
        "lat": {"modality": "numeric", "mean": 0.0, "variance": 1.0, "boundaries": [0.0, 1.0]},
        "c": {"modality": "categorical", "vocabulary": ["a", "b"], "oov_buckets": 3},
    }
    model = WideDeep(units=[4]).build(inputs, 2)
    wide = keras.Model(model.inputs, model.get_layer("wide_and_deep").output)
    batch = {
        "x": np.array([[0.0], [0.0]], np.float32),
        "lat": np.array([[-5.0], [0.5]], np.float32),
        "c": np.array([["a"], ["never seen"]]),
    }
    out = np.asarray(wide(batch))
    assert out.shape == (2, 4 + 3 + 5)  # deep units, 3 buckets, 3 OOV slots + 2 words
    assert out[0, 4:7].tolist() == [1, 0, 0] and out[1, 4:7].tolist() == [0, 1, 0]
    assert out[0, 7 + 3] == 1  # 'a' after the 3 OOV slots
    assert out[1, 7:10].sum() == 1 and out[1, 10:].sum() == 0  # unseen: one OOV slot


def test_export_takes_raw_rows_with_empty_cells_and_fills_them_as_training_did(
    taxi_run, taxi_rows
) -> None:
    from beamline_plugins.keras.predict import predict_rows

    export = taxi_run.artifact("export").path
    held_out = taxi_rows[ROWS : ROWS + 600]
    out = predict_rows(export, [(f"row {i}", row) for i, row in enumerate(held_out)])
    scores = np.array([p["scores"]["1"] for p in out])
    truth = np.array([big_tipper(row) for row in held_out])
    assert np.all((scores >= 0) & (scores <= 1))
    assert scores[truth == 1].mean() > scores[truth == 0].mean() + 0.1  # it learnt something
    row = dict(next(r for r in held_out if r["trip_miles"] and r["pickup_latitude"]))
    empty = {**row, "trip_miles": "", "pickup_latitude": "", "company": ""}
    zero = {**row, "trip_miles": "0"}
    a, b, c = predict_rows(export, [("empty", empty), ("zero", zero), ("row", row)])
    assert a["scores"] != c["scores"]
    # trip_miles has fill 0: an empty cell predicts what 0 predicts (if only it is empty)
    b2 = predict_rows(export, [("zero-empty", {**row, "trip_miles": ""})])[0]
    assert b2["scores"] == pytest.approx(b["scores"], abs=1e-6)


def test_json_rows_with_nulls_and_numbers_predict_as_the_same_csv_rows(
    taxi_run, taxi_rows, tmp_path
) -> None:
    from beamline_plugins.keras.predict import predict_rows, read_table_rows

    export = taxi_run.artifact("export").path
    rows = taxi_rows[ROWS : ROWS + 3]
    as_json = []
    for row in rows:  # numbers as JSON numbers, empty cells as null
        item: dict = {}
        for name, text in row.items():
            try:
                item[name] = None if text == "" else (int(text) if text.isdigit() else float(text))
            except ValueError:
                item[name] = text
        as_json.append(json.dumps(item))
    path = tmp_path / "rows.jsonl"
    path.write_text("\n".join(as_json) + "\n", encoding="utf-8")
    from_json = predict_rows(export, read_table_rows(path))
    from_csv = predict_rows(export, [(str(i), row) for i, row in enumerate(rows)])
    for a, b in zip(from_json, from_csv, strict=True):
        assert a["label"] == b["label"]
        assert a["scores"]["1"] == pytest.approx(b["scores"]["1"], abs=1e-6)
