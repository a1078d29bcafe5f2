"""Analyzers: transforms compute assets (vocabularies, constants) from the train split only."""

from __future__ import annotations

import json

from data_paths import DIGITS, TESTS_DIR
from ingest_support import copy_images

import beamline


def test_analyzer_sees_only_the_train_split_and_writes_its_asset(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(TESTS_DIR))
    root = copy_images(DIGITS, tmp_path / "digits", ["0", "1", "2"], 20)
    path = tmp_path / "p.yaml"
    path.write_text(
        "plugins: [analyzer_plugin]\n"
        "steps:\n"
        "  ingest:\n"
        "    component: image_folder\n"
        f"    root: {root}\n"
        "    transforms: [decode_image, count_labels]\n"
        "    split: {train: 0.5, eval: 0.25, test: 0.25}\n"
    )
    result = beamline.run(path, runs_dir=tmp_path / "runs")
    artifact = result.run.artifact("ingest")
    counts = json.loads(artifact.file("assets", "label_counts.json").read_text())
    assert sum(counts.values()) == artifact.counts["written_train"]
    assert 0 < artifact.counts["written_train"] < artifact.counts["written"] == 60
    assert set(counts) == {"0", "1", "2"}
