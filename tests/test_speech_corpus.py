"""The shipped spoken_numbers corpus is what its build script makes, split by source clip."""

from __future__ import annotations

import csv
import hashlib
import importlib.util
from pathlib import Path

from data_paths import DATA

CORPUS = DATA / "spoken_numbers"


def _rows(folder: Path) -> list[dict[str, str]]:
    with (folder / "manifest.csv").open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_build_script_rebuilds_the_shipped_corpus_byte_for_byte(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("spoken_numbers_build", CORPUS / "build.py")
    assert spec is not None and spec.loader is not None
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    rows = build.build(tmp_path)
    assert rows == _rows(CORPUS)
    assert (tmp_path / "manifest.csv").read_bytes() == (CORPUS / "manifest.csv").read_bytes()
    for row in rows:
        assert _digest(tmp_path / row["path"]) == _digest(CORPUS / row["path"]), row["path"]


def test_sequences_join_three_to_seven_clips_of_one_speaker_and_no_clip_crosses_splits() -> None:
    rows = _rows(CORPUS)
    splits: dict[str, set[str]] = {}
    for row in rows:
        clips = row["clips"].split("+")
        assert 3 <= len(clips) <= 7
        assert {c.split("_")[1] for c in clips} == {row["speaker"]}
        assert row["text"] == " ".join(c.split("_")[0] for c in clips)
        splits.setdefault(row["split"], set()).update(clips)
    assert splits["train"].isdisjoint(splits["test"]) and splits["train"].isdisjoint(splits["eval"])
    assert splits["eval"].isdisjoint(splits["test"])
    assert {int(c.rsplit("_", 1)[1][:-4]) for c in splits["test"]} == set(range(5))
