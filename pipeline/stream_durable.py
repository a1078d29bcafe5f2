"""The streaming engine's writes into a durable window store (``beamline.window_store``).

Used instead of the step folder when a stream's ``store(ctx)`` names a folder (a broker
stream, a durable folder watch): each closing window becomes a *part* of the store (records
whose source the window already holds, or any window for a stream with
``sources_across_windows``, are skipped, so a redelivered message is never stored twice), its
manifest is the commit point, and the stream acknowledges every delivered source afterwards
(stored now or before). When the stream ends, the step's artifact is the whole store, linked:
every window any run stored, counted once (read = written + rejected over the store).

Imported only when a stream step runs (it imports Apache Beam's window types through the
engine).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import examples as ex
from . import windows as W
from .atomic import write_json
from .components import StepResult
from .examples import varint, varint_size
from .ingest_result import write_features
from .records import is_hidden, record_source
from .shards import encode_record
from .tfrecord import frame, write_framed, write_tfrecords
from .window_store import EXAMPLES, WindowStore, link_file, part_id

if TYPE_CHECKING:
    from .components import Stream
    from .context import StepContext

#: A record's TFRecord record (its ``tf.train.Example``, framed) made where it was read
#: (``attach_framed``); hidden, so never written, hashed or summarized as a feature.
FRAMED_KEY = "__framed__"
#: The largest example ``attach_framed`` frames (larger ones are encoded by the step).
FRAMED_BYTES = 64 << 10
#: GZIP level of a stored window's TFRecords: 1, not 6. A broker window's values are mostly
#: already compressed (PNG, encoded audio): level 6 took 2.5 us a message of the digit bench
#: and level 1 1.6, for files ~5 % larger (0.437 of the framed bytes against 0.416).
WINDOW_GZIP_LEVEL = 1


def store_window(
    name: str,
    bounds: tuple[float, float],
    items: list[tuple[str, dict[str, Any]]],
    store: str,
    work: str,
    label: str | None,
    checks: Any,
    stream: Stream,
    delivered: int | None = None,
) -> None:
    """Commit one closed window's new records as a part of ``store``; then acknowledge every
    delivered source of the window (new or stored by an earlier run). ``delivered``: the
    messages this run took in the window, when the caller counted them (the batched path),
    kept beside the window's counts for ``finish_durable``."""
    target = WindowStore(store)
    stored = target.stored_sources(None if _across(stream) else name)
    every = [record_source(r) for _, r in items]
    fresh = [r for (_, r), source in zip(items, every, strict=True) if source not in stored]
    alarms: list[dict[str, Any]] = []
    if fresh:
        summary = W.summarize(fresh, label)
        dtypes = {n: {"dtype": W.dtype_of(e["kinds"])} for n, e in summary["features"].items()}
        framed = [r.get(FRAMED_KEY) for r in fresh]
        sources = every if len(fresh) == len(items) else [record_source(r) for r in fresh]
        part = part_id(sources)
        path = target.examples_path(name, part)
        if None in framed:
            encoded = encode_window(fresh, dtypes)
            write_tfrecords(path, encoded, level=WINDOW_GZIP_LEVEL)
        else:  # the same file, the records framed by the reader (attach_framed)
            write_framed(path, framed, level=WINDOW_GZIP_LEVEL)
            encoded = [f[12:-4] for f in framed] if checks else []
        alarms = checks.check_window(name, encoded, store) if checks else []
        info = {"start": bounds[0], "end": bounds[1], "summary": W.to_json(summary)}
        target.commit(name, part, EXAMPLES, sources, {**info, "alarms": alarms})
    entry = {"count": len(fresh), "skipped": len(items) - len(fresh), "alarms": len(alarms)}
    if delivered is not None:
        entry["delivered"] = delivered
    write_json(Path(work) / "windows" / f"{name}.json", entry)
    stream.acknowledge(name, every)


def encode_window(records: list[dict[str, Any]], dtypes: dict[str, dict[str, str]]) -> list[bytes]:
    """``encode_record`` of each record (the same bytes), without its per-value conversions for
    records whose every feature is one bytes or text value of a bytes feature (a broker's):
    those are written in protobuf's wire format here (``_plain_examples``)."""
    schema = {"features": dtypes}
    plain = _plain_examples(records, dtypes)
    return [
        encode_record(record, schema) if done is None else done
        for record, done in zip(records, plain, strict=True)
    ]


def attach_framed(records: list[dict[str, Any]], max_bytes: int = FRAMED_BYTES) -> None:
    """Give each record whose every feature is one bytes or text value its TFRecord record
    (``FRAMED_KEY``: its ``tf.train.Example`` framed) as ``store_window`` would write it in
    any window (such values make their features bytes features): made where the records are
    read (a broker's reader process, for a stream without transforms), beside the step.
    Records of more than ``max_bytes`` are left to the step: carried twice, a large one would
    bring a poll's event nearer Beam's 4 MiB gRPC limit."""
    for record, done in zip(records, _plain_examples(records, None), strict=True):
        if done is not None and len(done) <= max_bytes:
            record[FRAMED_KEY] = frame(done)


