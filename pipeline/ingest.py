"""Ingest: one Beam pipeline from a source's records to an examples artifact.

The story of the pipeline (each step is a labelled Beam transform)::

    Read (source) -> Transform i (name) ... -> Spill (content hash, split, run files)
        -> Manifest -> Groups -> Deduplicate and encode (fragments per shard) -> Shards: write
    rejected outputs of every stage -> Rejected: write

Records never go through a Beam shuffle: they are spilled to local run files bucketed by content
hash, read back one group of buckets at a time and merged into shards (``beamline.spill``,
``beamline.ingest_stages``), so memory stays bounded whatever the data size. Shards are
deterministic whatever the runner: records are assigned to shards by content hash and sorted
within a shard. Counts come from small files the pipeline writes (one per shard, one for
the records read, one for the rejected ones), summed once the pipeline finished: that works on
every runner, where Beam metrics do not.

Plugin authors build stages with ``create_source`` (a source from a list of items, each read by a
function) and ``record_stage`` (a transform from a function of one record); both functions reject
a record by raising (or, for a reader, yielding) ``Reject``. See ``beamline.examples`` for the
record conventions and the artifact's format.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shutil
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import examples as ex
from .components import Split, StepResult
from .errors import PipelineError, SpecError
from .feature_stats import FeatureStats, label_text, merge_stats, visible

if TYPE_CHECKING:
    from .components import Source, Transform
    from .context import StepContext

SOURCE_KEY = ex.SOURCE_KEY
META_KEY = ex.META_KEY
MAIN = ex.MAIN
REJECTED = ex.REJECTED
SPLIT_NAMES = ("train", "eval", "test")
#: Uncompressed bytes per shard when ``shards`` is 0.
TARGET_SHARD_BYTES = 64 * 1024 * 1024
_WORK_DIR = ".ingest"


class Reject(Exception):
    """Reject one record: raise it from a record function, or yield it from a source's reader.

    ``source`` defaults to the record's ``__source__`` (or the reader's item)."""

    def __init__(self, reason: str, source: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.source = source


# --- records --------------------------------------------------------------------------------------


def record_source(record: dict[str, Any]) -> str:
    """Where a record came from (its ``__source__``)."""
    return str(record.get(SOURCE_KEY, "<unknown>"))


def with_meta(record: dict[str, Any], feature: str, **details: Any) -> dict[str, Any]:
    """A copy of ``record`` whose ``__meta__`` for ``feature`` is updated with ``details``."""
    meta = {k: dict(v) for k, v in (record.get(META_KEY) or {}).items()}
    meta.setdefault(feature, {}).update(details)
    return {**record, META_KEY: meta}


def _canonical(value: Any) -> bytes:
    """A type-tagged, unambiguous byte form of a feature value (for hashing)."""
    if isinstance(value, bytes):
        return b"b%d:" % len(value) + value
    if isinstance(value, str):
        data = value.encode("utf-8")
        return b"s%d:" % len(data) + data
    if isinstance(value, bool):
        return b"i%d;" % int(value)
    if isinstance(value, int):
        return b"i%d;" % value
    if isinstance(value, float):
        return b"f" + repr(value).encode() + b";"
    if value is None:
        return b"n;"
    if isinstance(value, list | tuple):
        return b"l%d:" % len(value) + b"".join(_canonical(v) for v in value)
    raise TypeError(f"unsupported feature value of type {type(value).__name__}: {value!r:.80}")


def content_hash(record: dict[str, Any]) -> str:
    """The sha256 of a record's visible features: equal content, equal hash."""
    digest = hashlib.sha256()
    for name, value in sorted(visible(record).items()):
        digest.update(_canonical(name))
        digest.update(_canonical(value))
    return digest.hexdigest()


# --- building blocks for plugins ------------------------------------------------------------------


def _outputs_of(
    result: Any, what: str, error: type[PipelineError] = PipelineError
) -> tuple[Any, Any]:
    """``(main, rejected)`` of a stage's output (a dict or a ``DoOutputsTuple``)."""
    try:
        return result[MAIN], result[REJECTED]
    except (KeyError, TypeError, IndexError, AttributeError) as exc:
        raise error(
            f"{what} must return PCollections tagged '{MAIN}' and '{REJECTED}', got "
            f"{type(result).__name__}"
        ) from exc


