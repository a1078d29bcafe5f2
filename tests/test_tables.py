"""The tables plugin on real SMS and sentiment data: CSV, JSON Lines and TFRecord sources."""

from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path

import pytest
from data_paths import SENTIMENT_CSV, SMS_CSV
from ingest_support import csv_rows, ingest, pipeline_file, split_examples

from beamline import PipelineError, examples


def _write_csv(path: Path, header: list[str], rows: list[list[str]], extra: str = "") -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
        handle.write(extra)
    return path


def _all(artifact: Path) -> list[dict[str, list[object]]]:
    return [e for s in examples.splits(artifact) for e in split_examples(artifact, s)]


def _reasons(artifact: Path) -> dict[str, str]:
    return {
        r["source"].rsplit(":", 1)[-1]: r["reason"] for r in examples.rejected_records(artifact)
    }


def test_csv_types_are_inferred_and_malformed_rows_rejected_by_row(tmp_path: Path) -> None:
    rows = [
        [r["text"], r["label"], r["source"], str(i * 0.5)]
        for i, r in enumerate(csv_rows(SENTIMENT_CSV, 60))
    ]
    extra = "Too many,1,amazon,2.0,surplus\nNo label here,,yelp,1.0\n"
    _write_csv(tmp_path / "s.csv", ["text", "label", "source", "score"], rows, extra)
    step = {"component": "csv_table", "path": "s.csv", "label": "label", "deduplicate": False}

    record, artifact = ingest(pipeline_file(tmp_path, step), tmp_path / "runs")

    assert (record.counts["read"], record.counts["written"], record.counts["rejected"]) == (
        62,
        60,
        2,
    )
    reasons = _reasons(artifact)
    assert reasons["row 61"] == "expected 4 fields, got 5 (line 62)"
    assert reasons["row 62"] == "empty label in column 'label'"
    assert all(
        r["source"].startswith(str(tmp_path / "s.csv")) for r in examples.rejected_records(artifact)
    )
    spec = examples.feature_spec(artifact)
    features = spec["features"]
    assert (features["label"]["dtype"], features["label"]["modality"]) == ("int64", "label")
    assert (features["score"]["dtype"], features["score"]["modality"]) == ("float", "numeric")
    assert (features["text"]["dtype"], features["text"]["modality"]) == ("bytes", "text")
    assert features["source"]["modality"] == "categorical"
    assert spec["classes"] == ["0", "1"]
    example = _all(artifact)[0]
    assert isinstance(example["label"][0], int) and isinstance(example["score"][0], float)


def test_csv_columns_and_explicit_types(tmp_path: Path) -> None:
    rows = [[r["text"], r["label"], "7"] for r in csv_rows(SMS_CSV, 30)] + [["hello", "ham", "x"]]
    _write_csv(tmp_path / "sms.csv", ["text", "label", "count"], rows)
    step = {
        "component": "csv_table",
        "path": "sms.csv",
        "label": "label",
        "columns": ["count"],
        "types": {"count": "int"},
    }
    record, artifact = ingest(pipeline_file(tmp_path, step), tmp_path / "runs")
    assert set(examples.feature_spec(artifact)["features"]) == {"label", "count"}
    assert _reasons(artifact)["row 31"] == "column 'count': 'x' is not an int"
    # 30 SMS rows reduced to (label, count) hold many duplicates: they are rejected, not lost
    assert record.counts["written"] == 2


def test_csv_naming_an_unknown_column_is_an_error_naming_the_file(tmp_path: Path) -> None:
    _write_csv(tmp_path / "sms.csv", ["text", "label"], [["hi", "ham"]])
    step = {"component": "csv_table", "path": "sms.csv", "label": "category"}
    with pytest.raises(PipelineError, match=r"sms\.csv has no column 'category'"):
        ingest(pipeline_file(tmp_path, step), tmp_path / "runs")


