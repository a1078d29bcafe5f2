"""Streaming ingest: one Beam pipeline in streaming mode from arriving files to windowed artifacts.

The story (each step a labelled Beam transform)::

    Arrivals (file paths with event times) -> Window (fixed, event time) -> Read (reader)
        -> Transform i (name) ... -> Content hash -> Deduplicate (per window)
        -> Window: group -> Window: write shards, statistics, alarms
    read records -> Count read (per window);  rejected of every stage -> Rejected: write

Per window the step writes::

    examples/window-<start>-<end>/part-NNNNN-of-MMMMM.tfrecord.gz   (sorted by content hash)
    statistics/window-<start>-<end>.pb                               (TFDV, in memory)
    rejected/window-<start>-<end>.jsonl

and, once the stream ended, ``alarms.jsonl``, ``schema.pbtxt`` (the schema the windows were
checked against), ``windows.json`` and ``features.json`` (windows listed as its splits).
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from beamline import GateFailed, SpecError, StepContext, StepResult
from beamline import examples as ex
from beamline.ingest import read_item
from beamline.ingest_result import declared_features
from beamline.records import content_hash, record_source
from beamline.shards import TARGET_SHARD_BYTES, encode_record, shard_name, shard_of

from . import windows as W

LOG = logging.getLogger("beamline.streaming")
STATISTICS_DIR = "statistics"
SCHEMA_FILE = "schema.pbtxt"
WINDOWS_FILE = "windows.json"
_WORK = ".stream"
MAIN, REJECTED = ex.MAIN, ex.REJECTED


@dataclass
class StreamPlan:
    """What the streaming step needs besides the source: the arrivals and how to check them."""

    arrivals: Any  # PTransform from the pipeline root to file paths with event timestamps
    reader: Any  # fn(path) -> records | Reject
    window_seconds: float
    schema_file: Path | None = None
    drift: dict[str, float] = field(default_factory=dict)
    fail_on_alarm: bool = False


def streaming_options(ctx: StepContext) -> Any:
    """Beam options for streaming: the legacy ``BundleBasedDirectRunner`` with ``--streaming``.

    The ``direct`` and ``local`` runners of this framework use the ``FnApiRunner``, which runs no
    streaming pipeline; the bundle-based direct runner does (TestStream, event-time windows,
    watermarks). Other runners are refused: the folder watch is served from this process."""
    name = ctx.spec.runner.name
    if name not in ("direct", "local"):
        raise SpecError(
            f"streaming sources run on the direct or local runner only (got '{name}'): the "
            "watched folder's events are served to Beam from this process"
        )
    return ctx.beam_options(runner="BundleBasedDirectRunner", streaming=True)


# --- Beam functions (module level, so workers can load them) --------------------------------------


def _one(_: Any) -> tuple[int, int]:
    return 0, 1


def _key_zero(value: Any) -> tuple[int, Any]:
    return 0, value


def _with_hash(record: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    return content_hash(record), record


def _keep_one(item: tuple[str, Iterable[dict[str, Any]]]) -> Iterator[Any]:
    from apache_beam import pvalue

    digest, records = item
    ordered = sorted(records, key=lambda r: (record_source(r), repr(r.get("__meta__"))))
    yield digest, ordered[0]
    for other in ordered[1:]:
        reason = f"duplicate of {record_source(ordered[0])} in the same window"
        yield pvalue.TaggedOutput(
            REJECTED, ex.rejected(record_source(other), "deduplicate", reason)
        )


def _bounds(window: Any) -> tuple[float, float, str]:
    start, end = float(window.start), float(window.end)
    return start, end, W.window_name(start, end)


def _write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, sort_keys=True, ensure_ascii=False), encoding="utf-8")
    os.replace(tmp, path)


def _save_read(item: tuple[int, int], work: str, window: Any) -> None:
    _, _, name = _bounds(window)
    _write_json(Path(work) / "read" / f"{name}.json", {"count": item[1]})


def _write_rejected(item: tuple[int, Iterable[dict[str, str]]], out: str, work: str, window: Any):
    _, _, name = _bounds(window)
    lines = sorted(json.dumps(e, sort_keys=True, ensure_ascii=False) for e in item[1])
    path = Path(out) / ex.REJECTED_DIR / f"{name}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    _write_json(Path(work) / "rejected" / f"{name}.json", {"count": len(lines)})


def _write_window(
    item: tuple[int, Iterable[tuple[str, dict[str, Any]]]],
    out: str,
    work: str,
    shards: int,
    label: str | None,
    stats_schema: str,
    check_schema: str,
    window: Any,
) -> None:
    """Write one window: its shards, its TFDV statistics and (with a schema) its alarms."""
    from beamline_plugins.validation import stats as S

    start, end, name = _bounds(window)
    items = sorted(item[1], key=lambda pair: pair[0])
    records = [record for _, record in items]
    summary = W.summarize(records, label)
    dtypes = {n: {"dtype": W.dtype_of(e["kinds"])} for n, e in summary["features"].items()}
    encoded = [(digest, encode_record(r, {"features": dtypes})) for digest, r in items]
    size = sum(len(data) for _, data in encoded)
    count = shards or max(1, min(len(encoded), math.ceil(size / TARGET_SHARD_BYTES)))
    folder = Path(out) / ex.EXAMPLES_DIR / name
    folder.mkdir(parents=True, exist_ok=True)
    for shard in range(count):
        payloads = (data for digest, data in encoded if shard_of(digest, count) == shard)
        ex.write_tfrecords(folder / shard_name(shard, count, ".tfrecord.gz"), payloads)
    stats = S.statistics_in_memory([data for _, data in encoded], _schema(stats_schema))
    S.write_statistics(stats, Path(out) / STATISTICS_DIR / f"{name}.pb")
    alarms = W.schema_alarms(stats, _schema(check_schema), name) if check_schema else []
    for alarm in alarms:  # live: the window just closed
        LOG.warning("%s", W.alarm_line(alarm))
    entry = {
        "window": name,
        "start": start,
        "end": end,
        "count": len(encoded),
        "shards": count,
        "summary": W.to_json(summary),
        "alarms": alarms,
    }
    _write_json(Path(work) / "windows" / f"{name}.json", entry)


def _schema(text: str) -> Any:
    if not text:
        return None
    from google.protobuf import text_format
    from tensorflow_metadata.proto.v0 import schema_pb2

    return text_format.Parse(text, schema_pb2.Schema())


# --- the step -------------------------------------------------------------------------------------


def run_streaming_ingest(source: Any, ctx: StepContext, plan: StreamPlan) -> StepResult:
    """Run ``source`` as a streaming ingest step and return its counts (read = written +
    rejected over all windows); raises ``GateFailed`` on alarms when ``fail_on_alarm``."""
    import apache_beam as beam
    from apache_beam.transforms import window as beam_window

    from beamline_plugins.validation import stats as S

    out = Path(ctx.output_dir)
    work = out / _WORK
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    info = declared_features(source, ctx)
    label = info["label"]
    curated = _load_schema(plan.schema_file)
    spec_like = {"features": info["features"], "label": label, "classes": None}
    stats_schema = curated if curated is not None else S.seed_schema(spec_like)
    stats_text, check_text = _text(stats_schema), _text(curated)
    if curated is not None:
        ctx.log(f"windows are checked against {plan.schema_file}")
    options = streaming_options(ctx)
    fixed = beam_window.FixedWindows(plan.window_seconds)

    with beam.Pipeline(options=options) as p:
        arrivals = (
            p | f"Arrivals ({source.name})" >> plan.arrivals | "Window" >> beam.WindowInto(fixed)
        )
        read = arrivals | "Read" >> beam.FlatMap(read_item, plan.reader, "read").with_outputs(
            REJECTED, main=MAIN
        )
        (
            (read[MAIN], read[REJECTED])
            | "Count read: merge" >> beam.Flatten()
            | "Count read: key" >> beam.Map(_one)
            | "Count read: sum" >> beam.CombinePerKey(sum)
            | "Count read: save" >> beam.Map(_per_window(_save_read, str(work)))
        )
        from beamline.ingest_engine import ApplyTransforms

        stages = read[MAIN] | "Transforms" >> ApplyTransforms(source.transforms, ctx, SpecError)
        records, rejected = stages[MAIN], [read[REJECTED], *stages[REJECTED]]
        hashed = records | "Content hash" >> beam.Map(_with_hash)
        if source.deduplicate:
            unique = (
                hashed
                | "Deduplicate: group" >> beam.GroupByKey()
                | "Deduplicate: keep one"
                >> beam.FlatMap(_keep_one).with_outputs(REJECTED, main=MAIN)
            )
            hashed = unique[MAIN]
            rejected.append(unique[REJECTED])
        (
            hashed
            | "Window: key" >> beam.Map(_key_zero)
            | "Window: group" >> beam.GroupByKey()
            | "Window: write shards, statistics, alarms"
            >> beam.Map(
                _per_window(
                    _write_window, str(out), str(work), source.shards, label, stats_text, check_text
                )
            )
        )
        (
            tuple(rejected)
            | "Rejected: merge" >> beam.Flatten()
            | "Rejected: key" >> beam.Map(_key_zero)
            | "Rejected: group" >> beam.GroupByKey()
            | "Rejected: write" >> beam.Map(_per_window(_write_rejected, str(out), str(work)))
        )

    return _finish(ctx, info, plan, curated, stats_schema, work)


def _per_window(fn: Any, *args: Any) -> Any:
    """``fn(element, *args, window=...)`` as a function Beam calls with the element's window."""
    import apache_beam as beam

    def call(element: Any, window: Any = beam.DoFn.WindowParam) -> Any:
        return fn(element, *args, window=window)

    return call


