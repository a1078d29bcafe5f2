"""The hand-written ``tf.train.Example`` codec the core used before protobuf, for ``libraries``.

A frozen copy of ``beamline.examples.encode_example``/``decode_example`` as they were: the
protobuf wire format written and parsed in Python (one-byte varints from a table). Same
signatures, so a benchmark worker can swap them in; the output is byte-identical.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator
from typing import Any

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
