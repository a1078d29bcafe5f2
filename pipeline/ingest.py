"""Ingest for plugin authors: build a source's reader and a transform's stage from functions.

A *source* reads raw data into records (``create_source``: a list of items, each read by a
function); a *transform* changes records (``record_stage``: a function of one record). Both
reject a record by raising (or, for a reader, yielding) ``Reject``; rejected records are written
with their reason. Records follow ``beamline.records``; what ingest writes is described in
``beamline.examples``. The ingest engine that runs a source as a step (transforms, duplicates,
split, shards, rejected records, counts) is ``beamline.ingest_engine``.

Importing this module is cheap: Beam loads when a stage is built.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from .records import MAIN as MAIN  # re-exported: what plugins import from here
from .records import META_KEY as META_KEY
from .records import REJECTED as REJECTED
from .records import SOURCE_KEY as SOURCE_KEY
from .records import Reject as Reject
from .records import content_hash as content_hash
from .records import record_source, rejected
from .records import visible as visible
from .records import with_meta as with_meta
from .shards import shard_of as shard_of
from .splits import split_of as split_of


def read_item(item: Any, fn: Callable[[Any], Iterable[Any]], stage: str) -> Iterator[Any]:
    """Run a reader ``fn`` on one item (in Beam): records go to the main output and ``Reject``
    (yielded or raised) to ``rejected``, named by its source or else by the item."""
    from apache_beam import pvalue

    try:
        for out in fn(item):
            if isinstance(out, Reject):
                where = out.source or str(item)
                yield pvalue.TaggedOutput(REJECTED, rejected(where, stage, out.reason))
            else:
                yield out
    except Reject as exc:
        where = exc.source or str(item)
        yield pvalue.TaggedOutput(REJECTED, rejected(where, stage, exc.reason))


def create_source(label: str, items: list[Any], fn: Callable[[Any], Iterable[Any]]) -> Any:
    """A source ``PTransform``: ``items`` (paths, rows...) each read by ``fn`` into records.

    ``fn(item)`` yields records (dicts with ``__source__``) and ``Reject`` for unreadable ones;
    it must be a module-level function (or a ``functools.partial`` of one) so workers can load
    it. The result is ``{"main": records, "rejected": rejected}``. The source keeps
    ``(label, items, fn)`` as ``source_items``, so that the ingest engine's in-process path
    (``beamline.ingest_in_process``) can read the items without Beam."""
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

    source = _source()
    source.source_items = (label, items, fn)
    return source


def _apply(record: dict[str, Any], fn: Callable[..., Any], stage: str) -> Iterator[Any]:
    return _apply_with(record, fn, stage)


def _apply_with(record: Any, fn: Any, stage: Any, **side: Any) -> Any:
    from apache_beam import pvalue

    source = record_source(record)
    try:
        out = fn(record, **side)
    except Reject as exc:
        yield pvalue.TaggedOutput(REJECTED, rejected(exc.source or source, stage, exc.reason))
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
    is ``{"main": records, "rejected": rejected}``, rejected entries naming ``label`` as stage.
    The stage keeps ``(label, fn, side_inputs)`` as ``record_function``, so that an engine
    handling records in batches (a broker stream's polls) can apply ``fn`` without Beam."""
    import apache_beam as beam

    @beam.ptransform_fn
    def _stage(records: Any) -> dict[str, Any]:
        if side_inputs:  # Beam's hint checks refuse a **kwargs function called without any
            apply = beam.FlatMap(_apply_with, fn, label, **side_inputs)
        else:
            apply = beam.FlatMap(_apply, fn, label)
        outs = records | label >> apply.with_outputs(REJECTED, main=MAIN)
        return {MAIN: outs[MAIN], REJECTED: outs[REJECTED]}

    stage = _stage()
    stage.record_function = (label, fn, side_inputs)
    return stage