def _load_schema(path: Path | None) -> Any:
    if path is None:
        return None
    from beamline_plugins.validation import stats as S

    try:
        return S.load_schema(path)
    except ValueError as exc:
        raise SpecError(str(exc)) from None


def _text(schema: Any) -> str:
    if schema is None:
        return ""
    from google.protobuf import text_format

    return text_format.MessageToString(schema)


def _entries(folder: Path) -> dict[str, Any]:
    return {
        f.stem: json.loads(f.read_text(encoding="utf-8")) for f in sorted(folder.glob("*.json"))
    }


def _finish(
    ctx: StepContext,
    info: dict[str, Any],
    plan: StreamPlan,
    curated: Any,
    stats_schema: Any,
    work: Path,
) -> StepResult:
    from beamline_plugins.validation import stats as S

    out = Path(ctx.output_dir)
    windows = _entries(work / "windows")
    read = sum(e["count"] for e in _entries(work / "read").values())
    rejected = sum(e["count"] for e in _entries(work / "rejected").values())
    written = sum(e["count"] for e in windows.values())
    names = sorted(windows)  # names sort in time order
    stats = {n: S.load_statistics(out / STATISTICS_DIR / f"{n}.pb") for n in names}

    alarms = [a for n in names for a in windows[n]["alarms"]]
    schema, schema_note = curated, f"curated file {plan.schema_file}"
    if curated is None and names:
        schema = S.infer_schema(stats[names[0]], {"features": info["features"]})
        schema_note = f"inferred from the first window {names[0]}"
        for n in names[1:]:
            alarms += W.schema_alarms(stats[n], schema, n)
    if schema is not None:
        S.write_schema(schema, out / SCHEMA_FILE)
        if plan.drift:
            try:
                for before, n in zip(names, names[1:], strict=False):
                    alarms += W.drift_alarms(stats[n], stats[before], schema, plan.drift, n)
            except KeyError as exc:
                raise SpecError(f"drift: {exc.args[0]}") from None
    alarms.sort(key=lambda a: (a["window"], a["category"], a["feature"], a["type"]))
    with (out / W.ALARMS_FILE).open("w", encoding="utf-8") as handle:
        for alarm in alarms:
            handle.write(json.dumps(alarm, sort_keys=True, ensure_ascii=False) + "\n")
            ctx.log(W.alarm_line(alarm))
            ctx.logger.warning("%s: %s", ctx.step.name, W.alarm_line(alarm))

    merged = W.merge(windows[n]["summary"] for n in names)
    counts_by_window = {n: windows[n]["count"] for n in names}
    shards = {n: windows[n]["shards"] for n in names}
    spec = W.features_json(merged, info, counts_by_window, shards)
    (out / ex.REJECTED_DIR).mkdir(exist_ok=True)
    (out / ex.EXAMPLES_DIR).mkdir(exist_ok=True)
    (out / ex.FEATURES_FILE).write_text(
        json.dumps(spec, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    by_window = [
        {k: windows[n][k] for k in ("window", "start", "end", "count", "shards")}
        | {"alarms": sum(1 for a in alarms if a["window"] == n)}
        for n in names
    ]
    (out / WINDOWS_FILE).write_text(
        json.dumps({"schema": schema_note if names else None, "windows": by_window}, indent=2)
        + "\n",
        encoding="utf-8",
    )
    shutil.rmtree(work, ignore_errors=True)
    if read == 0:
        ctx.log("warning: no record arrived during the stream")
    summary = (
        f"{written} examples in {len(names)} windows, {rejected} rejected, {len(alarms)} alarms"
    )
    result = StepResult(
        counts={"read": read, "written": written, "rejected": rejected},
        metrics={"windows": float(len(names)), "alarms": float(len(alarms))},
        summary=summary,
    )
    if alarms and plan.fail_on_alarm:
        lines = "\n".join(f"  - {W.alarm_line(a)}" for a in alarms[:20])
        more = f"\n  ... and {len(alarms) - 20} more" if len(alarms) > 20 else ""
        raise GateFailed(
            f"{len(alarms)} alarm(s) in the stream (fail_on_alarm is set):\n{lines}{more}\n"
            f"  alarms: {out / W.ALARMS_FILE}"
        )
    return result
