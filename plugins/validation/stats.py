"""Statistics, schemas, comparators and anomalies with TFDV, shared by the step and the command.

Everything heavy (TensorFlow, TFDV, Beam) is imported inside the functions. Protos from
``tensorflow_metadata`` are cheap and used freely.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa
    from apache_beam.options.pipeline_options import PipelineOptions
    from tensorflow_metadata.proto.v0 import anomalies_pb2, schema_pb2, statistics_pb2


def load_tfdv() -> Any:
    """Import TFDV, without the notice it writes to stderr when IPython (notebooks) is missing."""
    import contextlib
    import io
    import sys

    if "tensorflow_data_validation" not in sys.modules:
        with contextlib.redirect_stderr(io.StringIO()):
            import tensorflow_data_validation  # noqa: F401
    import tensorflow_data_validation as tfdv

    return tfdv


#: Anomaly classes of ``fail_on`` besides TFDV's anomaly type names.
ANOMALY_CLASSES = ("schema", "skew", "drift")
#: A comparator threshold that never fires: L-infinity and Jensen-Shannon are at most 1.
MEASURE_ONLY = 1.0
#: Modalities whose bytes are binary blobs: statistics count their sizes, not their values.
BINARY_MODALITIES = ("image", "audio")
DATASET = "(dataset)"


@dataclass
class Problem:
    """One anomaly reason: where, what kind, and TFDV's explanation."""

    split: str
    feature: str
    type: str
    category: str
    description: str

    def message(self, limit: int = 300) -> str:
        """The line a user reads: ``feature 'label' (split eval): unexpected string values: ...``.

        Descriptions longer than ``limit`` characters are cut (the anomalies file has them)."""
        where = "dataset" if self.feature == DATASET else f"feature '{self.feature}'"
        text = self.description
        if len(text) > limit:
            text = text[: limit - 1].rstrip() + "…"
        return f"{where} (split {self.split}): {text}"

    def as_dict(self) -> dict[str, str]:
        """A JSON-ready dictionary."""
        return asdict(self)


@dataclass
class Measurement:
    """A skew or drift distance of one feature and the threshold it was held to (None: none)."""

    feature: str
    kind: str  # "skew" or "drift"
    split: str
    measure: str  # "L_INFTY" or "JENSEN_SHANNON_DIVERGENCE"
    value: float
    threshold: float | None

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary."""
        return asdict(self)


# ---------------------------------------------------------------------------------------------
# Statistics


def stats_options(schema: schema_pb2.Schema | None) -> Any:
    """TFDV statistics options; a schema marks binary features (``image_domain``) as bytes."""
    tfdv = load_tfdv()

    return tfdv.StatsOptions(schema=schema)


def read_records(files: Iterable[str]) -> list[bytes]:
    """The serialized records of TFRecord files; GZIP is detected from each file's header.

    Read with ``beamline.tfrecord`` (zlib and checksums, no tf.data pipeline per file: 4x
    faster for a split of PNG examples). A truncated or corrupt file raises ``ValueError``
    naming the file and the record."""
    records: list[bytes] = []
    for file in files:
        records.extend(_file_records(file))
    return records


def _file_records(path: str) -> list[bytes]:
    from beamline.tfrecord import read_tfrecord_file

    return read_tfrecord_file(path)


def statistics_in_memory(
    records: list[bytes], schema: schema_pb2.Schema | None
) -> statistics_pb2.DatasetFeatureStatisticsList:
    """Statistics of serialized ``tf.train.Example`` records with TFDV's in-memory path."""
    from tfx_bsl.coders import example_coder

    batch = example_coder.ExamplesToRecordBatchDecoder().DecodeBatch(records)
    return statistics_of_batch(batch, schema)


#: Threads that read and decompress TFRecord files at once on the in-memory path.
READ_THREADS = 4


