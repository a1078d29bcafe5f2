"""The in-process ingest a batch of columns at a time: table rows hashed, encoded and counted per
column with Arrow and numpy instead of a dict per row.

A reader whose item function has ``column_batches(item)`` (``csv_table``'s) yields
``ColumnBatch`` objects (Arrow arrays of one type each: string, int64 or float64, nulls for
missing values, and each row's ``__source__``), plus plain records and ``Reject`` for what it
read a row at a time. Each transform with ``columns_stage(ctx)`` maps a ``ColumnBatch`` to a
``ColumnBatch``; a stage that cannot (an expression on text, a value it rejects) raises
``NotColumnar`` and that batch goes on as records through the remaining record functions, so a
bad row is rejected with the same reason as on the record path. A batch whose values the
vectorised encoding cannot write exactly as ``beamline.shards.encode_record`` does (NaN, a float
beyond float32, an integer beyond int64) is spilled a record at a time as well.

What is the same as the record path (``beamline.ingest_in_process``): every record's content
hash (``beamline.records.content_hash``), split, shard, its ``tf.train.Example`` bytes, the
order of each shard (by content hash), the rejected records with their reasons, the counts
and the statistics. What differs: a run file holds ``(digest, split, source, example bytes)``
rather than the pickled record, so a split's byte size, from which the automatic shard count
(``shards: 0``) is planned, is smaller: a split of more than 64 MiB may get fewer shards
(``TARGET_SHARD_BYTES``); and analyzers see the train records in read order rather than in
write order (an approximate quantile can differ within its error bound). The path needs
``deduplicate: false`` when a transform analyzes (the analyzers are fed as rows are read).
"""

from __future__ import annotations

import gzip
import hashlib
import os
import pickle
import struct
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from . import ingest_stages as stages
from . import spill, tfrecord
from .errors import PipelineError
from .examples import decode_example, wire_scalar
from .feature_stats import (
    MAX_CLASSES,
    FeatureStats,
    _empty_feature,
    _has_space,
    dtype_of,
    label_text,
    record_kinds,
)
from .records import SOURCE_KEY, Reject, natural_key, record_source, rejected
from .shards import SHARD_SUFFIX, encode_record, shard_name, shard_of
from .splits import predefined_split, split_key, split_of
from .stream_batches import RecordFunction, apply_in_bulk

if TYPE_CHECKING:
    from .components import Source, Split
    from .context import StepContext

#: Whether the in-process ingest may take the columnar path (tests compare both paths).
ENABLED = True
_KIND_OF_ARROW = {pa.string(): "str", pa.int64(): "int", pa.float64(): "float"}


class NotColumnar(Exception):
    """Raised by a columnar stage for a batch it cannot map: the batch goes on as records."""


class ColumnBatch:
    """Rows as columns: ``columns`` name -> Arrow array (string, int64 or float64; null =
    missing), ``sources`` each row's ``__source__``."""

    __slots__ = ("columns", "sources")

    def __init__(self, columns: dict[str, pa.Array], sources: list[str]) -> None:
        self.columns = columns
        self.sources = sources

    def __len__(self) -> int:
        return len(self.sources)

    def records(self) -> list[dict[str, Any]]:
        """The same rows as records (the record path's fallback)."""
        out: list[dict[str, Any]] = [{} for _ in self.sources]
        for name, column in self.columns.items():
            for record, value in zip(out, column.to_pylist(), strict=True):
                record[name] = value
        for record, source in zip(out, self.sources, strict=True):
            record[SOURCE_KEY] = source
        return out

    def take(self, rows: np.ndarray) -> ColumnBatch:
        """The batch of the rows at ``rows`` (indices)."""
        indices = pa.array(rows, pa.int64())
        return ColumnBatch(
            {name: column.take(indices) for name, column in self.columns.items()},
            [self.sources[i] for i in rows.tolist()],
        )


ColumnStage = Callable[[ColumnBatch], ColumnBatch]


def columnar_stages(
    source: Source, ctx: StepContext, reader: Any, analyzers: Sequence[Any]
) -> list[ColumnStage] | None:
    """Each transform's columnar stage when ``source`` can be ingested a batch of columns at a
    time (its reader's item function has ``column_batches``, every transform a
    ``columns_stage``, no deduplication where a transform analyzes), else None."""
    if not ENABLED:
        return None
    fn = reader.source_items[2]
    if not callable(getattr(fn, "column_batches", None)):
        return None
    if analyzers and (source.deduplicate or not all(hasattr(a, "add_columns") for a in analyzers)):
        return None
    out = []
    for transform in source.transforms:
        make = getattr(transform, "columns_stage", None)
        if not callable(make):
            return None
        out.append(make(ctx))
    return out