def test_jsonl_rows_with_bad_json_or_nesting_are_rejected(tmp_path: Path) -> None:
    lines = [json.dumps({"text": r["text"], "label": r["label"]}) for r in csv_rows(SMS_CSV, 40)]
    lines += ['{"text": "cut', '["a list"]', '{"text": "x", "label": "ham", "more": {"a": 1}}']
    lines += ['{"text": "no label"}', "", json.dumps({"text": "ok", "label": "spam", "n": None})]
    (tmp_path / "sms.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    step = {"component": "jsonl_table", "path": "*.jsonl", "label": "label"}

    record, artifact = ingest(pipeline_file(tmp_path, step), tmp_path / "runs")

    reasons = _reasons(artifact)
    assert reasons["row 41"].startswith("invalid JSON")
    assert reasons["row 42"] == "expected a JSON object, got list"
    assert "nested object" in reasons["row 43"]
    assert reasons["row 44"] == "no value for the label 'label'"
    assert record.counts["read"] == 45
    assert examples.feature_spec(artifact)["classes"] == ["ham", "spam"]


def test_tfrecord_examples_read_back_an_ingest_and_reject_a_corrupt_file(tmp_path: Path) -> None:
    rows = [[r["text"], r["label"], str(len(r["text"]))] for r in csv_rows(SMS_CSV, 50)]
    _write_csv(tmp_path / "sms.csv", ["text", "label", "length"], rows)
    first_step = {"component": "csv_table", "path": "sms.csv", "label": "label"}
    _, first = ingest(pipeline_file(tmp_path, first_step, name="first"), tmp_path / "runs")

    copies = tmp_path / "copies"
    copies.mkdir()
    for file in sorted(first.glob("examples/*/*.tfrecord.gz")):
        (copies / f"{file.parent.name}-{file.name}").write_bytes(file.read_bytes())
    good = (copies / f"train-{Path(examples.example_files(first, 'train')[0]).name}").read_bytes()
    raw = gzip.decompress(good)
    (copies / "zz-cut.tfrecord").write_bytes(raw[: len(raw) // 2])
    second_step = {"component": "tfrecord_examples", "path": "copies/*.tfrecord*", "label": "label"}

    record, second = ingest(pipeline_file(tmp_path, second_step, name="second"), tmp_path / "runs")

    # the cut copy repeats examples of the train split: its whole records are duplicates
    rejected = examples.rejected_records(second)
    corrupt = [r for r in rejected if "corrupt TFRecord" in r["reason"]]
    assert len(corrupt) == 1 and corrupt[0]["source"].startswith(str(copies / "zz-cut.tfrecord"))
    assert all(r["stage"] in ("tfrecord_examples", "deduplicate") for r in rejected)
    written = sorted(json.dumps(e, default=repr, sort_keys=True) for e in _all(second))
    original = sorted(json.dumps(e, default=repr, sort_keys=True) for e in _all(first))
    assert written == original
    spec, old = examples.feature_spec(second), examples.feature_spec(first)
    assert spec["classes"] == old["classes"] == ["ham", "spam"]
    assert {n: f["dtype"] for n, f in spec["features"].items()} == {
        "label": "bytes",
        "length": "int64",
        "text": "bytes",
    }


def test_csv_with_a_derived_label_and_quantiles_writes_the_same_by_columns_by_rows_and_in_beam(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ingest_support import shard_contents

    from beamline import ingest_columnar, ingest_engine, ingest_in_process

    header = ["fare", "tips", "lat", "company", "n"]
    rows = [[f"{((i * 7) % 23 + 1) * 0.5}", f"{i % 5}", f"{41.8 + i * 0.001:.3f}", f"c {i % 3}",
             f"{i}"] for i in range(150)]  # fmt: skip
    rows[7][1] = ""  # a missing operand: the label is filled
    rows[11][4] = " +12 "
    _write_csv(tmp_path / "t1.csv", header, rows[:100])  # read by columns
    rows[109][1] = "x"  # tips is not a float: this file is converted a row at a time
    rows[113][0] = "0"  # (n + 1) / fare divides by zero: rejected
    _write_csv(tmp_path / "t2.csv", header, rows[100:])
    extra = "1.0,2,41.9,c1,7,surplus\n"  # too many fields: the file is read a row at a time
    _write_csv(tmp_path / "t3.csv", header, rows[:2], extra)
    step = {
        "component": "csv_table",
        "path": "t*.csv",
        "types": {"tips": "float"},
        "deduplicate": False,
        "transforms": [
            {"component": "derive_column", "column": "big", "expression": "tips > 0.2 * fare",
             "label": True},
            {"component": "derive_column", "column": "ratio", "expression": "(n + 1) / fare",
             "on_missing": "empty"},
            {"component": "column_quantiles", "columns": {"lat": 4}},
        ],
    }  # fmt: skip
    paths = []
    for name in ("run_in_process", "run_columnar"):
        run = getattr(ingest_columnar if name == "run_columnar" else ingest_engine, name)

        def spied(*args: object, _run: object = run, _name: str = name, **kwargs: object) -> None:
            paths.append(_name)
            _run(*args, **kwargs)  # type: ignore[operator]

        monkeypatch.setattr(ingest_columnar if name == "run_columnar" else ingest_engine, name,
                            spied)  # fmt: skip
    batches: list[int] = []
    add_batch = ingest_columnar.ColumnSpiller.add_batch

    def counted(self: object, batch: ingest_columnar.ColumnBatch, bad: object) -> None:
        batches.append(len(batch))
        add_batch(self, batch, bad)  # type: ignore[arg-type]

    monkeypatch.setattr(ingest_columnar.ColumnSpiller, "add_batch", counted)
    written, counts = {}, {}
    for name, columnar, in_process in (("columns", True, True), ("rows", False, True),
                                       ("beam", False, False)):  # fmt: skip
        monkeypatch.setattr(ingest_columnar, "ENABLED", columnar)
        monkeypatch.setattr(ingest_in_process, "ENABLED", in_process)
        record, artifact = ingest(pipeline_file(tmp_path, step, name=name), tmp_path / name)
        written[name] = shard_contents(artifact)
        written[name]["features.json"] = (artifact / "features.json").read_bytes()
        for asset in sorted((artifact / "assets").rglob("*.json")):  # exact at this size
            written[name][str(asset.relative_to(artifact))] = asset.read_bytes()
        counts[name] = record.counts
    assert paths == ["run_columnar", "run_in_process"]  # then Beam
    assert counts["columns"] == counts["rows"] == counts["beam"]
    assert (counts["columns"]["read"], counts["columns"]["rejected"]) == (153, 3)
    assert "assets/quantiles/lat.json" in written["columns"]
    assert written["columns"] == written["rows"] == written["beam"]
    reasons = " | ".join(sorted(r["source"].rsplit("/", 1)[-1] + ": " + r["reason"]
                                for r in examples.rejected_records(artifact)))  # fmt: skip
    assert "t2.csv:row 10: column 'tips': 'x' is not a float" in reasons
    assert "t2.csv:row 14: ratio = (n + 1) / fare: '/': division by zero" in reasons
    assert "t3.csv:row 3: expected 5 fields, got 6" in reasons
    assert batches == [100]  # t1.csv's rows went through as one batch of columns


def test_column_kinds_per_file_equal_the_kinds_of_every_read_row(tmp_path: Path) -> None:
    from beamline_plugins.tables import readers

    texts = [
        'a,b,a,lab\n1,x,2.5,1\n3,,4,\n, y ,5,2\n1,2\n"bad\nx,1,1,1\n7,8,9.5e3,3\n',
        "lab,v\n,1\n,2\n",
        "v,w\n1,2\n3,4.5\n\n",
        "",
    ]
    for i, text in enumerate(texts):
        path = tmp_path / f"k{i}.csv"
        path.write_text(text, encoding="utf-8")
        for keep in (None, ["a", "lab"], ["v"]):
            for label in ("", "lab", "v"):
                rows = readers.read_csv(str(path), ",", keep, label)
                parts = [readers.row_kinds(r) for r in rows if not isinstance(r, readers.Reject)]
                assert readers.file_kinds(str(path), ",", keep, label) == readers.merge_kinds(
                    parts
                ), (text, keep, label)