def statistics_of_files(
    files: Iterable[str], schema: schema_pb2.Schema | None
) -> statistics_pb2.DatasetFeatureStatisticsList:
    """Statistics of TFRecord files of ``tf.train.Example`` with TFDV's in-memory path.

    Files are read and decompressed on up to ``READ_THREADS`` threads (zlib works without the
    GIL; tf.data reads in background threads too) while the caller's thread decodes them. Each
    file's records become an Arrow batch and are dropped before more files are read, so a
    split's serialized records and its decoded batch never all sit in memory at once (a third
    less peak memory than decoding all records at once; the same statistics)."""
    import os
    from concurrent.futures import ThreadPoolExecutor

    from tfx_bsl.arrow import table_util
    from tfx_bsl.coders import example_coder

    files = list(files)
    threads = max(1, min(len(files), os.cpu_count() or 1, READ_THREADS))
    decoder = example_coder.ExamplesToRecordBatchDecoder()
    batches = []
    with ThreadPoolExecutor(threads, thread_name_prefix="tfrecord-read") as pool:
        for records in _in_order(pool, _file_records, files, ahead=threads):
            if records:
                batches.append(decoder.DecodeBatch(records))
    if not batches:  # every shard is empty
        batches.append(decoder.DecodeBatch([]))
    batch = batches[0] if len(batches) == 1 else table_util.MergeRecordBatches(batches)
    del batches
    return statistics_of_batch(batch, schema)


def _in_order(pool: Any, fn: Any, items: list[str], ahead: int) -> Iterator[Any]:
    """``fn`` of each item, run on ``pool`` with at most ``ahead`` results waiting, in order."""
    from collections import deque

    pending: deque[Any] = deque()
    for item in items:
        pending.append(pool.submit(fn, item))
        if len(pending) >= ahead:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


def statistics_of_batch(
    batch: pa.RecordBatch, schema: schema_pb2.Schema | None
) -> statistics_pb2.DatasetFeatureStatisticsList:
    """Statistics of an Arrow record batch (one row per example) with TFDV's in-memory path."""
    load_tfdv()
    from tensorflow_data_validation.statistics import stats_impl

    return stats_impl.generate_statistics_in_memory(batch, stats_options(schema))


def statistics_of_dataframe(
    frame: Any, schema: schema_pb2.Schema | None
) -> statistics_pb2.DatasetFeatureStatisticsList:
    """Statistics of a pandas DataFrame (one row per example), in memory."""
    tfdv = load_tfdv()

    return tfdv.generate_statistics_from_dataframe(frame, stats_options(schema), n_jobs=1)


#: Records per Arrow batch on the Beam path: TFDV's combiners process a batch as soon as it
#: holds this many rows (``DEFAULT_DESIRED_INPUT_BATCH_SIZE``), so none is held back.
BEAM_BATCH_SIZE = 1000


def statistics_with_beam(
    files_by_split: Mapping[str, list[str]],
    schema: schema_pb2.Schema | None,
    out_dir: Path,
    options: PipelineOptions,
) -> dict[str, statistics_pb2.DatasetFeatureStatisticsList]:
    """Statistics of each split's TFRecord files with TFDV's Beam statistics generators.

    One Beam pipeline computes every split in one pass: each shard file is read as a stream
    of Arrow batches keyed by its split's name, and the batches go straight into one set of
    TFDV's combiners with the split as the slice (what ``GenerateStatistics`` runs for each
    slice of sliced statistics). Compared with one ``GenerateStatistics`` graph per split this
    builds and runs a third of the stages, and since no Flatten sits between the reader and the
    combiners the runner never holds a split's records in memory. The statistics equal TFDV's
    per-split ones (no overall slice is computed); each split's go to ``out_dir/<split>.pb``."""
    import apache_beam as beam

    load_tfdv()
    from tensorflow_data_validation.statistics import stats_impl

    out_dir.mkdir(parents=True, exist_ok=True)
    combined = out_dir / ".splits.pb"
    shards = [(split, file) for split, files in files_by_split.items() for file in files]
    with beam.Pipeline(options=options) as pipeline:
        _ = (
            pipeline
            | "Shards" >> beam.Create(shards)
            | "Spread" >> beam.Reshuffle()  # shards to workers on multi-worker runners
            | "Read" >> beam.FlatMap(keyed_batches, batch_size=BEAM_BATCH_SIZE)
            | "Statistics"
            >> stats_impl.GenerateSlicedStatisticsImpl(
                stats_options(schema), is_slicing_enabled=True
            )
            | "Write" >> _write_binary_proto(str(combined))
        )
    return _split_statistics(combined, list(files_by_split), out_dir)


