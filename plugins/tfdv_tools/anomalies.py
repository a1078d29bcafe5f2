"""Validation against a schema and what it finds: problems, skew/drift measurements, ``fail_on``."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .schema import MEASURE_ONLY
from .tfdv_loader import load_tfdv

if TYPE_CHECKING:
    from tensorflow_metadata.proto.v0 import anomalies_pb2, schema_pb2, statistics_pb2


#: Anomaly classes of ``fail_on`` besides TFDV's anomaly type names.
ANOMALY_CLASSES = ("schema", "skew", "drift")


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
