"""The ingest engine: one Beam pipeline from a source's records to an examples artifact.

The story, each stage a named composite ``PTransform`` of this module::

    ReadSource -> ApplyTransforms -> SpillRecords -> DeduplicateAndEncode -> WriteShards
                                                          \\-> statistics, Analyze (train only)
    rejected records of every stage -> WriteRejected

Records never go through a Beam shuffle: they are spilled to local run files bucketed by content
hash, read back one group of buckets at a time and merged into shards (``beamline.spill``, the
element functions in ``beamline.ingest_stages``), so memory stays bounded whatever the data
size. Shards are deterministic whatever the runner: records are assigned to shards by content
hash and sorted within a shard. Counts are small files in the step's work folder, summed by
``beamline.ingest_result`` once the pipeline finished. The streaming engine
(``beamline.stream_engine``) reuses ``ApplyTransforms`` and the record helpers.

On the ``direct`` runner, a step that needs nothing of Beam (a ``create_source`` reader,
``record_stage`` transforms, no analyzer) runs the same element functions in plain loops
instead of a pipeline (``beamline.ingest_in_process``), writing the same bytes.

Imported only when a source step runs (it imports Apache Beam at the top).
"""

from __future__ import annotations

import functools
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import apache_beam as beam

from . import examples as ex
from . import ingest_stages as stages
from .components import StepResult
from .errors import PipelineError, SpecError
from .feature_stats import merge_stats
from .ingest_in_process import in_process_analyzers, in_process_chain, run_in_process
from .ingest_result import declared_features, finish_ingest
from .records import MAIN, REJECTED
from .splits import SPLIT_NAMES, split_shares

if TYPE_CHECKING:
    from .components import Source, Split, Transform
    from .context import StepContext

_WORK_DIR = ".ingest"


