"""The element functions of the ingest engine: spill, deduplicate + encode, write shards.

``beamline.ingest_engine`` wires them into named composite stages; each function here handles
one element (a record, a report, a group of buckets, a shard) and is small enough to test on its
own. Imported only when an ingest runs (it imports Apache Beam). Records never pass through a Beam
``GroupByKey``: they travel through the local files of ``beamline.spill`` and Beam carries only
file names, byte ranges and small summaries, so memory stays bounded on every runner.

1. ``SpillRecords`` (fused with the source and the transforms): content hash, split, dtype kinds
   and split sizes per record; the record goes to a run file bucketed by its hash. At the end of
   each bundle it emits one *report*: its run-file ranges, kinds and sizes.
2. ``merge_reports`` combines the reports into the *manifest*: every range, the kinds (hence
   the dtypes) and the sizes (hence the shard plan).
3. ``dedupe_and_encode`` takes a group of whole buckets (duplicates share a hash, hence a
   bucket): keeps one record per hash, counts statistics, encodes ``tf.train.Example`` and
   writes one sorted fragment per (split, shard).
4. ``write_shard`` merges a shard's fragments into its GZIP TFRecord file.
"""

from __future__ import annotations

import json
import os
import pickle
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import apache_beam as beam
from apache_beam import pvalue
from apache_beam.transforms import window
from apache_beam.utils.windowed_value import WindowedValue

from . import examples as ex
from . import spill
from .atomic import atomic_write, write_json
from .errors import PipelineError
from .feature_stats import FeatureStats, dtype_of, merge_kinds, record_kinds
from .records import (
    META_KEY,
    REJECTED,
    SOURCE_KEY,
    Reject,
    content_hash,
    natural_key,
    record_source,
    rejected,
)
from .shards import SHARD_SUFFIX, encode_record, shard_name, shard_of, shard_plan
from .splits import predefined_split, split_key, split_of

if TYPE_CHECKING:
    from .components import Split

#: Buckets of the content-hash space; a group of records read back together is whole buckets.
BUCKETS = 256
#: Bytes a worker buffers before it writes a run file.
BUFFER_BYTES = 8 * 1024 * 1024
#: Bytes of run files deduplicated and encoded together (one group).
GROUP_BYTES = 8 * 1024 * 1024
STATS = "stats"
TRAIN = "train"


def bucket_of(digest: str) -> int:
    """The bucket of a record with content hash ``digest``."""
    return (int(digest[:8], 16) * BUCKETS) >> 32


def place_record(
    record: dict[str, Any], split: Split, shares: list[tuple[str, float]]
) -> tuple[str, dict[str, Any], str] | dict[str, str]:
    """``(split name, record, content hash)`` of one record (the record without the feature
    that named its split, if one did), or the rejected-record entry when its split key or
    named split is missing or unknown."""
    if split.from_feature:
        named = predefined_split(record, split.from_feature)
        if isinstance(named, str):
            return rejected(record_source(record), "split", named)
        name, record = named
        return name, record, content_hash(record)
    digest = content_hash(record)
    key = split_key(record, digest, split)
    if isinstance(key, str):
        return rejected(record_source(record), "split", key)
    return split_of(key, shares, split.salt), record, digest


class Spiller:
    """Hash, split and spill records to run files, and gather the report of what it spilled
    (plain Python: the ``SpillRecords`` DoFn runs one per bundle, the in-process path one per
    step)."""

    def __init__(self, folder: str, split: Split, shares: list[tuple[str, float]]) -> None:
        self.split = split
        self.shares = shares
        self.writer = spill.RunWriter(folder, BUFFER_BYTES)
        self.kinds: dict[str, set[str]] = {}
        self.sizes: dict[str, list[int]] = {}

    def add(self, record: dict[str, Any]) -> dict[str, str] | None:
        """Spill one record; return the rejected-record entry when its split key is missing."""
        placed = place_record(record, self.split, self.shares)
        if isinstance(placed, dict):
            return placed
        split, record, digest = placed
        record_kinds(record, self.kinds, f"{record_source(record)}: ")
        blob = pickle.dumps((digest, split, record), protocol=pickle.HIGHEST_PROTOCOL)
        size = self.sizes.get(split)
        if size is None:
            size = self.sizes[split] = [0, 0]
        size[0] += 1
        size[1] += len(blob)
        self.writer.add(bucket_of(digest), blob)
        return None

    def report(self) -> dict[str, Any] | None:
        """Write the last run file; the report of everything spilled (None when nothing was)."""
        ranges = self.writer.take_ranges()
        if ranges or self.kinds:
            return {"ranges": ranges, "kinds": self.kinds, "sizes": self.sizes}
        return None


