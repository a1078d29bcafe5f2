"""The examples artifact: the contract between ingest and everything downstream.

Layout of an ingest step's folder::

    examples/<split>/part-NNNNN-of-MMMMM.tfrecord.gz   GZIP TFRecords of tf.train.Example
    rejected/part-*.jsonl                               one JSON object per rejected record
    features.json                                       the feature spec (below)
    meta.json                                           written by the core (counts, timings)

``features.json``::

    {"features": {NAME: {"dtype": "bytes"|"int64"|"float", "modality": "image"|"text"|"audio"|
                          "label"|"numeric"|"categorical"|"id", ...modality details...}},
     "label": NAME or null, "classes": [class names in index order] or null,
     "splits": {SPLIT: count}}

A rejected record is ``{"source": file or row, "stage": stage label, "reason": why}``.
"""

from __future__ import annotations

import glob
import json
from pathlib import Path
from typing import Any

from .artifacts import Artifact

EXAMPLES_DIR = "examples"
REJECTED_DIR = "rejected"
FEATURES_FILE = "features.json"
REJECTED = "rejected"
MAIN = "main"


def rejected(source: str, stage: str, reason: str) -> dict[str, str]:
    """A rejected-record entry: where the record came from, which stage rejected it, and why."""
    return {"source": str(source), "stage": stage, "reason": reason}


def feature_spec(artifact: Artifact | str | Path) -> dict[str, Any]:
    """The ``features.json`` of an examples artifact."""
    path = artifact.path if isinstance(artifact, Artifact) else Path(artifact)
    return json.loads((path / FEATURES_FILE).read_text(encoding="utf-8"))


def splits(artifact: Artifact | str | Path) -> list[str]:
    """The split names present in an examples artifact."""
    return list(feature_spec(artifact).get("splits", {}))


def example_files(artifact: Artifact | str | Path, split: str) -> list[str]:
    """The TFRecord shard files of one split, sorted."""
    path = artifact.path if isinstance(artifact, Artifact) else Path(artifact)
    files = sorted(glob.glob(str(path / EXAMPLES_DIR / split / "*.tfrecord*")))
    if not files:
        available = ", ".join(splits(path)) if (path / FEATURES_FILE).exists() else "none"
        raise FileNotFoundError(f"{path}: no examples for split '{split}' (splits: {available})")
    return files


def rejected_records(artifact: Artifact | str | Path) -> list[dict[str, str]]:
    """Every rejected record of an examples artifact."""
    path = artifact.path if isinstance(artifact, Artifact) else Path(artifact)
    out = []
    for file in sorted((path / REJECTED_DIR).glob("*.jsonl")):
        with file.open(encoding="utf-8") as handle:
            out.extend(json.loads(line) for line in handle if line.strip())
    return out