def keyed_batches(shard: tuple[str, str], batch_size: int) -> Iterator[tuple[str, pa.RecordBatch]]:
    """``(split, Arrow batch)`` pairs of a ``(split, TFRecord file)`` pair, ``batch_size``
    examples each, read as a stream (checksums verified)."""
    from tfx_bsl.coders import example_coder

    from beamline.tfrecord import read_tfrecords

    split, file = shard
    decoder = example_coder.ExamplesToRecordBatchDecoder()
    batch: list[bytes] = []
    for record in read_tfrecords(file):
        batch.append(record)
        if len(batch) >= batch_size:
            yield split, decoder.DecodeBatch(batch)
            batch = []
    if batch:
        yield split, decoder.DecodeBatch(batch)


def _write_binary_proto(path: str) -> Any:
    """Beam's one-file writer of TFDV statistics (a binary proto at ``path``)."""
    tfdv = load_tfdv()

    return tfdv.WriteStatisticsToBinaryFile(path)


def _split_statistics(
    combined: Path, names: list[str], out_dir: Path
) -> dict[str, statistics_pb2.DatasetFeatureStatisticsList]:
    """Cut sliced statistics (one dataset per split, named by it) into one list per split.

    Each split's dataset loses its slice name, as unsliced statistics have none, and is written
    to ``out_dir/<split>.pb``. A split without records gets an empty dataset, as TFDV gives."""
    from tensorflow_metadata.proto.v0 import statistics_pb2

    sliced = load_statistics(combined)
    combined.unlink()
    by_name = {dataset.name: dataset for dataset in sliced.datasets}
    out = {}
    for split in names:
        stats = statistics_pb2.DatasetFeatureStatisticsList()
        dataset = stats.datasets.add()  # empty for a split without records, as TFDV's own
        if split in by_name:
            dataset.CopyFrom(by_name[split])
            dataset.ClearField("name")
        write_statistics(stats, out_dir / f"{split}.pb")
        out[split] = stats
    return out


def load_statistics(path: Path) -> statistics_pb2.DatasetFeatureStatisticsList:
    """Read a binary statistics proto."""
    from tensorflow_metadata.proto.v0 import statistics_pb2

    stats = statistics_pb2.DatasetFeatureStatisticsList()
    stats.ParseFromString(Path(path).read_bytes())
    return stats


