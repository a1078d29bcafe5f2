"""Schemas: read, write, seed from ``features.json``, infer, and set skew/drift comparators."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .tfdv_loader import load_tfdv

if TYPE_CHECKING:
    from tensorflow_metadata.proto.v0 import schema_pb2, statistics_pb2


#: A comparator threshold that never fires: L-infinity and Jensen-Shannon are at most 1.
MEASURE_ONLY = 1.0


#: Modalities whose bytes are binary blobs: statistics count their sizes, not their values.
BINARY_MODALITIES = ("image", "audio")


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
