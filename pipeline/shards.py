"""What goes into a shard: a record encoded as ``tf.train.Example``, its shard, shard names.

A record goes to shard ``int(content_hash[:16], 16) % shards`` of its split; with ``shards`` 0
a split gets one shard per ``TARGET_SHARD_BYTES`` of records. Batch and streaming ingest share
these, so their shards follow one rule.
"""

from __future__ import annotations

import math
from typing import Any

from .examples import encode_example, wire_entry, wire_example, wire_scalar
from .feature_stats import label_text
from .records import visible

#: Uncompressed bytes per shard when ``shards`` is 0.
TARGET_SHARD_BYTES = 64 * 1024 * 1024
SHARD_SUFFIX = ".tfrecord.gz"


def _convert(value: Any, dtype: str) -> Any:
    if dtype == "bytes":
        if isinstance(value, bytes | str):
            return value
        return label_text(value).encode("utf-8")
    if dtype == "float":
        return float(value)
    return int(value)


def encode_record(record: dict[str, Any], schema: dict[str, Any]) -> bytes:
    """Serialize a record's visible features as a ``tf.train.Example`` with ``schema``'s dtypes
    (``{"features": {name: {"dtype": ...}}}``)."""
    specs = schema["features"]
    entries = []
    for name in sorted(record):  # plain values of their column's type: written directly
        value = record[name]
        if value is None or name.startswith("__"):
            continue
        dtype = specs[name]["dtype"]
        kind = type(value)
        entry = wire_scalar(name, dtype, value) if kind is not list else None
        if entry is None:
            entry = wire_entry(name, dtype, value if kind is list else [value])
        if entry is None:
            break
        entries.append(entry)
    else:
        return wire_example(entries)
    features = {}
    for name, value in visible(record).items():
        dtype = schema["features"][name]["dtype"]
        values = list(value) if isinstance(value, list | tuple) else [value]
        features[name] = (dtype, [_convert(v, dtype) for v in values])
    return encode_example(features)


def shard_count(count: int, nbytes: int, shards: int = 0) -> int:
    """Shards for ``count`` records of ``nbytes``: ``shards`` when positive, else by size."""
    if shards > 0:
        return shards
    return max(1, min(count, math.ceil(nbytes / TARGET_SHARD_BYTES)))


def shard_plan(
    sizes: dict[str, list[int]], names: list[str], shards: int, skip_empty: bool = False
) -> dict[str, dict[str, int]]:
    """``{split: {"count": records, "shards": shards}}`` from ``{split: [records, bytes]}``."""
    plan = {}
    for name in names:
        count, nbytes = sizes.get(name, [0, 0])
        if skip_empty and count == 0:
            continue
        plan[name] = {"count": count, "shards": shard_count(count, nbytes, shards)}
    return plan


def shard_of(digest: str, shards: int) -> int:
    """The shard of a record with content hash ``digest`` among ``shards``."""
    return int(digest[:16], 16) % shards


def shard_name(shard: int, shards: int, suffix: str) -> str:
    """``part-NNNNN-of-MMMMM`` + ``suffix``."""
    return f"part-{shard:05d}-of-{shards:05d}{suffix}"