# --- vectorised forms of content_hash and encode_record ----------------------------------------


def _binary(lengths: np.ndarray, data: np.ndarray) -> pa.Array:
    """A binary array of ``len(lengths)`` values cut from the bytes ``data``."""
    offsets = np.zeros(len(lengths) + 1, np.int32)
    np.cumsum(lengths, out=offsets[1:])
    return pa.Array.from_buffers(
        pa.binary(), len(lengths), [None, pa.py_buffer(offsets), pa.py_buffer(data)]
    )


def _varints(values: np.ndarray) -> tuple[pa.Array, np.ndarray]:
    """Each uint64 of ``values`` as a protobuf varint (binary array) and its byte count."""
    values = values.astype(np.uint64)
    sizes = np.ones(len(values), np.int64)
    rest = values >> np.uint64(7)
    while rest.any():
        sizes += rest > 0
        rest = rest >> np.uint64(7)
    width = int(sizes.max()) if len(sizes) else 1
    shifts = np.arange(width, dtype=np.uint64) * np.uint64(7)
    groups = ((values[:, None] >> shifts[None, :]) & np.uint64(0x7F)).astype(np.uint8)
    position = np.arange(width)[None, :]
    groups |= np.where(position < sizes[:, None] - 1, 0x80, 0).astype(np.uint8)
    keep = position < sizes[:, None]
    return _binary(sizes, groups[keep]), sizes


def _join(parts: list[Any]) -> pa.Array:
    """Element-wise concatenation of binary arrays and scalars (a null part counts as empty)."""
    binary = [
        pa.scalar(part, pa.binary()) if isinstance(part, bytes)
        else part.cast(pa.binary()) if part.type != pa.binary() else part
        for part in parts
    ]  # fmt: skip
    return pc.binary_join_element_wise(
        *binary, pa.scalar(b"", pa.binary()), null_handling="replace", null_replacement=b""
    )


def _as_binary(array: pa.Array) -> pa.Array:
    return array.cast(pa.binary())


def _nulls(array: pa.Array, valid: pa.Array) -> pa.Array:
    """``array`` with nulls where ``valid`` is false."""
    return pc.if_else(valid, array, pa.scalar(None, array.type))


def _float_repr(values: np.ndarray) -> pa.Array:
    """``repr`` of each float (as ``canonical_bytes`` writes it), mostly from Arrow's cast."""
    text = pc.cast(pa.array(values, pa.float64()), pa.string())
    magnitude = np.abs(values)
    plain = ((magnitude >= 1e-4) & (magnitude < 1e16)) | (values == 0)
    plain &= ~pc.match_substring(text, "e").to_numpy(zero_copy_only=False)
    dotted = pc.match_substring(text, ".").to_numpy(zero_copy_only=False)
    fixed = pc.if_else(pa.array(dotted), text, pc.binary_join_element_wise(text, ".0", ""))
    if plain.all():
        return fixed
    items = fixed.to_pylist()
    for i in np.flatnonzero(~plain).tolist():  # Arrow writes these another way than repr
        items[i] = repr(float(values[i]))
    return pa.array(items, pa.string())


def _name_frame(name: str) -> bytes:
    return b"s%d:" % len(name.encode("utf-8")) + name.encode("utf-8")


def _int_prefix(name: str, size: int) -> bytes:
    """An int64 entry's bytes before its varint of ``size`` bytes (10: a negative value)."""
    value = -1 if size == 10 else 1 << (7 * (size - 1))
    return wire_scalar(name, "int64", value)[:-size]  # type: ignore[index]


