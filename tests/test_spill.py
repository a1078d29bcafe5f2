"""Bounded-memory grouping: run files, bucket groups, sorted fragments, and ingest through them."""

from __future__ import annotations

import csv
import random
from pathlib import Path

import pytest
from data_paths import SMS_CSV
from ingest_support import csv_rows, ingest, pipeline_file, shard_contents

from beamline import examples, ingest_stages, spill


def test_run_writer_orders_runs_by_bucket_and_groups_keep_buckets_whole(tmp_path: Path) -> None:
    rng = random.Random(7)
    writer = spill.RunWriter(tmp_path, buffer_bytes=500)
    written: dict[int, list[bytes]] = {}
    for i in range(400):
        bucket = rng.randrange(20)
        blob = f"record {i} ".encode() * rng.randrange(1, 5)
        writer.add(bucket, blob)
        written.setdefault(bucket, []).append(blob)
    ranges = writer.take_ranges()
    assert len({path for _, path, _, _ in ranges}) > 10  # the small buffer forced many run files

    groups = spill.bucket_groups(ranges, target_bytes=2_000)
    assert len(groups) > 3
    seen: set[int] = set()
    for group in groups:
        buckets = {bucket for bucket, *_ in group}
        assert not buckets & seen  # a bucket lives in exactly one group
        seen |= buckets
    assert seen == set(written)
    for group in groups:
        for bucket in {b for b, *_ in group}:
            mine = [r for r in group if r[0] == bucket]
            assert sorted(spill.read_blobs(mine)) == sorted(written[bucket])


def test_merged_fragments_are_sorted_and_complete(tmp_path: Path) -> None:
    rng = random.Random(3)
    items = [(rng.randbytes(4), rng.randbytes(rng.randrange(0, 30))) for _ in range(300)]
    paths = [
        spill.write_fragment(tmp_path, f"part{i}", items[i::4]) for i in range(4)
    ]  # four sorted fragments of interleaved items
    merged = list(spill.merge_fragments(paths))
    assert merged == [data for _, data in sorted(items)]


def test_truncated_run_file_is_an_error_naming_it(tmp_path: Path) -> None:
    writer = spill.RunWriter(tmp_path, buffer_bytes=1 << 20)
    writer.add(1, b"x" * 100)
    (bucket, path, offset, length) = writer.take_ranges()[0]
    Path(path).write_bytes(Path(path).read_bytes()[:50])
    with pytest.raises(OSError, match="truncated"):
        list(spill.read_blobs([(bucket, path, offset, length)]))


def test_ingest_through_many_runs_and_groups_writes_the_same_bytes(tmp_path, monkeypatch) -> None:
    """Tiny buffers (a run file every few records, a group per bucket) change nothing written:
    duplicates still meet (they share a bucket) and shards are merged in the same order."""
    rows = csv_rows(SMS_CSV, 600)
    rows += rows[:40]  # duplicates that land in other run files than their originals
    with (tmp_path / "sms.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["text", "label"])
        writer.writeheader()
        writer.writerows({"text": r["text"], "label": r["label"]} for r in rows)
    step = {"component": "csv_table", "path": "sms.csv", "label": "label", "shards": 2}
    path = pipeline_file(tmp_path, step)
    record, default = ingest(path, tmp_path / "runs-default")

    monkeypatch.setattr(ingest_stages, "BUFFER_BYTES", 2_000)
    monkeypatch.setattr(ingest_stages, "GROUP_BYTES", 1)
    small, many = ingest(path, tmp_path / "runs-small")

    assert shard_contents(many) == shard_contents(default)
    assert small.counts == record.counts
    assert record.counts["read"] == 640
    duplicates = [r for r in examples.rejected_records(many) if r["stage"] == "deduplicate"]
    assert len(duplicates) >= 40
    assert examples.feature_spec(many) == examples.feature_spec(default)