def write_statistics(stats: statistics_pb2.DatasetFeatureStatisticsList, path: Path) -> None:
    """Write a binary statistics proto."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(stats.SerializeToString())


def num_examples(stats: statistics_pb2.DatasetFeatureStatisticsList) -> int:
    """How many examples the statistics describe."""
    return int(stats.datasets[0].num_examples) if stats.datasets else 0


# ---------------------------------------------------------------------------------------------
# Schemas


def load_schema(path: Path) -> schema_pb2.Schema:
    """Read a text-proto schema; a parse error names the file."""
    from google.protobuf import text_format
    from tensorflow_metadata.proto.v0 import schema_pb2

    schema = schema_pb2.Schema()
    try:
        text_format.Parse(Path(path).read_text(encoding="utf-8"), schema)
    except text_format.ParseError as exc:
        raise ValueError(f"{path}: not a TFDV schema (text proto): {exc}") from exc
    return schema


def write_schema(schema: schema_pb2.Schema, path: Path) -> None:
    """Write a schema as a text proto (atomically: readers never see half a file)."""
    from google.protobuf import text_format

    from beamline.atomic import atomic_write

    atomic_write(path, text_format.MessageToString(schema))


def seed_schema(spec: Mapping[str, Any] | None) -> schema_pb2.Schema | None:
    """A minimal schema of what ``features.json`` (``spec``) knows, for computing statistics.

    Binary features (images) get ``image_domain`` so TFDV counts their bytes instead of keeping
    values; an integer label with known ``classes`` becomes categorical with the domain
    ``0..len(classes)-1``. None when there is nothing to say."""
    from tensorflow_metadata.proto.v0 import schema_pb2

    schema = schema_pb2.Schema()
    _add_known_domains(schema, spec or {}, create=True)
    return schema if schema.feature else None


def infer_schema(
    stats: statistics_pb2.DatasetFeatureStatisticsList, spec: Mapping[str, Any] | None = None
) -> schema_pb2.Schema:
    """Infer a schema from statistics, keeping what ``features.json`` (``spec``) knows."""
    tfdv = load_tfdv()

    schema = tfdv.infer_schema(stats)
    _add_known_domains(schema, spec or {}, create=False)
    return schema


def _drop_string_domain(schema: schema_pb2.Schema, feature: Any) -> None:
    """Remove the list of allowed values TFDV inferred for ``feature`` (if any)."""
    if feature is None or feature.WhichOneof("domain_info") != "domain":
        return
    kept = [d for d in schema.string_domain if d.name != feature.domain]
    del schema.string_domain[:]
    schema.string_domain.extend(kept)
    feature.ClearField("domain")


def _add_known_domains(schema: schema_pb2.Schema, spec: Mapping[str, Any], create: bool) -> None:
    from tensorflow_metadata.proto.v0 import schema_pb2

    features = spec.get("features", {})
    classes = spec.get("classes")
    by_name = {f.name: f for f in schema.feature}
    for name, info in features.items():
        if info.get("modality") == "id":
            _drop_string_domain(schema, by_name.get(name))  # ids are not categories
            continue
        binary = info.get("modality") in BINARY_MODALITIES
        label = name == spec.get("label") and bool(classes) and info.get("dtype") == "int64"
        if not (binary or label):
            continue
        feature = by_name.get(name)
        if feature is None:
            if not create:
                continue
            dtype = schema_pb2.BYTES if binary else schema_pb2.INT
            feature = schema.feature.add(name=name, type=dtype)
        domain = feature.WhichOneof("domain_info")
        if label and domain == "domain":
            # TFDV infers a string domain for categorical integers; an INT needs an int domain.
            kept = [d for d in schema.string_domain if d.name != feature.domain]
            del schema.string_domain[:]
            schema.string_domain.extend(kept)
            feature.ClearField("domain")
            domain = None
        if domain is not None:
            continue
        if binary:
            feature.image_domain.SetInParent()
        else:
            feature.int_domain.min = 0
            feature.int_domain.max = len(classes) - 1
            feature.int_domain.is_categorical = True


def is_binary(feature: schema_pb2.Feature) -> bool:
    """Whether TFDV treats the feature as opaque bytes (no value distribution to compare)."""
    return feature.WhichOneof("domain_info") == "image_domain"


def is_categorical(schema: schema_pb2.Schema, feature: schema_pb2.Feature) -> bool:
    """Whether a feature's distribution is compared value by value (L-infinity)."""
    from tensorflow_metadata.proto.v0 import schema_pb2

    if feature.type == schema_pb2.BYTES:
        return True
    return feature.int_domain.is_categorical


def with_comparators(
    schema: schema_pb2.Schema,
    kind: str,
    thresholds: Mapping[str, float],
    *,
    measure_all: bool,
    only: bool = True,
) -> schema_pb2.Schema:
    """A copy of ``schema`` with only ``kind`` ("skew"/"drift") comparators, per ``thresholds``.

    Categorical and string features get an L-infinity comparator, numeric ones Jensen-Shannon.
    ``thresholds`` maps feature names (``*``: every other feature) to thresholds; they replace
    comparators written in the schema. ``measure_all`` adds never-firing comparators to the
    remaining comparable features so that their distances are measured and reported; ``only``
    drops the other kind's comparators."""
    from tensorflow_metadata.proto.v0 import schema_pb2

    names = {f.name for f in schema.feature}
    unknown = sorted(set(thresholds) - names - {"*"})
    if unknown:
        raise KeyError(
            f"{kind} threshold for unknown feature(s) {', '.join(map(repr, unknown))} "
            f"(features: {', '.join(sorted(names))})"
        )
    out = schema_pb2.Schema()
    out.CopyFrom(schema)
    field, other = f"{kind}_comparator", ("drift" if kind == "skew" else "skew") + "_comparator"
    for feature in out.feature:
        if only:
            feature.ClearField(other)
        if is_binary(feature):
            feature.ClearField(field)
            continue
        threshold = thresholds.get(feature.name, thresholds.get("*"))
        has_own = feature.HasField(field)
        if threshold is None and (has_own or not measure_all):
            continue
        comparator = getattr(feature, field)
        comparator.Clear()
        value = MEASURE_ONLY if threshold is None else float(threshold)
        if is_categorical(out, feature):
            comparator.infinity_norm.threshold = value
        else:
            comparator.jensen_shannon_divergence.threshold = value
    return out


