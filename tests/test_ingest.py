"""Ingest end to end on real data: examples, rejected records, features.json, splits, runners."""

from __future__ import annotations

import csv
import io
import shutil
from collections import defaultdict
from pathlib import Path

import pytest
from data_paths import DIGITS, SMS_CSV
from ingest_support import (
    beam_job_service,
    copy_images,
    csv_rows,
    ingest,
    pipeline_file,
    shard_contents,
    split_examples,
)
from PIL import Image

import beamline
from beamline import PipelineError, examples
from beamline.ingest import content_hash, shard_of, split_of

DIGIT_STEP = {
    "component": "image_folder",
    "root": "data",
    "transforms": ["decode_image", {"component": "resize_image", "size": 8}],
    "split": {"train": 0.8, "eval": 0.1, "test": 0.1},
}


@pytest.fixture
def digits(tmp_path: Path) -> Path:
    """30 real digit images (10 per class) with one text file named .png and one duplicate."""
    data = copy_images(DIGITS, tmp_path / "data", ["0", "1", "2"], 10)
    (data / "1" / "notes.png").write_text("not an image", encoding="utf-8")
    first = sorted((data / "2").iterdir())[0]
    shutil.copy(first, data / "2" / "zz-copy.png")
    return tmp_path


def test_ingest_writes_examples_rejected_records_and_features(digits: Path) -> None:
    record, artifact = ingest(pipeline_file(digits, DIGIT_STEP), digits / "runs")

    counts = record.counts
    assert counts["read"] == 32
    assert counts["rejected"] == 2
    assert counts["written"] == 30
    assert sum(counts[f"written_{s}"] for s in ("train", "eval", "test")) == 30

    spec = examples.feature_spec(artifact)
    assert spec["label"] == "label"
    assert spec["classes"] == ["0", "1", "2"]
    assert spec["splits"] == {s: counts[f"written_{s}"] for s in ("train", "eval", "test")}
    assert spec["count"] == 30
    image = spec["features"]["image"]
    assert (image["dtype"], image["modality"], image["format"]) == ("bytes", "image", "png")
    assert (image["height"], image["width"], image["channels"], image["length"]) == (8, 8, 1, 1)
    assert spec["features"]["label"]["modality"] == "label"
    assert set(spec["features"]) == {"image", "label"}  # __source__, __meta__ are not written

    for split in ("train", "eval", "test"):
        files = examples.example_files(artifact, split)
        assert [Path(f).name for f in files] == ["part-00000-of-00001.tfrecord.gz"]
    train = split_examples(artifact, "train")
    assert len(train) == counts["written_train"]
    decoded = Image.open(io.BytesIO(train[0]["image"][0]))
    assert decoded.size == (8, 8) and decoded.mode == "L"
    assert train[0]["label"][0] in {b"0", b"1", b"2"}

    rejected = {Path(r["source"]).name: r for r in examples.rejected_records(artifact)}
    assert rejected["notes.png"]["stage"] == "decode_image"
    assert "not an image" in rejected["notes.png"]["reason"]
    assert rejected["zz-copy.png"]["stage"] == "deduplicate"
    kept = sorted((digits / "data" / "2").iterdir())[0]
    assert rejected["zz-copy.png"]["reason"] == f"duplicate of {kept}"


def test_deduplicate_false_keeps_identical_records(digits: Path) -> None:
    step = {**DIGIT_STEP, "deduplicate": False}
    record, artifact = ingest(pipeline_file(digits, step), digits / "runs")
    assert record.counts["written"] == 31
    assert [r["stage"] for r in examples.rejected_records(artifact)] == ["decode_image"]


@pytest.mark.slow
def test_written_examples_parse_with_tensorflow(digits: Path) -> None:
    import tensorflow as tf

    _, artifact = ingest(pipeline_file(digits, DIGIT_STEP), digits / "runs")
    files = examples.example_files(artifact, "train")
    spec = {
        "image": tf.io.FixedLenFeature([], tf.string),
        "label": tf.io.FixedLenFeature([], tf.string),
    }
    dataset = tf.data.TFRecordDataset(files, compression_type="GZIP").map(
        lambda x: tf.io.parse_single_example(x, spec)
    )
    parsed = list(dataset.as_numpy_iterator())
    assert len(parsed) == examples.feature_spec(artifact)["splits"]["train"]
    pixels = tf.io.decode_png(parsed[0]["image"])
    assert tuple(pixels.shape) == (8, 8, 1)
    assert parsed[0]["label"] in {b"0", b"1", b"2"}