def _column_parts(name: str, column: pa.Array) -> tuple[pa.Array, pa.Array]:
    """``(canonical frames, Example entries)`` of one column's cells, null where missing.

    Raises ``NotColumnar`` for values ``encode_record`` writes through protobuf."""
    valid = pc.is_valid(column)
    key = _name_frame(name)
    kind = _KIND_OF_ARROW.get(column.type)
    if kind == "str":
        data = _as_binary(column)
        lengths = pc.binary_length(data).to_numpy(zero_copy_only=False).astype(np.int64)
        frame = _join([key + b"s", pc.cast(pa.array(lengths), pa.string()),
                       b":", data])  # fmt: skip
        if len(lengths) and lengths.max() > 123:  # framed by wire_entry's longer lengths
            raise NotColumnar(f"column '{name}': text of more than 123 bytes")
        prefixes = pa.array(
            [wire_scalar(name, "bytes", b"x" * n)[: -n or None] for n in range(124)]
        )
        entry = _join([prefixes.take(pa.array(lengths)), data])
        return _nulls(frame, valid), _nulls(entry, valid)
    if kind == "int":
        values = column.fill_null(0).to_numpy(zero_copy_only=False)
        frame = _join([key + b"i", pc.cast(pa.array(values), pa.string()),
                       b";"])  # fmt: skip
        wire, sizes = _varints(values.astype(np.int64).view(np.uint64))
        prefixes = pa.array([b""] + [_int_prefix(name, n) for n in range(1, 11)])
        entry = _join([prefixes.take(pa.array(sizes)), wire])
        return _nulls(frame, valid), _nulls(entry, valid)
    if kind == "float":
        values = column.fill_null(0.0).to_numpy(zero_copy_only=False)
        if not np.isfinite(values).all() or (np.abs(values) > np.finfo(np.float32).max).any():
            raise NotColumnar(f"column '{name}': a value protobuf converts (NaN, inf, float64)")
        frame = _join([key + b"f", _float_repr(values), b";"])
        packed = values.astype("<f4")
        if not np.isfinite(packed).all():  # rounds beyond float32: struct refuses it
            raise NotColumnar(f"column '{name}': a value beyond float32")
        body = _binary(np.full(len(values), 4, np.int64), packed.view(np.uint8))
        entry = _join([wire_scalar(name, "float", 0.0)[:-4], body])
        return _nulls(frame, valid), _nulls(entry, valid)
    raise NotColumnar(f"column '{name}': Arrow type {column.type}")


def hashes_and_examples(batch: ColumnBatch) -> tuple[list[str], list[bytes]]:
    """Each row's ``content_hash`` and ``encode_record`` bytes (columns in name order)."""
    frames, entries = [], []
    for name in sorted(batch.columns):
        if name.startswith("__"):
            continue
        frame, entry = _column_parts(name, batch.columns[name])
        frames.append(frame)
        entries.append(entry)
    rows = len(batch)
    if not frames:
        return [hashlib.sha256(b"").hexdigest()] * rows, [b""] * rows
    canonical = _join(frames) if len(frames) > 1 else frames[0].fill_null(b"")
    body = _join(entries) if len(entries) > 1 else entries[0].fill_null(b"")
    lengths = pc.binary_length(body).to_numpy(zero_copy_only=False).astype(np.int64)
    header, _ = _varints(lengths)
    example = _join([b"\x0a", header, body])
    example = pc.if_else(pa.array(lengths > 0), example, pa.scalar(b"", pa.binary()))
    sha = hashlib.sha256
    return [sha(data).hexdigest() for data in canonical.to_pylist()], example.to_pylist()


# --- spilling ----------------------------------------------------------------------------------