def apply_transforms(
    records: Any,
    transforms: Iterable[Transform],
    ctx: StepContext,
    error: type[PipelineError] = PipelineError,
) -> tuple[Any, list[Any]]:
    """Apply each transform's stage to ``records`` in order, as ``Transform i (name)``.

    Returns the records out of the last stage and the rejected output of every stage, in order.
    A stage whose output is not tagged ``main`` and ``rejected`` raises ``error``."""
    rejected = []
    for i, transform in enumerate(transforms, 1):
        stage = transform.stage(ctx)
        records, bad = _outputs_of(
            records | f"Transform {i} ({transform.name})" >> stage,
            f"transform '{transform.name}': stage()",
            error,
        )
        rejected.append(bad)
    return records, rejected


def read_item(item: Any, fn: Callable[[Any], Iterable[Any]], stage: str) -> Iterator[Any]:
    """Run a reader ``fn`` on one item (in Beam): records go to the main output and ``Reject``
    (yielded or raised) to ``rejected``, named by its source or else by the item."""
    from apache_beam import pvalue

    try:
        for out in fn(item):
            if isinstance(out, Reject):
                where = out.source or str(item)
                yield pvalue.TaggedOutput(REJECTED, ex.rejected(where, stage, out.reason))
            else:
                yield out
    except Reject as exc:
        where = exc.source or str(item)
        yield pvalue.TaggedOutput(REJECTED, ex.rejected(where, stage, exc.reason))


def create_source(label: str, items: list[Any], fn: Callable[[Any], Iterable[Any]]) -> Any:
    """A source ``PTransform``: ``items`` (paths, rows...) each read by ``fn`` into records.

    ``fn(item)`` yields records (dicts with ``__source__``) and ``Reject`` for unreadable ones;
    it must be a module-level function (or a ``functools.partial`` of one) so workers can load
    it. The result is ``{"main": records, "rejected": rejected}``."""
    import apache_beam as beam

    @beam.ptransform_fn
    def _source(root: Any) -> dict[str, Any]:
        outs = (
            root
            # Typed as Any: Beam would otherwise infer a type from every item of a long list.
            | f"{label}: list" >> beam.Create(items, reshuffle=True).with_output_types(Any)
            | f"{label}: read"
            >> beam.FlatMap(read_item, fn, label).with_outputs(REJECTED, main=MAIN)
        )
        return {MAIN: outs[MAIN], REJECTED: outs[REJECTED]}

    return _source()


def _apply(record: dict[str, Any], fn: Callable[..., Any], stage: str) -> Iterator[Any]:
    return _apply_with(record, fn, stage)


def _apply_with(record: Any, fn: Any, stage: Any, **side: Any) -> Any:
    from apache_beam import pvalue

    source = record_source(record)
    try:
        out = fn(record, **side)
    except Reject as exc:
        yield pvalue.TaggedOutput(REJECTED, ex.rejected(exc.source or source, stage, exc.reason))
        return
    except Exception as exc:
        raise RuntimeError(f"stage '{stage}' failed on {source}: {exc}") from exc
    if SOURCE_KEY not in out:
        out = {**out, SOURCE_KEY: source}
    yield out


def record_stage(label: str, fn: Callable[..., dict[str, Any]], **side_inputs: Any) -> Any:
    """A transform ``PTransform`` that applies ``fn`` to every record.

    ``fn(record, **side_inputs)`` returns the new record (a new dict: never change its input) or
    raises ``Reject(reason)``; any other exception fails the pipeline, naming the stage and the
    record. ``side_inputs`` are Beam side inputs (``beam.pvalue.AsSingleton(...)``) or plain
    values. ``fn`` must be a module-level function or a ``functools.partial`` of one. The result
    is ``{"main": records, "rejected": rejected}``, rejected entries naming ``label`` as stage."""
    import apache_beam as beam

    @beam.ptransform_fn
    def _stage(records: Any) -> dict[str, Any]:
        if side_inputs:  # Beam's hint checks refuse a **kwargs function called without any
            apply = beam.FlatMap(_apply_with, fn, label, **side_inputs)
        else:
            apply = beam.FlatMap(_apply, fn, label)
        outs = records | label >> apply.with_outputs(REJECTED, main=MAIN)
        return {MAIN: outs[MAIN], REJECTED: outs[REJECTED]}

    return _stage()