def without_comparators(schema: schema_pb2.Schema) -> schema_pb2.Schema:
    """A copy of ``schema`` without skew and drift comparators (for plain schema checks)."""
    from tensorflow_metadata.proto.v0 import schema_pb2

    out = schema_pb2.Schema()
    out.CopyFrom(schema)
    for feature in out.feature:
        feature.ClearField("skew_comparator")
        feature.ClearField("drift_comparator")
    return out


# ---------------------------------------------------------------------------------------------
# Validation


def validate(
    stats: statistics_pb2.DatasetFeatureStatisticsList,
    schema: schema_pb2.Schema,
    *,
    previous: statistics_pb2.DatasetFeatureStatisticsList | None = None,
    serving: statistics_pb2.DatasetFeatureStatisticsList | None = None,
) -> anomalies_pb2.Anomalies:
    """TFDV's ``validate_statistics``: schema checks, and skew/drift when comparators are set."""
    tfdv = load_tfdv()

    return tfdv.validate_statistics(
        stats, schema, previous_statistics=previous, serving_statistics=serving
    )


def problems(anomalies: anomalies_pb2.Anomalies, split: str, category: str) -> list[Problem]:
    """Each reason of each anomaly as a ``Problem``; comparator reasons get ``category``.

    With ``category`` "skew" or "drift" only comparator reasons are kept (schema reasons are
    reported by the plain schema check)."""
    from tensorflow_metadata.proto.v0 import anomalies_pb2

    type_name = anomalies_pb2.AnomalyInfo.Type.Name
    found = []
    for feature, info in sorted(anomalies.anomaly_info.items()):
        for reason in info.reason:
            name = type_name(reason.type)
            comparator = name.startswith("COMPARATOR_")
            if category != "schema" and not comparator:
                continue
            text = reason.description or reason.short_description
            short = reason.short_description
            if short and not text.lower().startswith(short.lower()):
                text = f"{short[:1].lower()}{short[1:]}: {text}"
            found.append(Problem(split, feature, name, category if comparator else "schema", text))
    if category == "schema":
        for reason in anomalies.dataset_anomaly_info.reason:
            name = type_name(reason.type)
            found.append(Problem(split, DATASET, name, "schema", reason.description))
        if anomalies.data_missing:
            found.append(Problem(split, DATASET, "NO_DATA_IN_SPAN", "schema", "no data"))
    return found


def measurements(
    anomalies: anomalies_pb2.Anomalies,
    split: str,
    kind: str,
    schema: schema_pb2.Schema,
) -> list[Measurement]:
    """The skew or drift distances TFDV measured; thresholds that never fire become None."""
    from tensorflow_metadata.proto.v0 import anomalies_pb2

    configured = {}
    for feature in schema.feature:
        comparator = getattr(feature, f"{kind}_comparator")
        for field in ("infinity_norm", "jensen_shannon_divergence"):
            if comparator.HasField(field):
                configured[feature.name] = getattr(comparator, field).threshold
    name = anomalies_pb2.DriftSkewInfo.Measurement.Type.Name
    out = []
    for info in anomalies.drift_skew_info:
        feature = ".".join(info.path.step)
        for m in getattr(info, f"{kind}_measurements"):
            threshold: float | None = m.threshold
            if configured.get(feature) == MEASURE_ONLY and m.threshold == MEASURE_ONLY:
                threshold = None
            out.append(Measurement(feature, kind, split, name(m.type), float(m.value), threshold))
    return out


