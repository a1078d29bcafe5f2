"""Text sources and stages through the real Beam ingest: bad inputs, accounting, normalisation."""

from __future__ import annotations

import unicodedata
from pathlib import Path

import pytest
from text_support import ingest_pipeline, write_bytes_lines, write_jsonl

import beamline
from beamline.examples import feature_spec, iter_examples, rejected_records


@pytest.fixture(autouse=True)
def _importable_support(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(Path(__file__).parent))


def _texts(artifact: beamline.Artifact) -> dict[str, list[str]]:
    out = {}
    for split in feature_spec(artifact)["splits"]:
        out[split] = [e["text"][0].decode("utf-8") for e in iter_examples(artifact, split)]
    return out


def _ingest(tmp_path: Path, source: str) -> beamline.Artifact:
    path = ingest_pipeline(tmp_path, source)
    result = beamline.run(path, runs_dir=tmp_path / "runs")
    return result.run.artifact("ingest")


def test_bad_csv_rows_are_rejected_with_file_row_and_reason(tmp_path: Path) -> None:
    csv_file = write_bytes_lines(
        tmp_path / "messages.csv",
        [
            b"text,label",
            b"Call me when you get home,ham",
            b"caf\xe9 latte for free \xff\xfe,spam",  # Latin-1 bytes: not UTF-8
            b"   ,ham",  # empty text
            b"Win a prize now,",  # missing label
            b"too,many,fields",
            "Ｆｕｌｌ width ＦＲＥＥ offer,spam".encode(),  # NFKC folds it to ASCII
            b"  Full width   FREE offer ,spam",  # equal after normalisation: a duplicate
        ],
    )
    examples = _ingest(
        tmp_path,
        f"""
component: text_table
path: {csv_file}
transforms:
  - {{component: normalize_text, lowercase: true}}
  - {{component: filter_length, min: 5}}
split: {{train: 1.0, eval: 0.0, test: 0.0}}
""",
    )
    counts = examples.counts
    assert counts["read"] == 7 and counts["written"] == 2 and counts["rejected"] == 5
    assert counts["read"] == counts["written"] + counts["rejected"]
    reasons = {r["source"].rsplit(":", 1)[1]: r for r in rejected_records(examples)}
    assert reasons["row 2"]["reason"].startswith("undecodable bytes in column 'text'")
    assert "byte 0xe9" in reasons["row 2"]["reason"]
    assert reasons["row 3"]["reason"] == "empty text in column 'text'"
    assert reasons["row 4"]["reason"] == "missing label: column 'label' is empty"
    assert reasons["row 5"]["reason"] == "expected 2 fields, got 3"
    assert reasons["row 7"]["stage"] == "deduplicate"
    assert reasons["row 7"]["reason"].endswith("messages.csv:row 6")
    assert all(r["source"].startswith(str(csv_file)) for r in rejected_records(examples))
    assert sorted(_texts(examples)["train"]) == [
        "call me when you get home",
        "full width free offer",
    ]
    spec = feature_spec(examples)
    assert spec["features"]["text"]["modality"] == "text"
    assert spec["label"] == "label" and spec["classes"] == ["ham", "spam"]


def test_jsonl_rows_and_length_filter_reject_with_reasons(tmp_path: Path) -> None:
    jsonl = write_jsonl(
        tmp_path / "rows.jsonl",
        [
            {"text": "a perfectly fine sentence", "label": 1},
            {"text": "", "label": 0},
            {"text": "no label here"},
            {"text": "short", "label": 0},
            ["not", "an", "object"],
        ],
    )
    with jsonl.open("ab") as handle:
        handle.write(b'{"text": "bad \xc3\x28 bytes", "label": 1}\n{"text": broken json\n')
    examples = _ingest(
        tmp_path,
        f"""
component: text_table
path: {jsonl}
transforms: [{{component: filter_length, unit: tokens, min: 2, max: 10}}]
split: {{train: 1.0, eval: 0.0, test: 0.0}}
""",
    )
    assert examples.counts == {
        "read": 7,
        "written": 1,
        "rejected": 6,
        "written_train": 1,
    }
    by_row = {r["source"].rsplit(":", 1)[1]: r["reason"] for r in rejected_records(examples)}
    assert by_row["row 2"] == "empty text in column 'text'"
    assert by_row["row 3"] == "missing label: column 'label' is empty"
    assert by_row["row 4"] == "text too short: 1 tokens < min 2"
    assert by_row["row 5"] == "expected a JSON object, got list"
    assert by_row["row 6"].startswith("undecodable bytes: invalid UTF-8 (byte 0xc3")
    assert by_row["row 7"].startswith("invalid JSON")


def test_text_folder_labels_by_folder_and_rejects_bad_files(tmp_path: Path) -> None:
    root = tmp_path / "reviews"
    (root / "pos").mkdir(parents=True)
    (root / "neg").mkdir()
    (root / "pos" / "a.txt").write_text("Loved every minute of it.", encoding="utf-8")
    (root / "neg" / "b.txt").write_text("Dull and far too long.", encoding="utf-8")
    (root / "neg" / "empty.txt").write_text("  \n", encoding="utf-8")
    (root / "pos" / "latin1.txt").write_bytes("Très bien".encode("latin-1"))
    (root / "pos" / "notes.md").write_text("not read", encoding="utf-8")
    examples = _ingest(
        tmp_path,
        f"""
component: text_folder
root: {root}
split: {{train: 1.0, eval: 0.0, test: 0.0}}
""",
    )
    assert examples.counts["read"] == 4 and examples.counts["written"] == 2
    reasons = {Path(r["source"]).name: r["reason"] for r in rejected_records(examples)}
    assert reasons == {
        "empty.txt": "empty text (the file holds no text)",
        "latin1.txt": "undecodable bytes: invalid UTF-8 (byte 0xe8 at 2)",
    }
    assert feature_spec(examples)["classes"] == ["neg", "pos"]


def test_normalisation_makes_unicode_variants_duplicates() -> None:
    from beamline_plugins.text.ops import normalize_record

    record = {"text": "\ufb01ne  Ｃafé\u00a0\tnow", "__source__": "x"}
    out = normalize_record(record, "text", "NFKC", True, True)
    assert out["text"] == "fine café now"
    assert unicodedata.is_normalized("NFKC", out["text"])
    assert record["text"].startswith("\ufb01")  # the input record is not changed


def test_importing_the_text_plugin_imports_no_heavy_library(heavy_imports) -> None:
    assert heavy_imports("import beamline_plugins.text") == []