def test_split_is_deterministic_across_reruns_and_salt_changes_it(digits: Path) -> None:
    path = pipeline_file(digits, DIGIT_STEP)
    _, first = ingest(path, digits / "runs")
    _, again = ingest(path, digits / "runs", force=True)
    assert shard_contents(first) == shard_contents(again)
    assert first != again

    salted = pipeline_file(digits, {**DIGIT_STEP, "split": {**DIGIT_STEP["split"], "salt": "x"}})
    _, other = ingest(salted, digits / "runs")
    before = {s: {content_hash(e) for e in split_examples(first, s)} for s in ("train", "test")}
    after = {s: {content_hash(e) for e in split_examples(other, s)} for s in ("train", "test")}
    assert before != after
    assert examples.feature_spec(other)["count"] == 30


def test_split_helpers_are_stable_and_follow_shares() -> None:
    shares = [("train", 0.8), ("eval", 0.1), ("test", 0.1)]
    sides = [split_of(str(i).encode(), shares) for i in range(5000)]
    assert sides == [split_of(str(i).encode(), shares) for i in range(5000)]
    assert 0.77 < sides.count("train") / 5000 < 0.83
    assert 0.08 < sides.count("test") / 5000 < 0.12
    assert shard_of("ff" * 32, 3) == int("ff" * 8, 16) % 3


def test_group_by_keeps_each_group_on_one_side(tmp_path: Path) -> None:
    rows = csv_rows(SMS_CSV, 300)
    with (tmp_path / "sms.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label", "sender"])
        for i, row in enumerate(rows):
            writer.writerow([row["text"], row["label"], f"sender-{i // 6}"])
    step = {
        "component": "csv_table",
        "path": "sms.csv",
        "label": "label",
        "split": {"train": 0.6, "eval": 0.2, "test": 0.2, "group_by": "sender"},
    }
    record, artifact = ingest(pipeline_file(tmp_path, step), tmp_path / "runs")

    sides: dict[bytes, set[str]] = defaultdict(set)
    for split in ("train", "eval", "test"):
        for example in split_examples(artifact, split):
            sides[example["sender"][0]].add(split)
    assert len(sides) == 50
    assert all(len(s) == 1 for s in sides.values()), {k: v for k, v in sides.items() if len(v) > 1}
    assert {side for s in sides.values() for side in s} == {"train", "eval", "test"}
    assert examples.feature_spec(artifact)["features"]["sender"]["modality"] == "categorical"


def test_shards_parameter_spreads_each_split_over_sorted_shards(digits: Path) -> None:
    step = {**DIGIT_STEP, "shards": 3, "split": {"train": 1.0, "eval": 0.0, "test": 0.0}}
    record, artifact = ingest(pipeline_file(digits, step), digits / "runs")
    files = examples.example_files(artifact, "train")
    assert [Path(f).name for f in files] == [f"part-0000{i}-of-00003.tfrecord.gz" for i in range(3)]
    assert examples.splits(artifact) == ["train"]
    per_shard = [[content_hash(_plain(e)) for e in _read(f)] for f in files]
    assert sum(len(s) for s in per_shard) == record.counts["written"] == 30
    for index, hashes in enumerate(per_shard):
        assert hashes == sorted(hashes)  # sorted within a shard: byte-identical on any runner
        assert all(shard_of(h, 3) == index for h in hashes)


def _read(file: str) -> list[dict[str, list[object]]]:
    return [
        {k: v for k, (_, v) in examples.decode_example(d).items()}
        for d in examples.read_tfrecords(file)
    ]


