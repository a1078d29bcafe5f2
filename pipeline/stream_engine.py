"""The streaming engine: a stream's timestamped records to examples written window by window.

The story, each stage a named composite ``PTransform`` (Beam in streaming mode)::

    ReadStream (the stream's reader; fixed event-time windows; count per window)
        -> ApplyTransforms (the ingest engine's) -> DeduplicateWindow (per window)
        -> WriteWindows: shards, checks (statistics, alarms), acknowledge
    rejected records of every stage -> WriteWindowRejected: one JSONL per window, acknowledge

Per window the step writes::

    examples/window-<start>-<end>/part-NNNNN-of-MMMMM.tfrecord.gz   (sorted by content hash)
    rejected/window-<start>-<end>.jsonl

and what the stream's ``window_checks`` add (the streaming plugin: ``statistics/<window>.pb``,
alarms); once the stream ended, ``windows.json`` and ``features.json`` (windows listed as its
splits). A window is written as soon as the watermark passes its end; its records are
acknowledged to the stream (``Stream.acknowledge``) only after its files are in place.

A stream that reads in batches (``read_batches``, a broker's polls) and commits to a durable
store takes the batched path instead when no transform needs Beam (``beamline.stream_batches``:
one Beam element per poll and window, the same files and acknowledgements).

Imported only when a stream step runs (it imports Apache Beam at the top).
"""

from __future__ import annotations

import gc
import json
import shutil
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import apache_beam as beam
from apache_beam import pvalue
from apache_beam.transforms import window as beam_window

from . import examples as ex
from . import windows as W
from .atomic import atomic_write, write_json
from .components import StepResult
from .errors import SpecError
from .ingest_engine import ApplyTransforms, outputs_of
from .ingest_result import declared_features, write_features
from .records import MAIN, META_KEY, REJECTED, content_hash, record_source, rejected
from .shards import SHARD_SUFFIX, encode_record, shard_count, shard_name, shard_of
from .stream_batches import WriteBatchedWindows, record_functions, window_bounds
from .stream_durable import finish_durable, store_rejected, store_window
from .tfrecord import write_tfrecords
from .window_store import WindowStore

if TYPE_CHECKING:
    from .components import Stream
    from .context import StepContext

WINDOWS_FILE = "windows.json"
_WORK = ".stream"


