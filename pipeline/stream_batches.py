"""The streaming engine's batched path: one Beam element per poll of a window, not per record.

A stream that reads in polls (a broker: one ``XREADGROUP`` returns hundreds of messages) may
offer ``read_batches(ctx)``: a ``PTransform`` whose elements are *batches*, each
``(records, rejected entries, delivered count)`` of one poll falling into one event-time window
(stamped with an event time inside it). When the stream commits to a durable store and every
transform can run without Beam (``record_stage`` stages, no Beam side inputs), the engine runs::

    batches -> fixed event-time windows -> transforms, applied in bulk (one call per batch)
            -> per window, once the watermark passed its end: deduplicate, commit the examples
               part and the rejected part to the store, acknowledge (``WriteBatchedWindows``)

instead of a dozen per-record Beam stages: on Beam's streaming direct runner the per-element
machinery (bundles, triggers, timers, watermarks) cost ~1 ms of CPU a message, against tens of
microseconds for the work itself. What is written, and when a message is acknowledged, is the
same as on the per-record path (``beamline.stream_durable``). ``unbatched(batches)`` turns the
batches back into the per-record ``{"main", "rejected"}`` reader output (the path taken when a
transform needs Beam).

Imported only when a stream step runs (it imports Apache Beam at the top).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from operator import itemgetter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import apache_beam as beam
from apache_beam import pvalue
from apache_beam.transforms import window as beam_window

from . import windows as W
from .records import (
    MAIN,
    META_KEY,
    REJECTED,
    SOURCE_KEY,
    Reject,
    record_source,
    rejected,
)
from .stream_durable import FRAMED_KEY, store_rejected, store_window
from .window_hash import DIGEST_KEY, window_hash

if TYPE_CHECKING:
    from .context import StepContext
    from .kinds import Stream, Transform

#: ``(records, rejected entries, messages delivered)`` of one poll in one window.
Batch = tuple[list[dict[str, Any]], list[dict[str, str]], int]
#: A transform as a plain function: ``(stage label, fn, side inputs)``.
RecordFunction = tuple[str, Callable[..., dict[str, Any]], dict[str, Any]]


def record_functions(
    transforms: Sequence[Transform], ctx: StepContext
) -> list[RecordFunction] | None:
    """Each transform as a plain ``RecordFunction``, or None when one of them needs Beam (a
    stage not built by ``record_stage``, or with a Beam side input)."""
    chain = []
    for transform in transforms:
        found = getattr(transform.stage(ctx), "record_function", None)
        if found is None or any(_is_beam(value) for value in found[2].values()):
            return None
        chain.append(found)
    return chain


def _is_beam(value: Any) -> bool:
    return isinstance(value, pvalue.PValue | pvalue.AsSideInput)


def apply_in_bulk(batch: Batch, chain: list[RecordFunction]) -> Batch:
    """A batch with every transform applied to each record, as ``record_stage`` does in Beam
    (a ``Reject`` becomes a rejected entry naming the stage; another error fails the step)."""
    records, bad, delivered = batch
    if not chain:
        return batch
    out, bad = [], list(bad)
    for record in records:
        record.pop(DIGEST_KEY, None)  # a transform changes what the digest was of
        record.pop(FRAMED_KEY, None)  # and what the example was of
        for label, fn, side in chain:
            source = record_source(record)
            try:
                record = fn(record, **side)
            except Reject as exc:
                bad.append(rejected(exc.source or source, label, exc.reason))
                break
            except Exception as exc:
                raise RuntimeError(f"stage '{label}' failed on {source}: {exc}") from exc
            if SOURCE_KEY not in record:
                record = {**record, SOURCE_KEY: source}
        else:
            out.append(record)
    return out, bad, delivered


def deduplicated(
    records: Iterable[dict[str, Any]], deduplicate: bool
) -> tuple[list[tuple[str, dict[str, Any]]], list[dict[str, str]]]:
    """``(content hash, record)`` pairs sorted by hash, one per distinct content when
    ``deduplicate`` (the first by source is kept), and the duplicates as rejected entries."""
    hashed = sorted(((_digest(r), r) for r in records), key=itemgetter(0))
    if len({digest for digest, _ in hashed}) < len(hashed):  # equal contents: order them by
        start = 0  # source (then details), as one sort by all three would, only where needed
        for end in range(1, len(hashed) + 1):
            if end == len(hashed) or hashed[end][0] != hashed[start][0]:
                if end - start > 1:
                    hashed[start:end] = sorted(hashed[start:end], key=_tie_order)
                start = end
    if not deduplicate:
        return hashed, []
    kept: list[tuple[str, dict[str, Any]]] = []
    duplicates = []
    for digest, record in hashed:
        if kept and kept[-1][0] == digest:
            reason = f"duplicate of {record_source(kept[-1][1])} in the same window"
            duplicates.append(rejected(record_source(record), "deduplicate", reason))
        else:
            kept.append((digest, record))
    return kept, duplicates


def _digest(record: dict[str, Any]) -> str:
    """The record's ``window_hash``: the one its reader computed (``DIGEST_KEY``, taken out of
    the record), else computed now."""
    digest = record.pop(DIGEST_KEY, None)
    return digest if digest is not None else window_hash(record)


def _tie_order(pair: tuple[str, dict[str, Any]]) -> tuple[str, str]:
    return record_source(pair[1]), repr(pair[1].get(META_KEY))


def window_bounds(window: Any) -> tuple[float, float, str]:
    """``(start, end, folder name)`` of a Beam window."""
    start, end = float(window.start), float(window.end)
    return start, end, W.window_name(start, end)


def _transformed(batch: Batch, chain: list[RecordFunction]) -> tuple[int, Batch]:
    return 0, apply_in_bulk(batch, chain)  # one key: a window's batches meet in one group


def _write_window(
    item: tuple[int, Iterable[Batch]],
    work: str,
    label: str | None,
    checks: Any,
    stream: Stream,
    store: str,
    deduplicate: bool,
    window: Any = beam.DoFn.WindowParam,
) -> None:
    """Commit one closed window's batches: examples part, rejected part; acknowledge both."""
    start, end, name = window_bounds(window)
    records: list[dict[str, Any]] = []
    bad: list[dict[str, str]] = []
    delivered = 0
    for batch_records, batch_bad, count in item[1]:
        records += batch_records
        bad += batch_bad
        delivered += count
    pairs, duplicates = deduplicated(records, deduplicate)
    store_window(name, (start, end), pairs, store, work, label, checks, stream, delivered)
    bad += duplicates
    if bad:
        store_rejected(name, bad, store, stream)


