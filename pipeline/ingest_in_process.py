"""The ingest engine's in-process path: a whole ingest step as plain functions, without Beam.

On the ``direct`` runner everything runs in this one process anyway, and a Beam pipeline costs
more than its work at image-ingest sizes: building, translating and starting the ~40 transforms
of an ingest pipeline takes ~0.6 CPU-s, and every record crosses Beam's per-element machinery
once per stage (reader, transforms, spill, counts). When a step can run without Beam (the
source was built by ``beamline.ingest.create_source``, every transform by ``record_stage``
without a Beam side input, every analyzer with an ``analyze_in_process``), the engine runs
the same element functions of ``beamline.ingest_stages`` in plain loops instead::

    items -> reader -> transforms, in bulk per batch of records (``stream_batches.apply_in_bulk``)
          -> hash, split, spill (``ingest_stages.Spiller``) -> manifest, shard plan
          -> each group of buckets: deduplicate, statistics, encode, sorted fragments
          -> every planned shard merged into its file
    rejected entries of every stage -> one sorted JSONL file; counts -> the work folder

Memory stays bounded as on Beam: a batch of records, one spill buffer, one group of buckets.
What is written (examples, shards, rejected records, counts, statistics) is byte-identical to
the Beam pipeline's (``tests/test_ingest_engine.py`` runs both). Imported only when an ingest
runs (``beamline.ingest_stages`` imports Apache Beam).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from apache_beam import pvalue

from . import ingest_stages as stages
from .feature_stats import FeatureStats, merge_stats
from .ingest import read_item
from .records import REJECTED
from .stream_batches import RecordFunction, apply_in_bulk, record_functions

if TYPE_CHECKING:
    from .components import Source, Split
    from .context import StepContext

#: Whether the ``direct`` runner may take the in-process path (tests compare both paths).
ENABLED = True
#: Records read before the transforms run over them in bulk.
BATCH_RECORDS = 256


def in_process_chain(source: Source, ctx: StepContext, reader: Any) -> list[RecordFunction] | None:
    """The transforms as plain functions when ``source`` can be ingested without Beam (the
    ``direct`` runner, a ``create_source`` reader, ``record_stage`` transforms, no analyzer
    without ``analyze_in_process``),
    else None (the Beam pipeline runs)."""
    settings = ctx.spec.runner
    if not ENABLED or settings.name != "direct" or settings.options:
        return None
    if getattr(reader, "source_items", None) is None:
        return None
    for transform in source.transforms:  # an analyzer needs Beam unless it runs in process
        if callable(getattr(transform, "analyze", None)) and not callable(
            getattr(transform, "analyze_in_process", None)
        ):
            return None
    return record_functions(source.transforms, ctx)


def in_process_analyzers(source: Source, ctx: StepContext) -> list[Any]:
    """Each analyzing transform's ``analyze_in_process(ctx)`` (those that give one)."""
    out = []
    for transform in source.transforms:
        make = getattr(transform, "analyze_in_process", None)
        analyzer = make(ctx) if callable(make) else None
        if analyzer is not None:
            out.append(analyzer)
    return out


def read_records(
    items: Iterable[Any], fn: Callable[[Any], Iterable[Any]], label: str, bad: list[dict[str, str]]
) -> Iterator[dict[str, Any]]:
    """The records ``fn`` reads from each item (``beamline.ingest.read_item``, as in Beam): its
    rejected entries are appended to ``bad``."""
    for item in items:
        for out in read_item(item, fn, label):
            if isinstance(out, pvalue.TaggedOutput):
                bad.append(out.value)
            else:
                yield out


def _batches(records: Iterator[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for record in records:
        batch.append(record)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def spill_all(
    reader: Any,
    chain: list[RecordFunction],
    folder: Path,
    split: Split,
    shares: list[tuple[str, float]],
    bad: list[dict[str, str]],
) -> tuple[dict[str, Any], int, int]:
    """Read, transform, hash, split and spill every record: ``(manifest, records read, rejects
    read)``; every rejected entry is appended to ``bad``."""
    label, items, fn = reader.source_items
    read_bad: list[dict[str, str]] = []
    spiller = stages.Spiller(str(folder), split, shares)
    count = 0
    for batch in _batches(read_records(items, fn, label, read_bad), BATCH_RECORDS):
        count += len(batch)
        records, stage_bad, _ = apply_in_bulk((batch, [], 0), chain)
        bad.extend(stage_bad)
        for record in records:
            entry = spiller.add(record)
            if entry is not None:
                bad.append(entry)
    bad.extend(read_bad)
    report = spiller.report()
    return stages.merge_reports([report] if report else []), count, len(read_bad)


def write_groups(
    manifest: dict[str, Any],
    plan: dict[str, Any],
    work: Path,
    examples_dir: Path,
    label: str | None,
    deduplicate: bool,
    bad: list[dict[str, str]],
    analyzers: Sequence[Any] = (),
) -> FeatureStats:
    """Deduplicate, encode and write every group of buckets, then every planned shard; the
    duplicates go to ``bad``, the written TRAIN records to each of ``analyzers``; returns the
    statistics of what was written."""
    schema = stages.dtypes(manifest)
    fragments: dict[tuple[str, int], list[str]] = {key: [] for key, _ in stages.all_shards(plan)}
    stats = []
    analyzed = bool(analyzers)
    for group in stages.groups(manifest):
        for out in stages.dedupe_and_encode(
            group, str(work / "fragments"), label, deduplicate, analyzed, schema, plan
        ):
            if isinstance(out, pvalue.TaggedOutput):
                if out.tag == stages.TRAIN:
                    for analyzer in analyzers:
                        analyzer.add(out.value)
                else:
                    (bad if out.tag == REJECTED else stats).append(out.value)
            else:
                key, path = out
                fragments[key].append(path)
    for key, paths in fragments.items():
        stages.write_shard((key, paths), str(examples_dir), str(work / "shards"), plan)
    return merge_stats(stats)


def run_in_process(
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
    """Run the ingest of ``source`` in this process; leaves the same files in ``work``,
    ``examples_dir`` and ``rejected_dir`` as the Beam pipeline of ``beamline.ingest_engine``
    (and the ``analyzers``' assets in ``assets_dir``)."""
    bad: list[dict[str, str]] = []
    manifest, read, read_rejected = spill_all(
        reader, chain, work / "runs", source.split, shares, bad
    )
    stages.save_json(read, str(work / "read-records"))
    stages.save_json(read_rejected, str(work / "read-rejected"))
    plan = stages.plan_of(manifest, names, source.shards, bool(source.split.from_feature))
    stats = write_groups(
        manifest, plan, work, examples_dir, label, source.deduplicate, bad, analyzers
    )
    for analyzer in analyzers:
        for item in analyzer.assets():
            stages.write_asset(item, str(assets_dir))
    stages.save_schema(stats, str(work / "schema"))
    if bad:  # as on Beam, where a group of no rejected entries writes nothing
        stages.write_rejected((0, bad), str(rejected_dir), str(work / "rejected"))