class ColumnSpiller:
    """Hash, split, encode, count and spill batches of columns (and records) to run files.

    A run file's blob is ``(digest, split, source, example bytes)``; ``stats`` and ``kinds``
    count every spilled record."""

    def __init__(
        self,
        folder: str,
        split: Split,
        shares: list[tuple[str, float]],
        label: str | None,
        analyzers: Sequence[Any] = (),
    ) -> None:
        self.split, self.shares, self.analyzers = split, shares, list(analyzers)
        self.writer = spill.RunWriter(folder, stages.BUFFER_BYTES)
        self.kinds: dict[str, set[str]] = {}
        self.sizes: dict[str, list[int]] = {}
        self.dtypes: dict[str, str] = {}
        self.stats = FeatureStats(label)

    def _spill(self, digest: str, split: str, source: str, data: bytes) -> None:
        blob = pickle.dumps((digest, split, source, data), protocol=pickle.HIGHEST_PROTOCOL)
        size = self.sizes.get(split)
        if size is None:
            size = self.sizes[split] = [0, 0]
        size[0] += 1
        size[1] += len(blob)
        self.writer.add(stages.bucket_of(digest), blob)

    def _dtype(self, name: str, kinds: set[str]) -> str:
        dtype = dtype_of(kinds)
        known = self.dtypes.setdefault(name, dtype)
        if known != dtype:
            raise PipelineError(
                f"feature '{name}' has values of dtype {known} and {dtype} in one ingest "
                "(the columnar ingest encodes each column with one dtype)"
            )
        return dtype

    def add_records(self, records: Iterable[dict[str, Any]], bad: list[dict[str, str]]) -> None:
        """Spill records one at a time (what a batch could not do as columns)."""
        for record in records:
            where = record_source(record)
            placed = stages.place_record(record, self.split, self.shares)
            if isinstance(placed, dict):
                bad.append(placed)
                continue
            split, record, digest = placed
            mine: dict[str, set[str]] = {}
            record_kinds(record, mine, f"{where}: ")
            schema = {"features": {n: {"dtype": self._dtype(n, k)} for n, k in mine.items()}}
            for name, kinds in mine.items():
                self.kinds.setdefault(name, set()).update(kinds)
            self.stats.add(record, f"{where}: ")
            if split == "train":
                for analyzer in self.analyzers:
                    analyzer.add(record)
            self._spill(digest, split, where, encode_record(record, schema))

    def add_batch(self, batch: ColumnBatch, bad: list[dict[str, str]]) -> None:
        """Spill a batch of columns; raises ``NotColumnar`` (before spilling any of it) when
        its values need the record path's encoding."""
        feature = self.split.from_feature
        if feature:
            splits, reasons = _named_splits(batch, feature)
            keep = np.flatnonzero(reasons == None)  # noqa: E711 - an object array
            for i in np.flatnonzero(reasons != None).tolist():  # noqa: E711
                bad.append(rejected(batch.sources[i], "split", reasons[i]))
            columns = {n: c for n, c in batch.columns.items() if n != feature}
            batch = ColumnBatch(columns, batch.sources)
            if len(keep) < len(splits):
                batch, splits = batch.take(keep), splits[keep]
            if not len(batch):
                return
            digests, examples = hashes_and_examples(batch)
            split_names = splits.tolist()
        else:
            digests, examples = hashes_and_examples(batch)
            split_names, kept = [], []
            records = batch.records() if (self.split.key or self.split.group_by) else None
            for i, digest in enumerate(digests):
                key = split_key(records[i], digest, self.split) if records else digest.encode()
                if isinstance(key, str):
                    bad.append(rejected(batch.sources[i], "split", key))
                    continue
                kept.append(i)
                split_names.append(split_of(key, self.shares, self.split.salt))
            if len(kept) < len(digests):
                rows = np.array(kept, np.int64)
                batch = batch.take(rows)
                digests = [digests[i] for i in kept]
                examples = [examples[i] for i in kept]
        self._count(batch)
        if self.analyzers:
            train = np.flatnonzero(np.array(split_names, object) == "train")
            if len(train):
                part = batch.take(train) if len(train) < len(batch) else batch
                for analyzer in self.analyzers:
                    analyzer.add_columns(part.columns)
        spill_one = self._spill
        for digest, split, source, data in zip(
            digests, split_names, batch.sources, examples, strict=True
        ):
            spill_one(digest, split, source, data)

    def _count(self, batch: ColumnBatch) -> None:
        """Kinds and statistics of a batch (as ``record_kinds`` and ``FeatureStats.add`` of
        each row)."""
        stats = self.stats
        stats.count += len(batch)
        for name, column in batch.columns.items():
            if name.startswith("__"):
                continue
            present = len(column) - column.null_count
            if not present:
                continue
            kind = _KIND_OF_ARROW[column.type]
            self._dtype(name, {kind})
            self.kinds.setdefault(name, set()).add(kind)
            mine = stats.features.get(name)
            if mine is None:
                mine = stats.features[name] = _empty_feature(1)
            mine["kinds"].add(kind)
            mine["present"] += present
            mine["min_len"] = min(mine["min_len"], 1)
            mine["max_len"] = max(mine["max_len"], 1)
            if kind == "str" and not mine["spaced"]:
                mine["spaced"] = any(_has_space(v) for v in pc.unique(column).to_pylist())
        label = stats.label
        if label and stats.labels is not None and label in batch.columns:
            column = batch.columns[label]
            for value in pc.unique(column.drop_null()).to_pylist():
                stats.labels.add(label_text(value))
            if len(stats.labels) > MAX_CLASSES:
                stats.labels = None

    def manifest(self) -> dict[str, Any]:
        """Write the last run file; the manifest of everything spilled."""
        for name, kinds in self.kinds.items():
            self._dtype(name, kinds)
        return {"ranges": self.writer.take_ranges(), "kinds": self.kinds, "sizes": self.sizes}