class SpillRecords(beam.DoFn):
    """Hash, split and spill records to run files; emit one report per bundle."""

    def __init__(self, folder: str, split: Split, shares: list[tuple[str, float]]) -> None:
        self.folder = folder
        self.split = split
        self.shares = shares

    def start_bundle(self) -> None:
        """Start an empty buffer and empty summaries."""
        self.spiller = Spiller(self.folder, self.split, self.shares)

    def process(self, record: dict[str, Any]) -> Iterator[Any]:
        """Spill one record, or reject it when its split key is missing."""
        bad = self.spiller.add(record)
        if bad is not None:
            yield pvalue.TaggedOutput(REJECTED, bad)

    def finish_bundle(self) -> Iterator[WindowedValue]:
        """Write the last run file and emit this bundle's report."""
        report = self.spiller.report()
        if report is not None:
            everywhere = window.GlobalWindow()
            yield WindowedValue(report, everywhere.max_timestamp(), [everywhere])


def apply_chain(record: dict[str, Any], functions: list[tuple[str, Any]]) -> Iterator[Any]:
    """Apply consecutive record-stage functions ``(label, fn)`` to one record in turn (as
    ``beamline.ingest.record_stage`` applies one): a ``Reject`` goes to ``rejected`` naming its
    stage's label and ends the record; any other exception fails, naming stage and record."""
    for label, fn in functions:
        source = record_source(record)
        try:
            out = fn(record)
        except Reject as exc:
            yield pvalue.TaggedOutput(REJECTED, rejected(exc.source or source, label, exc.reason))
            return
        except Exception as exc:
            raise RuntimeError(f"stage '{label}' failed on {source}: {exc}") from exc
        record = out if SOURCE_KEY in out else {**out, SOURCE_KEY: source}
    yield record


class CountBundle(beam.DoFn):
    """Count elements per bundle; emit each bundle's count (a sum of them is the total: one
    small value per bundle instead of a 1 per element through a combine)."""

    def start_bundle(self) -> None:
        """Start at 0."""
        self.count = 0

    def process(self, element: Any) -> None:
        """Count one element."""
        self.count += 1

    def finish_bundle(self) -> Iterator[WindowedValue]:
        """Emit the bundle's count (none for an empty bundle)."""
        if self.count:
            everywhere = window.GlobalWindow()
            yield WindowedValue(self.count, everywhere.max_timestamp(), [everywhere])


def merge_reports(reports: Any) -> dict[str, Any]:
    """Combine bundle reports into the manifest (a ``CombineGlobally`` function)."""
    out: dict[str, Any] = {"ranges": [], "kinds": {}, "sizes": {}}
    reports = list(reports)
    for report in reports:
        out["ranges"].extend(report["ranges"])
        for split, (count, nbytes) in report["sizes"].items():
            mine = out["sizes"].setdefault(split, [0, 0])
            mine[0] += count
            mine[1] += nbytes
    out["kinds"] = merge_kinds(r["kinds"] for r in reports)
    return out


def dtypes(manifest: dict[str, Any]) -> dict[str, Any]:
    """The encoding schema (feature -> dtype) decided from every record's kinds."""
    return {"features": {name: {"dtype": dtype_of(k)} for name, k in manifest["kinds"].items()}}


def groups(manifest: dict[str, Any]) -> list[list[spill.Range]]:
    """The manifest's ranges cut into groups of whole buckets."""
    return spill.bucket_groups(manifest["ranges"], GROUP_BYTES)