def outputs_of(
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


class ReadSource(beam.PTransform):
    """The source's reader, and a count of what it read (records and rejected ones).

    Output: ``{"main": records, "rejected": rejected}``. Counted per branch: a Flatten of the
    two would make the in-process runner hold every record."""

    def __init__(self, name: str, reader: Any, work: Path) -> None:
        super().__init__()
        self.source_name, self.reader, self.work = name, reader, work

    def expand(self, root: Any) -> dict[str, Any]:
        read_main, read_rejected = outputs_of(
            root | "Reader" >> self.reader, f"source '{self.source_name}': read()"
        )
        for what, branch in (("records", read_main), ("rejected", read_rejected)):
            (
                branch
                | f"Count {what}: per bundle" >> beam.ParDo(stages.CountBundle())
                | f"Count {what}: sum" >> beam.CombineGlobally(sum)
                | f"Count {what}: save"
                >> beam.Map(stages.save_json, str(self.work / f"read-{what}"))
            )
        return {MAIN: read_main, REJECTED: read_rejected}


class ApplyTransforms(beam.PTransform):
    """Each transform's stage in order, as ``Transform i (name)``; consecutive record stages
    (``beamline.ingest.record_stage`` without side inputs) run as one Beam stage,
    ``Transforms i-j (names)``, which applies their functions in turn (a record then crosses
    Beam's per-element machinery once, not once per transform; rejects still name their stage).

    Output: ``{"main": records out of the last stage, "rejected": (PCollections of rejects)}``.
    A stage whose output is not tagged ``main`` and ``rejected`` raises ``error``."""

    def __init__(
        self,
        transforms: Sequence[Transform],
        ctx: StepContext,
        error: type[PipelineError] = PipelineError,
    ) -> None:
        super().__init__()
        self.transforms, self.ctx, self.error = list(transforms), ctx, error

    def expand(self, records: Any) -> dict[str, Any]:
        if not self.transforms:  # Beam cannot translate a composite whose output is its input
            return {
                MAIN: records | "No transforms" >> beam.Map(lambda record: record),
                REJECTED: (),
            }
        rejected = []
        for first, group in self._runs():
            if len(group) > 1:
                names = ", ".join(t.name for t, _ in group)
                label = f"Transforms {first}-{first + len(group) - 1} ({names})"
                functions = [stage.record_function[:2] for _, stage in group]
                outs = records | label >> beam.FlatMap(stages.apply_chain, functions).with_outputs(
                    REJECTED, main=MAIN
                )
                records, bad = outs[MAIN], outs[REJECTED]
            else:
                transform, stage = group[0]
                records, bad = outputs_of(
                    records | f"Transform {first} ({transform.name})" >> stage,
                    f"transform '{transform.name}': stage()",
                    self.error,
                )
            rejected.append(bad)
        return {MAIN: records, REJECTED: tuple(rejected)}

    def _runs(self) -> list[tuple[int, list[tuple[Transform, Any]]]]:
        """The transforms with their stages, cut into runs of chainable record stages (each
        other stage alone): ``(number of the run's first transform, [(transform, stage)])``."""
        runs: list[tuple[int, list[tuple[Transform, Any]]]] = []
        chaining = False
        for i, transform in enumerate(self.transforms, 1):
            stage = transform.stage(self.ctx)
            function = getattr(stage, "record_function", None)
            chainable = function is not None and not function[2]
            if chainable and chaining:
                runs[-1][1].append((transform, stage))
            else:
                runs.append((i, [(transform, stage)]))
            chaining = chainable
        return runs


class SpillRecords(beam.PTransform):
    """Hash, split and spill every record to run files; combine the bundles' reports.

    Output: ``{"main": the manifest (one dict), "rejected": records without a split}``."""

    def __init__(self, folder: Path, split: Split, shares: list[tuple[str, float]]) -> None:
        super().__init__()
        self.folder, self.split, self.shares = folder, split, shares

    def expand(self, records: Any) -> dict[str, Any]:
        spilled = records | "Hash, split, spill" >> beam.ParDo(
            stages.SpillRecords(str(self.folder), self.split, self.shares)
        ).with_outputs(REJECTED, main=MAIN)
        manifest = spilled[MAIN] | "Manifest" >> beam.CombineGlobally(stages.merge_reports)
        return {MAIN: manifest, REJECTED: spilled[REJECTED]}


class DeduplicateAndEncode(beam.PTransform):
    """Read the spilled records back a group of buckets at a time: drop duplicates, encode
    ``tf.train.Example``, write sorted fragments per shard, gather statistics.

    Input: the manifest; ``plan``: the shard plan (a singleton PCollection). Output: the
    ``DoOutputsTuple`` of ``ingest_stages.dedupe_and_encode`` (fragments on ``main``,
    duplicates on ``rejected``, ``stats``, and the train records on ``train`` when
    ``analyzed``)."""

    def __init__(
        self, folder: Path, label: str | None, deduplicate: bool, analyzed: bool, plan: Any
    ) -> None:
        super().__init__()
        self.folder, self.label_feature, self.plan = folder, label, plan
        self.deduplicate, self.analyzed = deduplicate, analyzed

    def expand(self, manifest: Any) -> Any:
        dtypes = manifest | "Dtypes" >> beam.Map(stages.dtypes)
        return (
            manifest
            | "Groups" >> beam.FlatMap(stages.groups)
            | "Groups: spread" >> beam.Reshuffle()
            | "Deduplicate and encode"
            >> beam.FlatMap(
                stages.dedupe_and_encode,
                str(self.folder),
                self.label_feature,
                self.deduplicate,
                self.analyzed,
                schema=beam.pvalue.AsSingleton(dtypes),
                plan=beam.pvalue.AsSingleton(self.plan),
            ).with_outputs(REJECTED, stages.STATS, stages.TRAIN, main=MAIN)
        )


class WriteShards(beam.PTransform):
    """Merge each shard's fragments into its GZIP TFRecord file; every planned shard is
    written, empty ones too. Input: ``((split, shard), fragment path)`` pairs."""

    def __init__(self, examples_dir: Path, counts_dir: Path, plan: Any) -> None:
        super().__init__()
        self.examples_dir, self.counts_dir, self.plan = examples_dir, counts_dir, plan

    def expand(self, fragments: Any) -> Any:
        every_shard = self.plan | "List" >> beam.FlatMap(stages.all_shards)
        return (
            (fragments, every_shard)
            | "Merge" >> beam.Flatten()
            | "Group" >> beam.GroupByKey()
            | "Write"
            >> beam.Map(
                stages.write_shard,
                str(self.examples_dir),
                str(self.counts_dir),
                plan=beam.pvalue.AsSingleton(self.plan),
            )
        )


class WriteRejected(beam.PTransform):
    """Every stage's rejected records into one sorted JSONL file, and their count.

    Input: a tuple of PCollections of rejected-record entries."""

    def __init__(self, folder: Path, counts: Path) -> None:
        super().__init__()
        self.folder, self.counts = folder, counts

    def expand(self, rejected: tuple[Any, ...]) -> Any:
        return (
            rejected
            | "Merge" >> beam.Flatten()
            | "Key" >> beam.Map(stages.key_zero)
            | "Group" >> beam.GroupByKey()
            | "Write" >> beam.Map(stages.write_rejected, str(self.folder), str(self.counts))
        )


class Analyze(beam.PTransform):
    """Each transform's ``analyze`` over the TRAIN split only, its assets written to ``folder``.

    Analyzers compute what training and serving need from the data (a vocabulary, normalisation
    constants) without seeing eval or test records: no leakage. Each returns a Beam
    ``PTransform`` from train records to ``(relative_path, bytes)`` pairs, written under
    ``assets/`` of the examples artifact."""

    def __init__(self, transforms: Sequence[Transform], ctx: StepContext, folder: Path) -> None:
        super().__init__()
        self.transforms, self.ctx, self.folder = list(transforms), ctx, folder

    def expand(self, train: Any) -> None:
        for i, transform in enumerate(self.transforms, 1):
            analyzer = transform.analyze(self.ctx) if analyzes(transform) else None
            if analyzer is None:
                continue
            (
                train
                | f"{i} ({transform.name})" >> analyzer
                | f"{i} ({transform.name}): write" >> beam.Map(stages.write_asset, str(self.folder))
            )


def analyzes(transform: Transform) -> bool:
    """Whether a transform has an ``analyze`` method (it computes assets on the train split)."""
    return callable(getattr(transform, "analyze", None))


def split_names(source: Source) -> tuple[list[tuple[str, float]], list[str]]:
    """The split shares of ``source`` and the names of the splits it may write."""
    shares = split_shares(source.split)
    if not source.split.from_feature:
        return shares, [name for name, _ in shares]
    if source.split.key or source.split.group_by:
        raise SpecError(
            f"source '{source.name}': split.from_feature cannot be combined with "
            "split.key or split.group_by (the data names each record's split)"
        )
    return shares, list(SPLIT_NAMES)


def run_ingest(source: Source, ctx: StepContext) -> StepResult:
    """Run ``source`` as an ingest step: read, transform, deduplicate, split and write.

    Writes ``examples/``, ``rejected/``, ``assets/`` (when a transform analyzes) and
    ``features.json`` into ``ctx.output_dir`` and returns the counts ``read``, ``written``,
    ``rejected`` and ``written_<split>`` per split."""
    out = Path(ctx.output_dir)
    work = out / _WORK_DIR
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    shares, names = split_names(source)
    if source.shards < 0:
        raise SpecError(f"source '{source.name}': shards must be 0 (automatic) or more")
    reader = source.read(ctx)
    info = declared_features(source, ctx)
    for warning in info["warnings"]:
        ctx.log(f"warning: {warning}")
        ctx.logger.warning("%s: %s", ctx.step.name, warning)
    analyzed = any(analyzes(t) for t in source.transforms)
    chain = in_process_chain(source, ctx, reader)
    if chain is not None:  # the direct runner, nothing that needs Beam: plain loops
        from .ingest_columnar import columnar_stages, run_columnar

        analyzers = in_process_analyzers(source, ctx)
        columnar = columnar_stages(source, ctx, reader, analyzers)
        run = run_in_process if columnar is None else functools.partial(run_columnar, columnar)
        run(
            source,
            reader,
            chain,
            work,
            out / ex.EXAMPLES_DIR,
            out / ex.REJECTED_DIR,
            names,
            shares,
            info["label"],
            analyzers,
            out / ex.ASSETS_DIR,
        )
    else:
        _run_pipeline(source, ctx, reader, work, shares, names, info, analyzed)
    result = finish_ingest(source, ctx, info, names, work)
    shutil.rmtree(work, ignore_errors=True)
    return result


def _run_pipeline(
    source: Source,
    ctx: StepContext,
    reader: Any,
    work: Path,
    shares: list[tuple[str, float]],
    names: list[str],
    info: dict[str, Any],
    analyzed: bool,
) -> None:
    """The ingest as one Beam pipeline on the step's runner."""
    out = Path(ctx.output_dir)
    with beam.Pipeline(options=ctx.beam_options()) as p:
        read = p | f"Read ({source.name})" >> ReadSource(source.name, reader, work)
        records = read[MAIN] | "Transforms" >> ApplyTransforms(source.transforms, ctx)
        spilled = records[MAIN] | "Spill" >> SpillRecords(work / "runs", source.split, shares)
        plan = spilled[MAIN] | "Shard plan" >> beam.Map(
            stages.plan_of, names, source.shards, bool(source.split.from_feature)
        )
        encoded = spilled[MAIN] | "Deduplicate and encode" >> DeduplicateAndEncode(
            work / "fragments", info["label"], source.deduplicate, analyzed, plan
        )
        (
            encoded[stages.STATS]
            | "Statistics: combine" >> beam.CombineGlobally(merge_stats)
            | "Statistics: save" >> beam.Map(stages.save_schema, str(work / "schema"))
        )
        if analyzed:
            _ = encoded[stages.TRAIN] | "Analyze" >> Analyze(
                source.transforms, ctx, out / ex.ASSETS_DIR
            )
        _ = encoded[MAIN] | "Shards" >> WriteShards(out / ex.EXAMPLES_DIR, work / "shards", plan)
        rejected = (read[REJECTED], *records[REJECTED], spilled[REJECTED], encoded[REJECTED])
        _ = rejected | "Rejected" >> WriteRejected(out / ex.REJECTED_DIR, work / "rejected")


def run(source: Source, ctx: StepContext) -> StepResult:
    """Run a source as a step (what ``beamline.steps`` calls)."""
    return run_ingest(source, ctx)
