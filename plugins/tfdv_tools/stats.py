"""The TFDV helpers in one namespace: the validation step, its command and the streaming plugin
import this module (``from beamline_plugins.tfdv_tools import stats as S``).

Each job has its own module; this one only gathers their public names:

``statistics``       statistics with TFDV's in-memory path (records, files, batches, frames),
                     statistics protos, per-feature summary rows
``beam_statistics``  every split's statistics in one Beam pipeline
``schema``           schemas (read, write, seed from ``features.json``, infer) and comparators
``anomalies``        validation, problems, skew/drift measurements, ``fail_on``
``tfdv_loader``      importing TFDV quietly

Everything heavy (TensorFlow, TFDV, Beam) is imported inside the functions. Protos from
``tensorflow_metadata`` are cheap and used freely.
"""

from __future__ import annotations

from .anomalies import (
    ANOMALY_CLASSES,
    DATASET,
    Measurement,
    Problem,
    check_fail_on,
    fail_on_matches,
    measurements,
    merge_anomalies,
    problems,
    validate,
    write_anomalies,
)
from .beam_statistics import BEAM_BATCH_SIZE, keyed_batches, statistics_with_beam
from .schema import (
    BINARY_MODALITIES,
    MEASURE_ONLY,
    infer_schema,
    is_binary,
    is_categorical,
    load_schema,
    seed_schema,
    with_comparators,
    without_comparators,
    write_schema,
)
from .statistics import (
    READ_THREADS,
    feature_rows,
    load_statistics,
    num_examples,
    read_records,
    statistics_in_memory,
    statistics_of_batch,
    statistics_of_dataframe,
    statistics_of_files,
    statistics_streamed,
    stats_options,
    write_statistics,
)
from .tfdv_loader import load_tfdv

__all__ = [
    "ANOMALY_CLASSES",
    "BEAM_BATCH_SIZE",
    "BINARY_MODALITIES",
    "DATASET",
    "MEASURE_ONLY",
    "READ_THREADS",
    "Measurement",
    "Problem",
    "check_fail_on",
    "fail_on_matches",
    "feature_rows",
    "infer_schema",
    "is_binary",
    "is_categorical",
    "keyed_batches",
    "load_schema",
    "load_statistics",
    "load_tfdv",
    "measurements",
    "merge_anomalies",
    "num_examples",
    "problems",
    "read_records",
    "seed_schema",
    "statistics_in_memory",
    "statistics_of_batch",
    "statistics_of_dataframe",
    "statistics_of_files",
    "statistics_streamed",
    "statistics_with_beam",
    "stats_options",
    "validate",
    "with_comparators",
    "without_comparators",
    "write_anomalies",
    "write_schema",
    "write_statistics",
]