def _plain_examples(
    records: list[dict[str, Any]], dtypes: dict[str, dict[str, str]] | None
) -> list[bytes | None]:
    """The ``tf.train.Example`` of each record whose every feature is one bytes or text value
    of a bytes feature (every feature is one when ``dtypes`` is None), else None: a feature's
    bytes before its value (map entry key and lengths) made once for each value size, and
    each key set's sorted order (hidden names left out: never written) once."""
    heads: dict[str, bytes | None] = {}  # name -> its key's bytes; None: not a bytes feature
    prefixes: dict[tuple[str, int], bytes] = {}  # (name, value size) -> the bytes before it
    keys: Any = None
    names: list[str] = []
    out: list[bytes | None] = []
    for record in records:
        if record.keys() != keys:
            keys, names = record.keys(), sorted(n for n in record if not is_hidden(n))
        parts: list[bytes] | None = []
        for name in names:
            value = record[name]
            if value is None:
                continue
            kind = type(value)
            if kind is str:
                value = value.encode("utf-8")
            elif kind is not bytes:
                parts = None
                break
            prefix = prefixes.get((name, len(value)))
            if prefix is None:
                head = heads.get(name, b"")
                if head == b"":
                    head = heads[name] = _feature_head(name, dtypes)
                if head is None:
                    parts = None
                    break
                prefix = prefixes[name, len(value)] = _value_prefix(head, len(value))
            parts += (prefix, value)
        if parts is None:
            out.append(None)
        else:
            body = b"".join(parts)
            out.append(b"\x0a" + varint(len(body)) + body)  # Example.features
    return out


def _value_prefix(head: bytes, size: int) -> bytes:
    """The bytes of a map entry of ``Features.feature`` before its one bytes value of ``size``
    bytes (BytesList.value, in Feature.bytes_list, in the map entry)."""
    values = 1 + varint_size(size) + size
    feature = 1 + varint_size(values) + values
    entry = len(head) + varint_size(feature) + feature
    return (
        b"\x0a"
        + varint(entry)
        + head
        + varint(feature)
        + b"\x0a"
        + varint(values)
        + b"\x0a"
        + varint(size)
    )


def _feature_head(name: str, dtypes: dict[str, dict[str, str]] | None) -> bytes | None:
    """A map entry's key field and its value's tag (``Features.feature``), or None for a hidden
    name or a feature not of bytes (in ``dtypes``; None: every feature is)."""
    if is_hidden(name):
        return None
    if dtypes is not None and dtypes.get(name, {}).get("dtype") != "bytes":
        return None
    key = name.encode("utf-8")
    return b"\x0a" + varint(len(key)) + key + b"\x12"


def store_rejected(name: str, entries: list[dict[str, str]], store: str, stream: Stream) -> None:
    """Commit a window's rejected records (those not stored before); then acknowledge all."""
    WindowStore(store).write_rejected(name, entries, anywhere=_across(stream))
    stream.acknowledge(name, [e["source"] for e in entries])


def _across(stream: Stream) -> bool:
    """Whether a source stored in any window counts as stored (``sources_across_windows``: a
    stream whose redelivered records may fall into another window, as a re-listed file does)."""
    return bool(getattr(stream, "sources_across_windows", False))


def finish_durable(
    stream: Stream, ctx: StepContext, info: dict[str, Any], checks: Any, store: Path, work: Path
) -> StepResult:
    """The step's artifact once the stream ended: the whole store, linked, with its counts."""
    out = Path(ctx.output_dir)
    source = WindowStore(store)
    parts = source.parts()
    names = sorted({p.window for p in parts if p.kind == EXAMPLES})
    for part in parts:
        if part.kind == EXAMPLES:
            path = source.examples_path(part.window, part.part)
            link_file(path, out / ex.EXAMPLES_DIR / part.window / path.name)
        else:
            path = source.rejected_path(part.window, part.part)
            link_file(path, out / ex.REJECTED_DIR / path.name)
    for path in sorted((store / "statistics").glob("*.pb")):
        link_file(path, out / "statistics" / path.name)
    examples = [p for p in parts if p.kind == EXAMPLES]
    alarms = [a for p in examples for a in p.info.get("alarms", [])]
    notes: dict[str, Any] = {}
    if checks is not None:
        alarms, notes = checks.finish(ctx, names, out, alarms)
    merged = W.merge(p.info["summary"] for p in examples)
    counts = {n: sum(p.count for p in examples if p.window == n) for n in names}
    shards = {n: sum(1 for p in examples if p.window == n) for n in names}
    (out / ex.REJECTED_DIR).mkdir(exist_ok=True)
    (out / ex.EXAMPLES_DIR).mkdir(exist_ok=True)
    write_features(out, W.features_json(merged, info, counts, shards))
    by_window = [
        {"window": n, "count": counts[n], "parts": shards[n]}
        | {"alarms": sum(1 for a in alarms if a["window"] == n)}
        for n in names
    ]
    write_json(out / "windows.json", {**notes, "store": str(store), "windows": by_window}, indent=2)
    this_run = _entries(work / "windows").values()
    delivered = _total(_entries(work / "read").values())  # the per-record path's counts
    delivered += sum(e.get("delivered", 0) for e in this_run)
    skipped = sum(e["skipped"] for e in this_run)
    shutil.rmtree(work, ignore_errors=True)
    total = source.counts()
    summary = (
        f"{total['written']} examples in {len(names)} windows, {total['rejected']} rejected "
        f"(store {store}; this run: {delivered} delivered, {skipped} already stored)"
    )
    result = StepResult(
        counts=total,
        metrics={"windows": float(len(names)), "delivered": float(delivered)},
        summary=summary,
    )
    result.metrics["already_stored"] = float(skipped)
    if checks is not None:
        result.summary += f", {len(alarms)} alarms"
        result.metrics["alarms"] = float(len(alarms))
        checks.gate(alarms, out)
    return result


def _entries(folder: Path) -> dict[str, Any]:
    return {
        f.stem: json.loads(f.read_text(encoding="utf-8")) for f in sorted(folder.glob("*.json"))
    }


def _total(entries: Iterable[dict[str, Any]]) -> int:
    return sum(e["count"] for e in entries)