def _named_splits(batch: ColumnBatch, feature: str) -> tuple[np.ndarray, np.ndarray]:
    """Each row's split named by ``feature`` and the reason where it names none (None where it
    does), as ``predefined_split`` decides per record."""
    rows = len(batch)
    column = batch.columns.get(feature)
    if column is None:
        reason = predefined_split({}, feature)
        return np.full(rows, "", object), np.full(rows, reason, object)
    encoded = pc.dictionary_encode(column)
    names, reasons = [], []
    for value in encoded.dictionary.to_pylist():
        named = predefined_split({feature: value}, feature)
        names.append("" if isinstance(named, str) else named[0])
        reasons.append(named if isinstance(named, str) else None)
    missing = predefined_split({}, feature)
    names.append("")
    reasons.append(missing)
    indices = encoded.indices.fill_null(len(names) - 1).to_numpy(zero_copy_only=False)
    return np.array(names, object)[indices], np.array(reasons, object)[indices]


# --- reading and writing -----------------------------------------------------------------------


def _read(
    reader: Any,
    stages_: list[ColumnStage],
    chain: list[RecordFunction],
    spiller: ColumnSpiller,
    bad: list[dict[str, str]],
) -> tuple[int, int]:
    """Read every item: batches through the columnar stages, records through ``chain``;
    returns ``(records read, rejects read)``."""
    label, items, fn = reader.source_items
    read = read_bad = 0
    pending: list[dict[str, Any]] = []

    def flush() -> None:
        if pending:
            records, stage_bad, _ = apply_in_bulk((list(pending), [], 0), chain)
            bad.extend(stage_bad)
            spiller.add_records(records, bad)
            pending.clear()

    for item in items:
        try:
            for out in fn.column_batches(item):
                if isinstance(out, Reject):
                    read_bad += 1
                    bad.append(rejected(out.source or str(item), label, out.reason))
                    continue
                if not isinstance(out, ColumnBatch):
                    read += 1
                    pending.append(out)
                    if len(pending) >= 256:
                        flush()
                    continue
                flush()
                read += len(out)
                _columnar(out, stages_, chain, spiller, bad)
        except Reject as exc:
            read_bad += 1
            bad.append(rejected(exc.source or str(item), label, exc.reason))
        flush()
    return read, read_bad


def _columnar(
    batch: ColumnBatch,
    stages_: list[ColumnStage],
    chain: list[RecordFunction],
    spiller: ColumnSpiller,
    bad: list[dict[str, str]],
) -> None:
    """One batch through the columnar stages and into the spiller, or from the stage that
    cannot on as records."""
    for at, stage in enumerate(stages_):
        try:
            batch = stage(batch)
        except NotColumnar:
            records, stage_bad, _ = apply_in_bulk((batch.records(), [], 0), chain[at:])
            bad.extend(stage_bad)
            spiller.add_records(records, bad)
            return
    try:
        spiller.add_batch(batch, bad)
    except NotColumnar:
        spiller.add_records(batch.records(), bad)


def _remove(stats: FeatureStats, data: bytes) -> None:
    """Take a dropped duplicate's record out of ``stats`` (its content is the kept one's, so
    only the counts change)."""
    stats.count -= 1
    for name in decode_example(data):
        stats.features[name]["present"] -= 1