# --- split ----------------------------------------------------------------------------------------


def split_shares(split: Split) -> list[tuple[str, float]]:
    """The splits with a positive share, shares normalised to sum to 1."""
    shares = [(name, float(getattr(split, name))) for name in SPLIT_NAMES]
    bad = [f"{name}={share}" for name, share in shares if share < 0 or math.isnan(share)]
    total = sum(share for _, share in shares if share > 0)
    if bad or total <= 0:
        raise SpecError(
            f"split: shares must be non-negative and not all zero, got "
            f"{', '.join(f'{n}={s}' for n, s in shares)}"
        )
    return [(name, share / total) for name, share in shares if share > 0]


def split_of(key: bytes, shares: list[tuple[str, float]], salt: str = "") -> str:
    """The split of a record whose split key is ``key``: a stable hash, the same on every run."""
    digest = hashlib.sha256(salt.encode("utf-8") + b"\0" + key).digest()
    point = int.from_bytes(digest[:8], "big") / 2**64
    cumulative = 0.0
    for name, share in shares:
        cumulative += share
        if point < cumulative:
            return name
    return shares[-1][0]


def split_key(record: dict[str, Any], digest: str, split: Split) -> bytes | str:
    """The bytes a record's split is drawn from (``split.group_by`` or ``split.key`` feature,
    else the content hash ``digest``), or the reason it cannot be split."""
    feature = split.group_by or split.key
    if not feature:
        return digest.encode()
    value = record.get(feature)
    if value is None:
        role = "split.group_by" if split.group_by else "split.key"
        return f"no value for feature '{feature}' named by {role}"
    return _canonical(value)


_SPLIT_ALIASES = {
    "train": "train",
    "training": "train",
    "eval": "eval",
    "evaluation": "eval",
    "validation": "eval",
    "valid": "eval",
    "val": "eval",
    "dev": "eval",
    "test": "test",
    "testing": "test",
}


def predefined_split(record: dict[str, Any], feature: str) -> tuple[str, dict[str, Any]] | str:
    """``(split, record without feature)`` for a record naming its own split in ``feature``, or
    the reason it names none."""
    value = record.get(feature)
    if isinstance(value, list | tuple) and len(value) == 1:
        value = value[0]
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    if value is None:
        return f"no value for feature '{feature}' named by split.from_feature"
    split = _SPLIT_ALIASES.get(str(value).strip().lower())
    if split is None:
        return (
            f"split feature '{feature}' is {value!r}; expected train, eval (or validation, "
            "valid, val, dev) or test"
        )
    return split, {k: v for k, v in record.items() if k != feature}


# --- encoding and shards --------------------------------------------------------------------------


def _convert(value: Any, dtype: str) -> Any:
    if dtype == "bytes":
        if isinstance(value, bytes | str):
            return value
        return label_text(value).encode("utf-8")
    if dtype == "float":
        return float(value)
    return int(value)


def encode_record(record: dict[str, Any], schema: dict[str, Any]) -> bytes:
    """Serialize a record's visible features as a ``tf.train.Example`` with ``schema``'s dtypes."""
    features = {}
    for name, value in visible(record).items():
        dtype = schema["features"][name]["dtype"]
        values = list(value) if isinstance(value, list | tuple) else [value]
        features[name] = (dtype, [_convert(v, dtype) for v in values])
    return ex.encode_example(features)


def _shard_plan(
    sizes: dict[str, list[int]], names: list[str], shards: int, skip_empty: bool = False
) -> dict[str, dict[str, int]]:
    plan = {}
    for name in names:
        count, nbytes = sizes.get(name, [0, 0])
        if skip_empty and count == 0:
            continue
        auto = max(1, min(count, math.ceil(nbytes / TARGET_SHARD_BYTES)))
        plan[name] = {"count": count, "shards": shards if shards > 0 else auto}
    return plan


def shard_of(digest: str, shards: int) -> int:
    """The shard of a record with content hash ``digest`` among ``shards``."""
    return int(digest[:16], 16) % shards