class WriteBatchedWindows(beam.PTransform):
    """Batches in fixed event-time windows, transformed in bulk, committed window by window."""

    def __init__(
        self,
        stream: Stream,
        chain: list[RecordFunction],
        work: Path,
        label: str | None,
        checks: Any,
        store: Path,
    ) -> None:
        super().__init__()
        self.stream, self.chain, self.work, self.label_feature = stream, chain, work, label
        self.checks, self.store = checks, store

    def expand(self, batches: Any) -> Any:
        fixed = beam_window.FixedWindows(self.stream.window_seconds)
        write = beam.Map(
            _write_window,
            str(self.work),
            self.label_feature,
            self.checks,
            self.stream,
            str(self.store),
            self.stream.deduplicate,
        )
        return (
            batches
            | "Window" >> beam.WindowInto(fixed)
            | "Transforms (in bulk)" >> beam.Map(_transformed, self.chain)
            | "Group" >> beam.GroupByKey()
            | "Write, acknowledge" >> write
        )


def _records_of(batch: Batch) -> Iterator[Any]:
    records, bad, _ = batch
    for record in records:
        record.pop(FRAMED_KEY, None)  # Beam's transforms may change the record
        yield record
    for entry in bad:
        yield pvalue.TaggedOutput(REJECTED, entry)


def unbatched(batches: Any) -> Any:
    """The per-record reader output (``{"main": records, "rejected": entries}``, timestamps
    kept) of a ``PTransform`` of batches: what ``Stream.read`` returns for a batched stream."""

    @beam.ptransform_fn
    def _unbatch(root: Any) -> dict[str, Any]:
        outs = (
            root
            | "Batches" >> batches
            | "Records" >> beam.FlatMap(_records_of).with_outputs(REJECTED, main=MAIN)
        )
        return {MAIN: outs[MAIN], REJECTED: outs[REJECTED]}

    return _unbatch()