def _plain(example: dict[str, list[object]]) -> dict[str, object]:
    """An example's values as the record they were written from (bytes labels as text)."""
    return {
        "image": example["image"][0],
        "label": example["label"][0].decode(),  # type: ignore[union-attr]
    }


def test_empty_folder_is_an_error_naming_the_path(tmp_path: Path) -> None:
    (tmp_path / "data" / "0").mkdir(parents=True)
    with pytest.raises(PipelineError, match=r"no image files .* found in .*data"):
        ingest(pipeline_file(tmp_path, DIGIT_STEP), tmp_path / "runs")


def test_csv_with_only_a_header_is_an_error_naming_the_file(tmp_path: Path) -> None:
    (tmp_path / "empty.csv").write_text("text,label\n", encoding="utf-8")
    step = {"component": "csv_table", "path": "empty.csv", "label": "label"}
    with pytest.raises(PipelineError, match=r"found no records in .*empty\.csv"):
        ingest(pipeline_file(tmp_path, step), tmp_path / "runs")


def test_all_records_rejected_is_an_error_with_reasons(tmp_path: Path) -> None:
    (tmp_path / "data" / "a").mkdir(parents=True)
    (tmp_path / "data" / "a" / "x.png").write_bytes(b"")
    with pytest.raises(PipelineError, match=r"all 1 records .* were rejected .*empty file"):
        ingest(pipeline_file(tmp_path, DIGIT_STEP), tmp_path / "runs")


def test_missing_folder_is_an_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(PipelineError, match=r"folder not found: .*nowhere"):
        ingest(pipeline_file(tmp_path, {**DIGIT_STEP, "root": "nowhere"}), tmp_path / "runs")


def test_example_codec_round_trips_every_dtype() -> None:
    features = {
        "b": ("bytes", [b"\x00\xff", "é"]),
        "f": ("float", [1.5, -2.25]),
        "i": ("int64", [0, -1, 2**62]),
        "e": ("float", []),
    }
    data = examples.encode_example(features)
    assert data == examples.encode_example(dict(reversed(features.items())))
    decoded = examples.decode_example(data)
    assert decoded["b"] == ("bytes", [b"\x00\xff", "é".encode()])
    assert decoded["f"] == ("float", [1.5, -2.25])
    assert decoded["i"] == ("int64", [0, -1, 2**62])
    assert decoded["e"] == ("float", [])


def test_wire_format_encoder_writes_protobufs_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    import random

    rng = random.Random(0)
    texts = ["", "a", "é" * 70, "x" * 200, "\udcff"]  # long, multi-byte, lone surrogate
    numbers = [0.0, -0.0, 1.5, 1e-45, 3.4e38, 1e39, float("inf"), float("nan"), 2**53]
    ints = [0, 1, 127, 128, -1, 2**62, -(2**63), 2**63, True]
    cases = [{}, {"": ("int64", [1])}, {"k": ("float", [])}, {"k": ("bytes", [])}]
    for _ in range(400):
        features = {}
        for n in range(rng.randint(1, 4)):
            dtype, pool = rng.choice([("bytes", texts + [b"\x00\xff"]), ("float", numbers),
                                      ("int64", ints), ("float", ints[:5])])  # fmt: skip
            features[f"f{n}" * rng.randint(1, 70)] = (dtype, rng.sample(pool, rng.randint(0, 3)))
        cases.append(features)
    direct = []
    for features in cases:
        try:
            direct.append(examples.encode_example(features))
        except (ValueError, TypeError, UnicodeError) as exc:
            direct.append(type(exc))
    monkeypatch.setattr(examples, "_wire_example", lambda features: None)  # protobuf only
    for features, expected in zip(cases, direct, strict=True):
        try:
            assert examples.encode_example(features) == expected, features
        except (ValueError, TypeError, UnicodeError) as exc:
            assert expected is type(exc), features


