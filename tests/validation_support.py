"""Data builders for ``tests/test_validation.py``.

They write real examples artifacts (GZIP TFRecords of ``tf.train.Example`` in the layout of
``pipeline/examples.py``) from the small real data sets of ``data_paths``; the
``prepared_examples`` source of ``examples_plugin`` copies one into a run, so a pipeline file can
put the ``tfdv`` validator behind it without the Beam ingest.
"""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path
from typing import Any

from data_paths import DIGITS, SMS_CSV

from beamline.examples import EXAMPLES_DIR, FEATURES_FILE


def split_of(key: str) -> str:
    """A deterministic 80/10/10 train/eval/test split by a hash of ``key``."""
    bucket = int(hashlib.sha256(key.encode()).hexdigest(), 16) % 10
    return "train" if bucket < 8 else ("eval" if bucket == 8 else "test")


def sms_rows(limit: int, offset: int = 0) -> list[dict[str, Any]]:
    """Rows ``offset..offset+limit`` of the SMS spam CSV as ``{"text": str, "label": str}``."""
    with SMS_CSV.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    return [{"text": r["text"], "label": r["label"]} for r in rows[offset : offset + limit]]


def digits_rows(per_class: int) -> list[dict[str, Any]]:
    """``per_class`` PNGs of each digit as ``{"image": png bytes, "label": int}``."""
    rows = []
    for label in range(10):
        for path in sorted((DIGITS / str(label)).glob("*.png"))[:per_class]:
            rows.append({"image": path.read_bytes(), "label": label, "_key": path.name})
    return rows


def write_examples(
    folder: Path,
    rows: list[dict[str, Any]],
    features: dict[str, dict[str, Any]],
    *,
    label: str | None = None,
    classes: list[str] | None = None,
    shards: int = 2,
) -> Path:
    """Write ``rows`` as an examples artifact into ``folder``: split shards and ``features.json``.

    A row's ``_key`` (or its text) chooses the split; ``features`` maps each feature to its
    ``{"dtype": "bytes"|"int64"|"float", "modality": ...}`` entry."""
    import tensorflow as tf

    by_split: dict[str, list[dict[str, Any]]] = {"train": [], "eval": [], "test": []}
    for row in rows:
        key = str(row.get("_key") or json.dumps({k: str(v) for k, v in row.items()}))
        by_split[split_of(key)].append(row)
    for split, split_rows in by_split.items():
        out = folder / EXAMPLES_DIR / split
        out.mkdir(parents=True, exist_ok=True)
        options = tf.io.TFRecordOptions(compression_type="GZIP")
        writers = [
            tf.io.TFRecordWriter(
                str(out / f"part-{i:05d}-of-{shards:05d}.tfrecord.gz"), options=options
            )
            for i in range(shards)
        ]
        for i, row in enumerate(split_rows):
            writers[i % shards].write(_example(row, features).SerializeToString())
        for writer in writers:
            writer.close()
    spec = {
        "features": features,
        "label": label,
        "classes": classes,
        "splits": {split: len(r) for split, r in by_split.items()},
    }
    (folder / FEATURES_FILE).write_text(json.dumps(spec, indent=2), encoding="utf-8")
    return folder


def _example(row: dict[str, Any], features: dict[str, dict[str, Any]]) -> Any:
    import tensorflow as tf

    feature = {}
    for name, info in features.items():
        if name not in row or row[name] is None:
            continue
        value = row[name]
        if info["dtype"] == "bytes":
            data = value if isinstance(value, bytes) else str(value).encode("utf-8")
            feature[name] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[data]))
        elif info["dtype"] == "int64":
            feature[name] = tf.train.Feature(int64_list=tf.train.Int64List(value=[int(value)]))
        else:
            feature[name] = tf.train.Feature(float_list=tf.train.FloatList(value=[float(value)]))
    return tf.train.Example(features=tf.train.Features(feature=feature))


SMS_FEATURES = {
    "text": {"dtype": "bytes", "modality": "text"},
    "label": {"dtype": "bytes", "modality": "label"},
}
DIGITS_FEATURES = {
    "image": {"dtype": "bytes", "modality": "image"},
    "label": {"dtype": "int64", "modality": "label"},
}
