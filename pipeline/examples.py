"""The examples artifact: the contract between ingest and everything downstream.

Layout of an ingest step's folder::

    examples/<split>/part-NNNNN-of-MMMMM.tfrecord.gz   GZIP TFRecords of tf.train.Example
    rejected/part-NNNNN-of-MMMMM.jsonl                  one JSON object per rejected record
    features.json                                       the feature spec (below)
    assets/...                                          what transforms' analyzers computed on
                                                        the train split (a vocabulary, ...)
    meta.json                                           written by the core (counts, timings)

Shards are deterministic: the same data and parameters give byte-identical files on every Beam
runner. A record goes to shard ``int(content_hash[:16], 16) % shards`` of its split, and a shard
holds its examples sorted by content hash (the sha256 of the record's visible features). Every
shard of a split exists, possibly empty. Each example holds one ``tf.train.Feature`` per visible
feature of its record (a missing or null value: no entry), with the dtype ``features.json`` gives.

``features.json``::

    {
      "version": 1,
      "compression": "GZIP",
      "features": {
        NAME: {
          "dtype": "bytes" | "int64" | "float",      # its tf.train.Feature list, in every example
          "modality": "image" | "text" | "audio" | "label" | "numeric" | "categorical" | "id"
                      | "binary",                    # declared by the components, else inferred
          "length": int | null,    # values per example; null when it varies (VarLen)
          "present": int,          # examples that hold this feature
          ...details...            # modality details, e.g. for an image:
                                   # "format": "png" | "jpeg", "height", "width", "channels"
                                   # (int when equal in every example, else null with
                                   # "height_range": [min, max]), "mode": "L" | "RGB"
        }
      },
      "label": NAME | null,        # the feature with modality "label"
      "classes": [text] | null,    # distinct label values as text, sorted (numerically when all
                                   # are numbers); computed in Beam; null for a float label
      "splits": {SPLIT: count},    # examples written per split (train, eval, test with share > 0)
      "shards": {SPLIT: count},    # shard files per split
      "count": int,                # examples written over all splits
      "warnings": [text]           # things a user should know (an empty class folder, ...)
    }

A rejected record is ``{"source": file or "file.csv:row N", "stage": stage label, "reason": why}``.

Records, as sources and transforms pass them along, are dicts of feature name to ``bytes``,
``str``, ``int``, ``float``, ``bool``, ``None`` (missing) or a list of those. Keys that start with
``__`` are hidden: never written. ``__source__`` (``SOURCE_KEY``) says where the record came from;
``__meta__`` (``META_KEY``) maps a feature to a dict of details (scalars) summarised into that
feature's entry of ``features.json`` (an image stage records format, height, width, channels).

Components may describe their features with an optional ``feature_info`` method:
``Source.feature_info(ctx) -> {"features": {NAME: {"modality": ..., ...}}, "label": NAME | None,
"warnings": [...]}`` and ``Transform.feature_info(ctx, info) -> info`` (returns the updated
description). A source may also define ``location(ctx) -> str`` (the path it reads) for messages.

This module also holds a small, dependency-free codec for ``tf.train.Example``
(``encode_example``, ``decode_example``) and, with the TFRecord files of ``beamline.tfrecord``
(``write_tfrecords``, ``read_tfrecords``, re-exported here), ``iter_examples``, so that Beam
workers and tests need not import TensorFlow. Its output parses with ``tf.io.parse_example`` and
``tf.data.TFRecordDataset(..., compression_type="GZIP")``.
"""

from __future__ import annotations

import glob
import json
import struct
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from .artifacts import Artifact
from .tfrecord import crc32c as crc32c  # re-exported: the TFRecord files of the artifact
from .tfrecord import read_tfrecords as read_tfrecords
from .tfrecord import write_tfrecords as write_tfrecords

EXAMPLES_DIR = "examples"
ASSETS_DIR = "assets"
REJECTED_DIR = "rejected"
FEATURES_FILE = "features.json"
REJECTED = "rejected"
MAIN = "main"
SOURCE_KEY = "__source__"
META_KEY = "__meta__"


def rejected(source: str, stage: str, reason: str) -> dict[str, str]:
    """A rejected-record entry: where the record came from, which stage rejected it, and why."""
    return {"source": str(source), "stage": stage, "reason": reason}


def feature_spec(artifact: Artifact | str | Path) -> dict[str, Any]:
    """The ``features.json`` of an examples artifact."""
    path = artifact.path if isinstance(artifact, Artifact) else Path(artifact)
    return json.loads((path / FEATURES_FILE).read_text(encoding="utf-8"))


def splits(artifact: Artifact | str | Path) -> list[str]:
    """The split names present in an examples artifact."""
    return list(feature_spec(artifact).get("splits", {}))


def example_files(artifact: Artifact | str | Path, split: str) -> list[str]:
    """The TFRecord shard files of one split, sorted."""
    path = artifact.path if isinstance(artifact, Artifact) else Path(artifact)
    files = sorted(glob.glob(str(path / EXAMPLES_DIR / split / "*.tfrecord*")))
    if not files:
        available = ", ".join(splits(path)) if (path / FEATURES_FILE).exists() else "none"
        raise FileNotFoundError(f"{path}: no examples for split '{split}' (splits: {available})")
    return files