class WindowChecks(Protocol):
    """What a stream adds to each window (``Stream.window_checks``): statistics and alarms.

    An alarm is a dict with at least ``window``; it is counted per window in ``windows.json``.
    The object is pickled into the Beam worker that writes the windows."""

    def check_window(self, name: str, examples: list[bytes], out: str) -> list[dict[str, Any]]:
        """Check one window's serialized examples as it closes; write what it keeps under
        ``out`` (the artifact folder); return the window's alarms."""
        ...

    def finish(
        self, ctx: StepContext, names: list[str], out: Path, alarms: list[dict[str, Any]]
    ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """Once the stream ended: every alarm (those of ``check_window`` and any across windows)
        and the entries it adds to ``windows.json``."""
        ...

    def gate(self, alarms: list[dict[str, Any]], out: Path) -> None:
        """Raise ``GateFailed`` when the alarms must fail the step (after everything is written)."""
        ...


# --- element functions (module level, so workers can load them) ----------------------------------


def _one(_: Any) -> tuple[int, int]:
    return 0, 1


def _key_zero(value: Any) -> tuple[int, Any]:
    return 0, value


def _with_hash(record: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    return content_hash(record), record


def _keep_one(item: tuple[str, Iterable[dict[str, Any]]]) -> Iterator[Any]:
    digest, records = item
    ordered = sorted(records, key=lambda r: (record_source(r), repr(r.get(META_KEY))))
    yield digest, ordered[0]
    for other in ordered[1:]:
        reason = f"duplicate of {record_source(ordered[0])} in the same window"
        yield pvalue.TaggedOutput(REJECTED, rejected(record_source(other), "deduplicate", reason))


def _save_read(item: tuple[int, int], work: str, window: Any = beam.DoFn.WindowParam) -> None:
    write_json(Path(work) / "read" / f"{window_bounds(window)[2]}.json", {"count": item[1]})


def _write_rejected(
    item: tuple[int, Iterable[dict[str, str]]],
    out: str,
    work: str,
    stream: Stream,
    store: str | None,
    window: Any = beam.DoFn.WindowParam,
) -> None:
    name = window_bounds(window)[2]
    entries = list(item[1])
    if store is not None:
        write_json(Path(work) / "rejected" / f"{name}.json", {"count": len(entries)})
        store_rejected(name, entries, store, stream)
        return
    lines = sorted(json.dumps(e, sort_keys=True, ensure_ascii=False) for e in entries)
    atomic_write(Path(out) / ex.REJECTED_DIR / f"{name}.jsonl", "".join(f"{x}\n" for x in lines))
    write_json(Path(work) / "rejected" / f"{name}.json", {"count": len(lines)})
    stream.acknowledge(name, [e["source"] for e in entries])


def _write_window(
    item: tuple[int, Iterable[tuple[str, dict[str, Any]]]],
    out: str,
    work: str,
    shards: int,
    label: str | None,
    checks: WindowChecks | None,
    stream: Stream,
    store: str | None,
    window: Any = beam.DoFn.WindowParam,
) -> None:
    """Write one window: its shards, what the checks keep, its entry; then acknowledge it."""
    start, end, name = window_bounds(window)
    items = sorted(item[1], key=lambda pair: pair[0])
    if store is not None:
        store_window(name, (start, end), items, store, work, label, checks, stream)
        return
    records = [record for _, record in items]
    summary = W.summarize(records, label)
    dtypes = {n: {"dtype": W.dtype_of(e["kinds"])} for n, e in summary["features"].items()}
    encoded = [(digest, encode_record(r, {"features": dtypes})) for digest, r in items]
    count = shard_count(len(encoded), sum(len(data) for _, data in encoded), shards)
    folder = Path(out) / ex.EXAMPLES_DIR / name
    folder.mkdir(parents=True, exist_ok=True)
    for shard in range(count):
        payloads = (data for digest, data in encoded if shard_of(digest, count) == shard)
        write_tfrecords(folder / shard_name(shard, count, SHARD_SUFFIX), payloads)
    alarms = checks.check_window(name, [data for _, data in encoded], out) if checks else []
    entry = {"window": name, "start": start, "end": end, "count": len(encoded), "shards": count}
    entry.update(summary=W.to_json(summary), alarms=alarms)
    write_json(Path(work) / "windows" / f"{name}.json", entry, ensure_ascii=False)
    stream.acknowledge(name, [record_source(r) for r in records])


# --- the stages -----------------------------------------------------------------------------------


class ReadStream(beam.PTransform):
    """The stream's reader in fixed event-time windows, and a count of what it read per window.

    Output: ``{"main": windowed records, "rejected": windowed rejected records}``."""

    def __init__(self, stream: Stream, reader: Any, work: Path) -> None:
        super().__init__()
        self.stream, self.reader, self.work = stream, reader, work

    def expand(self, root: Any) -> dict[str, Any]:
        main, bad = outputs_of(
            root | "Reader" >> self.reader, f"stream '{self.stream.name}': read()"
        )
        fixed = beam_window.FixedWindows(self.stream.window_seconds)
        main = main | "Window" >> beam.WindowInto(fixed)
        bad = bad | "Window rejected" >> beam.WindowInto(fixed)
        (
            (main, bad)
            | "Count: merge" >> beam.Flatten()
            | "Count: key" >> beam.Map(_one)
            | "Count: sum" >> beam.CombinePerKey(sum)
            | "Count: save" >> beam.Map(_save_read, str(self.work))
        )
        return {MAIN: main, REJECTED: bad}


class DeduplicateWindow(beam.PTransform):
    """``(content hash, record)`` pairs, one per distinct record of a window (when
    ``deduplicate``). Output: ``{"main": pairs, "rejected": duplicates}`` (rejected may be None)."""

    def __init__(self, deduplicate: bool) -> None:
        super().__init__()
        self.deduplicate = deduplicate

    def expand(self, records: Any) -> dict[str, Any]:
        hashed = records | "Content hash" >> beam.Map(_with_hash)
        if not self.deduplicate:
            return {MAIN: hashed}
        unique = (
            hashed
            | "Group" >> beam.GroupByKey()
            | "Keep one" >> beam.FlatMap(_keep_one).with_outputs(REJECTED, main=MAIN)
        )
        return {MAIN: unique[MAIN], REJECTED: unique[REJECTED]}


class WriteWindows(beam.PTransform):
    """Each window's records, once the window closed: shards, checks, entry, acknowledgement."""

    def __init__(
        self,
        stream: Stream,
        out: Path,
        work: Path,
        label: str | None,
        checks: Any,
        store: Path | None = None,
    ) -> None:
        super().__init__()
        self.stream, self.out, self.work, self.label_feature = stream, out, work, label
        self.checks, self.store = checks, store

    def expand(self, pairs: Any) -> Any:
        write = beam.Map(
            _write_window,
            str(self.out),
            str(self.work),
            self.stream.shards,
            self.label_feature,
            self.checks,
            self.stream,
            None if self.store is None else str(self.store),
        )
        return (
            pairs
            | "Key" >> beam.Map(_key_zero)
            | "Group" >> beam.GroupByKey()
            | "Write shards, checks, acknowledge" >> write
        )


class WriteWindowRejected(beam.PTransform):
    """Every stage's rejected records of a window into ``rejected/<window>.jsonl``, sorted."""

    def __init__(self, stream: Stream, out: Path, work: Path, store: Path | None = None) -> None:
        super().__init__()
        self.stream, self.out, self.work, self.store = stream, out, work, store

    def expand(self, rejected_records: tuple[Any, ...]) -> Any:
        return (
            rejected_records
            | "Merge" >> beam.Flatten()
            | "Key" >> beam.Map(_key_zero)
            | "Group" >> beam.GroupByKey()
            | "Write"
            >> beam.Map(
                _write_rejected,
                str(self.out),
                str(self.work),
                self.stream,
                None if self.store is None else str(self.store),
            )
        )


# --- the step -------------------------------------------------------------------------------------


def run(stream: Stream, ctx: StepContext) -> StepResult:
    """Run ``stream`` as a step until it ends; return its counts (read = written + rejected over
    all windows). The stream's ``close(ctx)`` runs afterwards, also when the pipeline failed.

    A stream with a durable ``store(ctx)`` has its windows committed there
    (``beamline.stream_durable``), and the step's artifact is the whole store."""
    out = Path(ctx.output_dir)
    work = out / _WORK
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    info = declared_features(stream, ctx)
    checks = stream.window_checks(ctx)
    store = stream.store(ctx)
    lock = None
    if store is not None:
        lock = WindowStore(store).lock()
        WindowStore(store).declare(info)
        ctx.log(f"windows are committed to the store {store}")
    options = ctx.beam_options(streaming=True)
    chain = batched_chain(stream, ctx, store)
    try:
        with _frozen_heap(), beam.Pipeline(options=options) as p:
            if chain is not None and store is not None:
                ctx.log("records are handled in batches (one per poll and window)")
                write = WriteBatchedWindows(stream, chain, work, info["label"], checks, store)
                _ = p | f"Read ({stream.name})" >> stream.read_batches(ctx) | "Windows" >> write
            else:
                _per_record(p, stream, ctx, out, work, info, checks, store)
    finally:
        stream.close(ctx)
        if lock is not None:
            lock.close()
    if store is not None:
        return finish_durable(stream, ctx, info, checks, store, work)
    return _finish(stream, ctx, info, checks, work)


@contextmanager
def _frozen_heap() -> Iterator[None]:
    """The objects alive when the stream starts (Beam's, TensorFlow's: millions) moved out of
    the garbage collector's view while it runs (``gc.freeze``), so the records' allocations
    do not set off full collections over them (one took ~80 ms, 2 us a message, in 40,000
    bench messages); put back when the stream ends."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _per_record(
    p: Any,
    stream: Stream,
    ctx: StepContext,
    out: Path,
    work: Path,
    info: dict[str, Any],
    checks: Any,
    store: Path | None,
) -> None:
    read = p | f"Read ({stream.name})" >> ReadStream(stream, stream.read(ctx), work)
    stages = read[MAIN] | "Transforms" >> ApplyTransforms(stream.transforms, ctx, SpecError)
    unique = stages[MAIN] | "Deduplicate" >> DeduplicateWindow(stream.deduplicate)
    write = WriteWindows(stream, out, work, info["label"], checks, store)
    _ = unique[MAIN] | "Windows" >> write
    duplicates = [unique[REJECTED]] if REJECTED in unique else []
    bad = (read[REJECTED], *stages[REJECTED], *duplicates)
    _ = bad | "Rejected" >> WriteWindowRejected(stream, out, work, store)


def batched_chain(stream: Stream, ctx: StepContext, store: Path | None) -> list[Any] | None:
    """The transforms as plain functions when the stream takes the batched path
    (``beamline.stream_batches``: it reads in batches, commits to a durable store, and no
    transform needs Beam); None for the per-record path."""
    if store is None or not hasattr(stream, "read_batches"):
        return None
    return record_functions(stream.transforms, ctx)


def _entries(folder: Path) -> dict[str, Any]:
    return {
        f.stem: json.loads(f.read_text(encoding="utf-8")) for f in sorted(folder.glob("*.json"))
    }


def _finish(
    stream: Stream, ctx: StepContext, info: dict[str, Any], checks: Any, work: Path
) -> StepResult:
    out = Path(ctx.output_dir)
    windows = _entries(work / "windows")
    read = sum(e["count"] for e in _entries(work / "read").values())
    rejected_count = sum(e["count"] for e in _entries(work / "rejected").values())
    written = sum(e["count"] for e in windows.values())
    names = sorted(windows)  # names sort in time order
    alarms = [a for n in names for a in windows[n]["alarms"]]
    notes: dict[str, Any] = {}
    if checks is not None:
        alarms, notes = checks.finish(ctx, names, out, alarms)

    merged = W.merge(windows[n]["summary"] for n in names)
    counts_by_window = {n: windows[n]["count"] for n in names}
    shards = {n: windows[n]["shards"] for n in names}
    (out / ex.REJECTED_DIR).mkdir(exist_ok=True)
    (out / ex.EXAMPLES_DIR).mkdir(exist_ok=True)
    write_features(out, W.features_json(merged, info, counts_by_window, shards))
    by_window = [
        {k: windows[n][k] for k in ("window", "start", "end", "count", "shards")}
        | {"alarms": sum(1 for a in alarms if a["window"] == n)}
        for n in names
    ]
    write_json(out / WINDOWS_FILE, {**notes, "windows": by_window}, indent=2)
    shutil.rmtree(work, ignore_errors=True)
    if read == 0:
        ctx.log("warning: no record arrived during the stream")
    summary = f"{written} examples in {len(names)} windows, {rejected_count} rejected"
    result = StepResult(
        counts={"read": read, "written": written, "rejected": rejected_count},
        metrics={"windows": float(len(names))},
        summary=summary,
    )
    if checks is not None:
        result.summary += f", {len(alarms)} alarms"
        result.metrics["alarms"] = float(len(alarms))
        checks.gate(alarms, out)
    return result