def _all_shards(plan: dict[str, dict[str, int]]) -> Iterator[tuple[Any, None]]:
    for split, entry in plan.items():
        for shard in range(entry["shards"]):
            yield (split, shard), None


def shard_name(shard: int, shards: int, suffix: str) -> str:
    """``part-NNNNN-of-MMMMM`` + ``suffix``."""
    return f"part-{shard:05d}-of-{shards:05d}{suffix}"


def _write_rejected(item: tuple[int, Iterable[dict[str, str]]], folder: str, counts: str) -> None:
    _, entries = item
    lines = sorted(json.dumps(e, sort_keys=True, ensure_ascii=False) for e in entries)
    Path(folder).mkdir(parents=True, exist_ok=True)
    path = Path(folder) / shard_name(0, 1, ".jsonl")
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    os.replace(tmp, path)
    write_json(Path(counts), {"count": len(lines)})


def write_json(path: Path | str, data: Any) -> None:
    """Write ``data`` as JSON to ``path`` atomically (sets as sorted lists)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, sort_keys=True, default=_json_default), encoding="utf-8")
    os.replace(tmp, path)


def _json_default(value: Any) -> Any:
    if isinstance(value, set):
        return sorted(value, key=str)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


# --- deduplication --------------------------------------------------------------------------------


def natural_key(text: str) -> tuple[Any, ...]:
    """A sort key that orders numbers inside text by value (``row 9`` before ``row 10``)."""
    parts = re.split(r"(\d+)", text)
    return tuple((0, int(p), p) if p.isdigit() else (1, 0, p) for p in parts)


def _one(_: Any) -> int:
    return 1


def _key_zero(value: Any) -> tuple[int, Any]:
    return 0, value


def _save(value: Any, path: str) -> None:
    write_json(path, value)


def _save_schema(stats: FeatureStats, path: str) -> None:
    write_json(path, stats.schema())


def _plan_of(
    manifest: dict[str, Any], names: list[str], shards: int, skip_empty: bool
) -> dict[str, dict[str, int]]:
    return _shard_plan(manifest["sizes"], names, shards, skip_empty)


# --- the step -------------------------------------------------------------------------------------


def declared_features(source: Source, ctx: StepContext) -> dict[str, Any]:
    """What the source and its transforms say about the features (see ``beamline.examples``)."""
    info: dict[str, Any] = {"features": {}, "label": None, "warnings": []}
    describe = getattr(source, "feature_info", None)
    if callable(describe):
        info = _merge_info(info, describe(ctx), source.name)
    for transform in source.transforms:
        describe = getattr(transform, "feature_info", None)
        if callable(describe):
            info = _merge_info(info, describe(ctx, info), transform.name)
    return info


def _merge_info(base: dict[str, Any], update: Any, who: str) -> dict[str, Any]:
    if not isinstance(update, dict):
        raise PipelineError(f"component '{who}': feature_info() must return a dict")
    return {
        "features": {k: dict(v) for k, v in (update.get("features") or base["features"]).items()},
        "label": update.get("label", base["label"]),
        "warnings": list(update.get("warnings") or base["warnings"]),
    }


def source_location(source: Source, ctx: StepContext) -> str:
    """What a source reads, for messages: its ``location(ctx)`` or its parameters."""
    locate = getattr(source, "location", None)
    if callable(locate):
        return str(locate(ctx))
    from .fingerprint import plain

    params = {k: v for k, v in plain(source).items() if k not in ("transforms", "split")}
    return f"{source.name} {params}"


def run_ingest(source: Source, ctx: StepContext) -> StepResult:
    """Run ``source`` as an ingest step: read, transform, deduplicate, split and write.

    Writes ``examples/``, ``rejected/`` and ``features.json`` into ``ctx.output_dir`` and returns
    the counts ``read``, ``written``, ``rejected`` and ``written_<split>`` per split."""
    import apache_beam as beam

    out = Path(ctx.output_dir)
    work = out / _WORK_DIR
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    shares = split_shares(source.split)
    names = [name for name, _ in shares]
    if source.split.from_feature:
        if source.split.key or source.split.group_by:
            raise SpecError(
                f"source '{source.name}': split.from_feature cannot be combined with "
                "split.key or split.group_by (the data names each record's split)"
            )
        names = list(SPLIT_NAMES)
    if source.shards < 0:
        raise SpecError(f"source '{source.name}': shards must be 0 (automatic) or more")
    reader = source.read(ctx)
    info = declared_features(source, ctx)
    for warning in info["warnings"]:
        ctx.log(f"warning: {warning}")
        ctx.logger.warning("%s: %s", ctx.step.name, warning)
    label = info["label"]

    from . import ingest_stages as stages

    analyzed = any(callable(getattr(t, "analyze", None)) for t in source.transforms)
    with beam.Pipeline(options=ctx.beam_options()) as p:
        read_main, read_rejected = _outputs_of(
            p | f"Read ({source.name})" >> reader, f"source '{source.name}': read()"
        )
        # Counted per branch: a Flatten here would make the in-process runner hold every record.
        for what, branch in (("records", read_main), ("rejected", read_rejected)):
            (
                branch
                | f"Count read {what}: ones" >> beam.Map(_one)
                | f"Count read {what}: sum" >> beam.CombineGlobally(sum)
                | f"Count read {what}: save" >> beam.Map(_save, str(work / f"read-{what}"))
            )
        records, transformed = apply_transforms(read_main, source.transforms, ctx)
        rejected = [read_rejected, *transformed]
        spilled = records | "Spill" >> beam.ParDo(
            stages.SpillRecords(str(work / "runs"), source.split, shares)
        ).with_outputs(REJECTED, main=MAIN)
        rejected.append(spilled[REJECTED])
        manifest = spilled[MAIN] | "Manifest" >> beam.CombineGlobally(stages.merge_reports)
        plan = manifest | "Shards: plan" >> beam.Map(
            _plan_of, names, source.shards, bool(source.split.from_feature)
        )
        plan_side = beam.pvalue.AsSingleton(plan)
        encoded = (
            manifest
            | "Groups" >> beam.FlatMap(stages.groups)
            | "Groups: spread" >> beam.Reshuffle()
            | "Deduplicate and encode"
            >> beam.FlatMap(
                stages.dedupe_and_encode,
                str(work / "fragments"),
                label,
                source.deduplicate,
                analyzed,
                schema=beam.pvalue.AsSingleton(manifest | "Dtypes" >> beam.Map(stages.dtypes)),
                plan=plan_side,
            ).with_outputs(REJECTED, stages.STATS, stages.TRAIN, main=MAIN)
        )
        rejected.append(encoded[REJECTED])
        (
            encoded[stages.STATS]
            | "Statistics: combine" >> beam.CombineGlobally(merge_stats)
            | "Statistics: save" >> beam.Map(_save_schema, str(work / "schema"))
        )
        if analyzed:
            _apply_analyzers(source, ctx, encoded[stages.TRAIN], out)
        every_shard = plan | "Shards: list" >> beam.FlatMap(_all_shards)
        (
            (encoded[MAIN], every_shard)
            | "Shards: merge" >> beam.Flatten()
            | "Shards: group" >> beam.GroupByKey()
            | "Shards: write"
            >> beam.Map(
                stages.write_shard,
                str(out / ex.EXAMPLES_DIR),
                str(work / "shards"),
                plan=plan_side,
            )
        )
        (
            tuple(rejected)
            | "Rejected: merge" >> beam.Flatten()
            | "Rejected: key" >> beam.Map(_key_zero)
            | "Rejected: group" >> beam.GroupByKey()
            | "Rejected: write"
            >> beam.Map(_write_rejected, str(out / ex.REJECTED_DIR), str(work / "rejected"))
        )

    return _finish(source, ctx, info, names, work)


def _apply_analyzers(source: Source, ctx: StepContext, train: Any, out: Path) -> None:
    """Run each transform's ``analyze`` over the TRAIN split only and write its assets.

    Analyzers compute what training and serving need from the data (a vocabulary, normalisation
    constants) without seeing eval or test records: no leakage. Each returns a Beam
    ``PTransform`` from train records to ``(relative_path, bytes)`` pairs, written under
    ``assets/`` of the examples artifact."""
    import apache_beam as beam

    analyzers = [
        (i, t) for i, t in enumerate(source.transforms, 1) if callable(getattr(t, "analyze", None))
    ]
    if not analyzers:
        return
    assets = str(out / ex.ASSETS_DIR)
    for i, transform in analyzers:
        analyzer = transform.analyze(ctx)
        if analyzer is None:
            continue
        (
            train
            | f"Analyze {i} ({transform.name})" >> analyzer
            | f"Analyze {i} ({transform.name}): write" >> beam.Map(_write_asset, assets)
        )


def _write_asset(item: tuple[str, bytes], folder: str) -> None:
    relative, data = item
    target = (Path(folder) / relative).resolve()
    if Path(folder).resolve() not in target.parents:
        raise PipelineError(f"an analyzer asset path leaves assets/: {relative!r}")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data if isinstance(data, bytes) else str(data).encode("utf-8"))


def _read_json(path: Path, default: Any = None) -> Any:
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else default


def _finish(
    source: Source, ctx: StepContext, info: dict[str, Any], names: list[str], work: Path
) -> StepResult:
    out = Path(ctx.output_dir)
    read = int(_read_json(work / "read-records", 0)) + int(_read_json(work / "read-rejected", 0))
    rejected = int((_read_json(work / "rejected") or {"count": 0})["count"])
    per_split = dict.fromkeys(names, 0)
    shards = dict.fromkeys(names, 0)
    for file in sorted((work / "shards").glob("*.json")):
        entry = _read_json(file)
        per_split[entry["split"]] += entry["count"]
        shards[entry["split"]] += 1
    if source.split.from_feature:  # the data's own splits: only those it names
        per_split = {name: n for name, n in per_split.items() if n}
        shards = {name: n for name, n in shards.items() if name in per_split}
    written = sum(per_split.values())
    if read == 0:
        raise PipelineError(
            f"source '{source.name}' found no records in {source_location(source, ctx)}: "
            "the data set is empty"
        )
    if written == 0:
        reasons = _top_reasons(ex.rejected_records(out))
        raise PipelineError(
            f"source '{source.name}': all {read} records read from "
            f"{source_location(source, ctx)} were rejected ({reasons})"
        )
    schema = _read_json(work / "schema")
    spec = _features_json(schema, info, per_split, shards)
    (out / ex.REJECTED_DIR).mkdir(exist_ok=True)
    (out / ex.FEATURES_FILE).write_text(
        json.dumps(spec, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    shutil.rmtree(work, ignore_errors=True)
    counts = {"read": read, "written": written, "rejected": rejected}
    counts.update({f"written_{name}": n for name, n in per_split.items()})
    parts = " / ".join(f"{n} {name}" for name, n in per_split.items())
    summary = f"{written} examples ({parts}), {rejected} rejected"
    if spec["classes"] is not None:
        summary += f", {len(spec['classes'])} classes"
    if spec["warnings"]:
        summary += f", {len(spec['warnings'])} warning(s)"
    return StepResult(counts=counts, summary=summary)


def _top_reasons(entries: list[dict[str, str]], limit: int = 3) -> str:
    tally: dict[str, int] = {}
    for entry in entries:
        tally[entry["reason"]] = tally.get(entry["reason"], 0) + 1
    top = sorted(tally.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]
    return "; ".join(f"{n} x {reason}" for reason, n in top) or "no reasons recorded"


def _features_json(
    schema: dict[str, Any],
    info: dict[str, Any],
    per_split: dict[str, int],
    shards: dict[str, int],
) -> dict[str, Any]:
    features = {}
    declared = info["features"]
    for name, entry in schema["features"].items():
        inferred = entry.pop("inferred_modality")
        decl = dict(declared.get(name, {}))
        modality = decl.pop("modality", None) or inferred
        features[name] = {**decl, **entry, "modality": modality}
    label = info["label"] if info["label"] in features else None
    if label is None:
        label = next((n for n, f in features.items() if f["modality"] == "label"), None)
    warnings = list(info["warnings"])
    if info["label"] and label is None:
        warnings.append(f"label feature '{info['label']}' is in no record")
    classes = None
    if label is not None and features[label]["dtype"] != "float":
        classes = schema["labels"]
    return {
        "version": 1,
        "compression": "GZIP",
        "features": features,
        "label": label,
        "classes": classes,
        "splits": per_split,
        "shards": shards,
        "count": sum(per_split.values()),
        "warnings": warnings,
    }