def merge_anomalies(parts: list[anomalies_pb2.Anomalies]) -> anomalies_pb2.Anomalies:
    """One ``Anomalies`` proto from several (schema, skew, drift) of the same split."""
    from tensorflow_metadata.proto.v0 import anomalies_pb2

    merged = anomalies_pb2.Anomalies()
    if not parts:
        return merged
    merged.baseline.CopyFrom(parts[0].baseline)
    merged.anomaly_name_format = parts[0].anomaly_name_format
    for part in parts:
        for key, info in part.anomaly_info.items():
            if key in merged.anomaly_info:
                target = merged.anomaly_info[key]
                target.reason.extend(info.reason)
                target.description = f"{target.description} {info.description}".strip()
            else:
                merged.anomaly_info[key].CopyFrom(info)
        merged.dataset_anomaly_info.reason.extend(part.dataset_anomaly_info.reason)
        merged.drift_skew_info.extend(part.drift_skew_info)
    return merged


def write_anomalies(anomalies: anomalies_pb2.Anomalies, path: Path) -> None:
    """Write anomalies as a text proto."""
    from google.protobuf import text_format

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text_format.MessageToString(anomalies), encoding="utf-8")


# ---------------------------------------------------------------------------------------------
# Summaries


def feature_rows(
    stats: statistics_pb2.DatasetFeatureStatisticsList, split: str
) -> list[dict[str, Any]]:
    """One row per feature: type, count, missing %, unique, min/max/mean (where they apply)."""
    from tensorflow_metadata.proto.v0 import statistics_pb2

    rows = []
    if not stats.datasets:
        return rows
    dataset = stats.datasets[0]
    total = int(dataset.num_examples)
    for feature in dataset.features:
        kind = feature.WhichOneof("stats")
        row: dict[str, Any] = {
            "split": split,
            "feature": ".".join(feature.path.step) or feature.name,
            "type": statistics_pb2.FeatureNameStatistics.Type.Name(feature.type).lower(),
            "examples": total,
            "missing_pct": None,
            "unique": None,
            "min": None,
            "max": None,
            "mean": None,
            "note": "",
        }
        if kind == "num_stats":
            s = feature.num_stats
            common = s.common_stats
            row.update(min=s.min, max=s.max, mean=s.mean)
        elif kind == "string_stats":
            s = feature.string_stats
            common = s.common_stats
            row.update(unique=int(s.unique), mean=s.avg_length, note="mean = average length")
            if s.top_values and s.top_values[0].value == "__BYTES_VALUE__":
                row["note"] = "binary values"
        elif kind == "bytes_stats":
            s = feature.bytes_stats
            common = s.common_stats
            row.update(
                unique=int(s.unique) or None,
                min=s.min_num_bytes,
                max=s.max_num_bytes,
                mean=s.avg_num_bytes,
                note="sizes in bytes",
            )
        else:
            rows.append(row)
            continue
        if total:
            row["missing_pct"] = 100.0 * (total - common.num_non_missing) / total
        rows.append(row)
    return rows


def fail_on_matches(fail_on: list[str], problem: Problem) -> bool:
    """Whether ``problem`` belongs to a class in ``fail_on`` (all, schema/skew/drift, a type)."""
    for item in fail_on:
        item = item.strip()
        if item.lower() == "all" or item.lower() == problem.category:
            return True
        if item.upper() == problem.type:
            return True
    return False


def check_fail_on(fail_on: list[str]) -> str | None:
    """What is wrong with a ``fail_on`` list, or None if every entry is known."""
    from tensorflow_metadata.proto.v0 import anomalies_pb2

    types = set(anomalies_pb2.AnomalyInfo.Type.keys())
    for item in fail_on:
        low = item.strip().lower()
        if low in ("all", "none") or low in ANOMALY_CLASSES or item.strip().upper() in types:
            continue
        return (
            f"unknown anomaly class {item!r}: use all, none, schema, skew, drift or a TFDV "
            f"anomaly type such as ENUM_TYPE_UNEXPECTED_STRING_VALUES"
        )
    return None