def dedupe_and_encode(
    ranges: list[spill.Range],
    folder: str,
    label: str | None,
    deduplicate: bool,
    analyzed: bool,
    schema: dict[str, Any],
    plan: dict[str, Any],
) -> Iterator[Any]:
    """One group of buckets: drop duplicates, gather statistics, encode, write fragments.

    Emits ``((split, shard), fragment path)`` on the main output, duplicates on ``rejected``,
    one ``FeatureStats`` on ``stats`` and, when ``analyzed``, the train records on ``train``."""
    by_hash: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for blob in spill.read_blobs(ranges):
        digest, split, record = pickle.loads(blob)
        by_hash.setdefault(digest, []).append((split, record))
    stats = FeatureStats(label)
    fragments: dict[tuple[str, int], list[tuple[bytes, bytes]]] = {}
    while by_hash:  # popped as encoded: a group's records and their encodings are not both held
        digest, entries = by_hash.popitem()
        if deduplicate and len(entries) > 1:
            entries = sorted(entries, key=_keep_order)
            kept = record_source(entries[0][1])
            for _, other in entries[1:]:
                reason = f"duplicate of {kept}"
                yield pvalue.TaggedOutput(
                    REJECTED, rejected(record_source(other), "deduplicate", reason)
                )
            entries = entries[:1]
        for split, record in entries:
            stats.add(record, f"{record_source(record)}: ")
            shard = shard_of(digest, plan[split]["shards"])
            data = encode_record(record, schema)
            fragments.setdefault((split, shard), []).append((bytes.fromhex(digest), data))
            if analyzed and split == "train":
                yield pvalue.TaggedOutput(TRAIN, record)
    for (split, shard), items in sorted(fragments.items()):
        path = spill.write_fragment(folder, f"{split}-{shard:05d}", items)
        yield (split, shard), path
    yield pvalue.TaggedOutput(STATS, stats)


def _keep_order(entry: tuple[str, dict[str, Any]]) -> tuple[Any, str]:
    record = entry[1]
    return natural_key(record_source(record)), repr(record.get(META_KEY))


def write_shard(
    item: tuple[tuple[str, int], Any], examples_dir: str, counts_dir: str, plan: dict[str, Any]
) -> None:
    """Merge a shard's sorted fragments into ``<split>/part-NNNNN-of-MMMMM.tfrecord.gz``."""
    (split, shard), paths = item
    folder = Path(examples_dir) / split
    folder.mkdir(parents=True, exist_ok=True)
    name = shard_name(shard, plan[split]["shards"], SHARD_SUFFIX)
    fragments = [p for p in paths if p is not None]
    count = ex.write_tfrecords(folder / name, spill.merge_fragments(fragments))
    for path in fragments:
        os.remove(path)
    save_json({"split": split, "count": count}, str(Path(counts_dir) / f"{split}-{shard:05d}.json"))


def write_rejected(item: tuple[int, Iterable[dict[str, str]]], folder: str, counts: str) -> None:
    """Write every rejected-record entry, sorted, to ``folder``'s one JSONL file; save the count."""
    _, entries = item
    lines = sorted(json.dumps(e, sort_keys=True, ensure_ascii=False) for e in entries)
    Path(folder).mkdir(parents=True, exist_ok=True)
    atomic_write(Path(folder) / shard_name(0, 1, ".jsonl"), "".join(line + "\n" for line in lines))
    save_json({"count": len(lines)}, counts)


def write_asset(item: tuple[str, bytes], folder: str) -> None:
    """Write one analyzer asset ``(relative path, bytes)`` under ``folder`` (``assets/``)."""
    relative, data = item
    target = (Path(folder) / relative).resolve()
    if Path(folder).resolve() not in target.parents:
        raise PipelineError(f"an analyzer asset path leaves assets/: {relative!r}")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data if isinstance(data, bytes) else str(data).encode("utf-8"))


# --- small functions of the counting and planning steps -------------------------------------------


def one(_: Any) -> int:
    """1 for any element (counting)."""
    return 1


def key_zero(value: Any) -> tuple[int, Any]:
    """``(0, value)``: everything under one key (one rejected file)."""
    return 0, value


def save_json(value: Any, path: str) -> None:
    """Write ``value`` as JSON to ``path`` (a count, a summary) atomically."""
    write_json(path, value, default=_json_default)


def save_schema(stats: FeatureStats, path: str) -> None:
    """Write the written form of the feature statistics to ``path``."""
    save_json(stats.schema(), path)


def _json_default(value: Any) -> Any:
    if isinstance(value, set):
        return sorted(value, key=str)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


def plan_of(
    manifest: dict[str, Any], names: list[str], shards: int, skip_empty: bool
) -> dict[str, dict[str, int]]:
    """The shard plan of the manifest's split sizes."""
    return shard_plan(manifest["sizes"], names, shards, skip_empty)


def all_shards(plan: dict[str, dict[str, int]]) -> Iterator[tuple[Any, None]]:
    """``((split, shard), None)`` for every planned shard: empty shards are written too."""
    for split, entry in plan.items():
        for shard in range(entry["shards"]):
            yield (split, shard), None