def test_loading_the_plugins_imports_no_heavy_library(heavy_imports) -> None:
    modules = "beamline_plugins.images, beamline_plugins.tables, beamline.ingest, beamline.examples"
    assert heavy_imports(f"import {modules}", also=("PIL",)) == []


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_direct_local_and_portable_runners_write_identical_files(digits: Path) -> None:
    step = {**DIGIT_STEP, "shards": 2}
    outputs = {}
    _, direct = ingest(pipeline_file(digits, step, runner="direct", name="direct"), digits / "r")
    outputs["direct"] = shard_contents(direct)
    local = pipeline_file(digits, step, runner={"name": "local", "workers": 2}, name="local")
    outputs["local"] = shard_contents(ingest(local, digits / "r")[1])
    with beam_job_service(digits / "logs") as runner:
        portable = pipeline_file(digits, step, runner=runner, name="portable")
        outputs["portable"] = shard_contents(ingest(portable, digits / "r")[1])

    names = sorted(outputs["direct"])
    assert "examples/train/part-00001-of-00002.tfrecord.gz" in names
    assert "rejected/part-00000-of-00001.jsonl" in names
    assert "features.json" in names
    for runner_name in ("local", "portable"):
        assert sorted(outputs[runner_name]) == names, runner_name
        for name in names:
            assert outputs[runner_name][name] == outputs["direct"][name], (runner_name, name)


def test_predefined_splits_from_a_feature_are_kept_and_not_written(tmp_path: Path) -> None:
    rows = csv_rows(SMS_CSV, 60)
    parts = ["train", "Validation", "test"]
    with (tmp_path / "sms.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label", "part"])
        for i, row in enumerate(rows):
            writer.writerow([row["text"], row["label"], parts[i % 3]])
        writer.writerow([rows[0]["text"], rows[0]["label"], "test"])  # a train row again, in test
        writer.writerow(["a message", "ham", "holdout"])
    step = {
        "component": "csv_table",
        "path": "sms.csv",
        "label": "label",
        "split": {"from_feature": "part"},
    }
    record, artifact = ingest(pipeline_file(tmp_path, step), tmp_path / "runs")

    texts = {s: [e["text"][0].decode() for e in split_examples(artifact, s)] for s in parts[::2]}
    texts["eval"] = [e["text"][0].decode() for e in split_examples(artifact, "eval")]
    assert sorted(texts["train"]) == sorted(r["text"] for r in rows[0::3])
    assert sorted(texts["eval"]) == sorted(r["text"] for r in rows[1::3])
    assert sorted(texts["test"]) == sorted(r["text"] for r in rows[2::3])  # the copy was dropped
    assert "part" not in examples.feature_spec(artifact)["features"]
    reasons = {r["stage"]: r["reason"] for r in examples.rejected_records(artifact)}
    assert "duplicate of" in reasons["deduplicate"]
    assert "'holdout'" in reasons["split"]
    assert record.counts["read"] == 62


def test_predefined_splits_skip_splits_the_data_does_not_name(tmp_path: Path) -> None:
    rows = csv_rows(SMS_CSV, 20)
    with (tmp_path / "sms.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label", "part"])
        for i, row in enumerate(rows):
            writer.writerow([row["text"], row["label"], "train" if i % 4 else "test"])
    step = {"component": "csv_table", "path": "sms.csv", "label": "label"}
    step["split"] = {"from_feature": "part"}
    _, artifact = ingest(pipeline_file(tmp_path, step), tmp_path / "runs")
    assert sorted(examples.splits(artifact)) == ["test", "train"]
    assert not (artifact / "examples" / "eval").exists()

    step["split"] = {"from_feature": "part", "group_by": "label"}
    with pytest.raises(PipelineError, match="from_feature cannot be combined"):
        beamline.run(pipeline_file(tmp_path, step), runs_dir=tmp_path / "runs2")


def test_ingest_without_transforms_writes_the_files_as_read(digits: Path) -> None:
    step = {k: v for k, v in DIGIT_STEP.items() if k != "transforms"}
    record, artifact = ingest(pipeline_file(digits, step), digits / "runs")

    # Nothing decodes, so the text file named .png is written; only the copy is rejected.
    assert (record.counts["read"], record.counts["written"], record.counts["rejected"]) == (
        32,
        31,
        1,
    )
    assert [r["stage"] for r in examples.rejected_records(artifact)] == ["deduplicate"]