class _ShardWriter:
    """One shard's GZIP TFRecord file written as ``beamline.tfrecord.write_tfrecords`` writes
    it (the same bytes for the same records), a sorted run of records at a time."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path, self.tmp = path, path.with_name(f".{path.name}.{os.getpid()}.tmp")
        self.raw = open(self.tmp, "wb")  # noqa: SIM115 - closed by close()
        self.stream = gzip.GzipFile(filename="", mode="wb", fileobj=self.raw, mtime=0,
                                    compresslevel=6)  # fmt: skip
        self.count = 0
        self.crc = tfrecord._crc32c_function()
        self.headers: dict[int, bytes] = {}

    def write(self, records: Iterable[bytes]) -> None:
        """Append records (framed as TFRecord), in order."""
        pending: list[bytes] = []
        crc, headers, pack = self.crc, self.headers, _CRC.pack
        for record in records:
            header = headers.get(len(record))
            if header is None:
                length = struct.pack("<Q", len(record))
                header = headers[len(record)] = length + pack(tfrecord.masked_crc(length))
            pending += (header, record, pack(tfrecord._mask(crc(record))))
            self.count += 1
        if pending:
            self.stream.write(b"".join(pending))

    def close(self) -> int:
        """Finish the file under its name; the number of records."""
        self.stream.close()
        self.raw.close()
        os.replace(self.tmp, self.path)
        return self.count


_CRC = struct.Struct("<I")


def write_groups(
    manifest: dict[str, Any],
    plan: dict[str, Any],
    work: Path,
    examples_dir: Path,
    deduplicate: bool,
    stats: FeatureStats,
    bad: list[dict[str, str]],
) -> None:
    """Deduplicate every group of buckets and append its records to their shards (the groups
    are consecutive buckets of the content-hash space, so each shard is written in hash order
    without fragments to merge: the same files as ``beamline.ingest_stages.dedupe_and_encode``
    then ``write_shard``)."""
    writers = {
        (split, shard): _ShardWriter(
            examples_dir / split / shard_name(shard, entry["shards"], SHARD_SUFFIX)
        )
        for (split, shard), _ in stages.all_shards(plan)
        for entry in (plan[split],)
    }
    shards = {split: entry["shards"] for split, entry in plan.items()}
    for group in stages.groups(manifest):
        parts: dict[tuple[str, int], list[tuple[str, bytes]]] = {}
        entries: Iterator[tuple[str, list[tuple[str, str, bytes]]]]
        if deduplicate:
            by_hash: dict[str, list[tuple[str, str, bytes]]] = {}
            for blob in spill.read_blobs(group):
                digest, split, source, data = pickle.loads(blob)
                by_hash.setdefault(digest, []).append((split, source, data))
            entries = iter(by_hash.items())
        else:
            entries = (
                (digest, [(split, source, data)])
                for digest, split, source, data in map(pickle.loads, spill.read_blobs(group))
            )
        for digest, found in entries:
            if len(found) > 1:
                found = sorted(found, key=lambda entry: natural_key(entry[1]))
                kept = found[0][1]
                for _, source, data in found[1:]:
                    bad.append(rejected(source, "deduplicate", f"duplicate of {kept}"))
                    _remove(stats, data)
                found = found[:1]
            for split, _, data in found:
                key = (split, shard_of(digest, shards[split]))
                parts.setdefault(key, []).append((digest, data))
        for key, items in parts.items():
            items.sort()  # by (hash, bytes), as fragments are sorted and merged
            writers[key].write(data for _, data in items)
    counts = Path(work / "shards")
    for (split, shard), writer in writers.items():
        stages.save_json({"split": split, "count": writer.close()},
                         str(counts / f"{split}-{shard:05d}.json"))  # fmt: skip


def run_columnar(
    stages_: list[ColumnStage],
    source: Source,
    reader: Any,
    chain: list[RecordFunction],
    work: Path,
    examples_dir: Path,
    rejected_dir: Path,
    names: list[str],
    shares: list[tuple[str, float]],
    label: str | None,
    analyzers: Sequence[Any] = (),
    assets_dir: Path | None = None,
) -> None:
    """Run the ingest of ``source`` a batch of columns at a time; leaves the files
    ``beamline.ingest_in_process.run_in_process`` leaves (see the module's note on what
    differs)."""
    bad: list[dict[str, str]] = []
    spiller = ColumnSpiller(str(work / "runs"), source.split, shares, label, analyzers)
    read, read_rejected = _read(reader, stages_, chain, spiller, bad)
    stages.save_json(read, str(work / "read-records"))
    stages.save_json(read_rejected, str(work / "read-rejected"))
    manifest = spiller.manifest()
    plan = stages.plan_of(manifest, names, source.shards, bool(source.split.from_feature))
    write_groups(manifest, plan, work, examples_dir, source.deduplicate, spiller.stats, bad)
    for analyzer in analyzers:
        for item in analyzer.assets():
            stages.write_asset(item, str(assets_dir))
    stages.save_schema(spiller.stats, str(work / "schema"))
    if bad:
        stages.write_rejected((0, bad), str(rejected_dir), str(work / "rejected"))