def rejected_records(artifact: Artifact | str | Path) -> list[dict[str, str]]:
    """Every rejected record of an examples artifact."""
    path = artifact.path if isinstance(artifact, Artifact) else Path(artifact)
    out = []
    for file in sorted((path / REJECTED_DIR).glob("*.jsonl")):
        with file.open(encoding="utf-8") as handle:
            out.extend(json.loads(line) for line in handle if line.strip())
    return out


# --- tf.train.Example codec (protobuf wire format, written by hand) -------------------------------
#
# Example  { Features features = 1; }            Features { map<string, Feature> feature = 1; }
# Feature  { oneof { BytesList bytes_list = 1; FloatList float_list = 2;
#                     Int64List int64_list = 3; } }
# BytesList { repeated bytes value = 1; }  FloatList { repeated float value = 1 [packed]; }
# Int64List { repeated int64 value = 1 [packed]; }

DTYPES = ("bytes", "float", "int64")
_FIELD_OF_DTYPE = {"bytes": 1, "float": 2, "int64": 3}
_DTYPE_OF_FIELD = {number: dtype for dtype, number in _FIELD_OF_DTYPE.items()}


#: One-byte varints (0..127): field keys, short lengths and small integers, the common case.
_SMALL_VARINTS = [bytes((value,)) for value in range(0x80)]


def _varint(value: int) -> bytes:
    if 0 <= value < 0x80:
        return _SMALL_VARINTS[value]
    value &= (1 << 64) - 1  # negative int64 values take ten bytes, as protobuf writes them
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited field (wire type 2)."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _feature_bytes(dtype: str, values: Iterable[Any]) -> bytes:
    if dtype == "bytes":
        items = [v.encode("utf-8") if isinstance(v, str) else bytes(v) for v in values]
        inner = b"".join(_field(1, item) for item in items)
    elif dtype == "float":
        floats = [float(v) for v in values]
        inner = _field(1, struct.pack(f"<{len(floats)}f", *floats)) if floats else b""
    elif dtype == "int64":
        ints = [int(v) for v in values]
        inner = _field(1, b"".join(_varint(v) for v in ints)) if ints else b""
    else:
        raise ValueError(f"unknown feature dtype {dtype!r} (expected one of {', '.join(DTYPES)})")
    return _field(_FIELD_OF_DTYPE[dtype], inner)


def encode_example(features: dict[str, tuple[str, list[Any]]]) -> bytes:
    """Serialize ``{name: (dtype, values)}`` as a ``tf.train.Example``, keys in sorted order.

    ``dtype`` is ``bytes`` (values: bytes or str), ``float`` or ``int64``. The output is
    deterministic: equal inputs give equal bytes."""
    entries = b"".join(
        _field(1, _field(1, name.encode("utf-8")) + _field(2, _feature_bytes(*features[name])))
        for name in sorted(features)
    )
    return _field(1, entries)


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data):
            raise ValueError("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def _fields(data: bytes) -> Iterator[tuple[int, int, Any]]:
    """Yield ``(field number, wire type, value)``; value is an int or a bytes payload."""
    pos = 0
    while pos < len(data):
        key, pos = _read_varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _read_varint(data, pos)
        elif wire == 2:
            size, pos = _read_varint(data, pos)
            if pos + size > len(data):
                raise ValueError("truncated field")
            value, pos = data[pos : pos + size], pos + size
        elif wire == 5:
            value, pos = data[pos : pos + 4], pos + 4
        elif wire == 1:
            value, pos = data[pos : pos + 8], pos + 8
        else:
            raise ValueError(f"unsupported wire type {wire}")
        yield number, wire, value


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _decode_feature(data: bytes) -> tuple[str, list[Any]]:
    dtype, values = "bytes", []
    for number, _, payload in _fields(data):
        if number not in _DTYPE_OF_FIELD:
            continue
        dtype, values = _DTYPE_OF_FIELD[number], []
        for _, wire, item in _fields(payload):
            if dtype == "bytes":
                values.append(bytes(item))
            elif dtype == "float":  # packed (wire type 2) or one float (wire type 5)
                values.extend(struct.unpack(f"<{len(item) // 4}f", item))
            elif wire == 2:
                pos = 0
                while pos < len(item):
                    value, pos = _read_varint(item, pos)
                    values.append(_signed(value))
            else:
                values.append(_signed(item))
    return dtype, values


def decode_example(data: bytes) -> dict[str, tuple[str, list[Any]]]:
    """Parse a serialized ``tf.train.Example`` into ``{name: (dtype, values)}``.

    Raises ``ValueError`` when ``data`` is not a valid Example."""
    out: dict[str, tuple[str, list[Any]]] = {}
    for number, wire, features in _fields(data):
        if number != 1 or wire != 2:
            continue
        for entry_number, _, entry in _fields(features):
            if entry_number != 1:
                continue
            name, feature = "", b""
            for part, _, value in _fields(entry):
                if part == 1:
                    name = bytes(value).decode("utf-8")
                elif part == 2:
                    feature = bytes(value)
            out[name] = _decode_feature(feature)
    return out


def iter_examples(artifact: Artifact | str | Path, split: str) -> Iterator[dict[str, list[Any]]]:
    """Yield the examples of one split as ``{name: values}``, shard by shard, without TensorFlow."""
    for file in example_files(artifact, split):
        for data in read_tfrecords(file):
            yield {name: values for name, (_, values) in decode_example(data).items()}
