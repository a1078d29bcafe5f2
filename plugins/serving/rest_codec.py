"""TensorFlow Serving's REST predict format: request JSON to input arrays, outputs to JSON.

The rules are TF Serving's (https://www.tensorflow.org/tfx/serving/api_rest):

- row format ``{"instances": [...]}``: one element per example; with one input an element is
  the value itself, otherwise an object naming every input;
- columnar format ``{"inputs": ...}``: the batch of the one input, or an object naming every
  input with its batch;
- a string input takes a JSON string (its UTF-8 bytes) or binary data as ``{"b64": "..."}``;
- the answer is ``{"predictions": [...]}`` for rows (an object per example when the signature
  has several outputs) and ``{"outputs": ...}`` for columns; a string output whose name ends in
  ``_bytes`` (or that is not UTF-8) comes back as ``{"b64": "..."}``.

Every refusal is a ``BadRequest`` naming the field (``instances[3].image``) and the form
expected. JSON is read and written with orjson when it is installed (several times faster than
the standard library on these bodies); a body orjson refuses is read again by the standard
library, which either reads it (``NaN``) or says why it is not JSON, so the answers are the
same with or without it. This module imports neither TensorFlow nor the
web framework.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

try:
    import orjson
except ImportError:  # the standard library does the same, slower
    orjson = None

REQUEST_KEYS = ("signature_name", "instances", "inputs")
B64 = '{"b64": "<base64>"}'


class BadRequest(Exception):
    """A request the server refuses with HTTP 400 (or ``status``) and ``{"error": message}``."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass(frozen=True)
class InputSpec:
    """One input of the serving signature: dtype (``string`` or a numpy dtype name), the shape
    of one example (``None`` where any size goes) and the export's modality (``image``...)."""

    name: str
    dtype: str
    shape: tuple[int | None, ...] = ()
    modality: str = ""

    @property
    def expected(self) -> str:
        """The form a value of this input takes, for error messages."""
        if self.dtype == "string":
            if self.modality == "image":
                return f"an encoded image (PNG or JPEG) as {B64}"
            if self.modality == "audio":
                return f"WAV bytes as {B64}"
            return f"a string (binary data as {B64})"
        if not self.shape:
            return f"a number ({self.dtype})"
        dims = ", ".join("any" if d is None else str(d) for d in self.shape)
        return f"a list of {self.dtype} numbers of shape [{dims}]"


@dataclass
class DecodedRequest:
    """A request's input arrays (each with ``rows`` examples) and whether it used rows."""

    columns: dict[str, np.ndarray]
    rows: int
    row_format: bool
    signature_name: str = ""
    fields: list[str] = field(default_factory=list)  # the JSON path of each example

    def field_of(self, row: int, name: str) -> str:
        """The JSON path of input ``name`` of example ``row``, as a client wrote it."""
        if self.row_format:
            return f"instances[{row}]" + (f".{name}" if len(self.columns) > 1 else "")
        return f"inputs.{name}[{row}]" if len(self.columns) > 1 else f"inputs[{row}]"


def decode_request(body: bytes, specs: dict[str, InputSpec], signature: str) -> DecodedRequest:
    """Check and convert a predict request body for a signature with inputs ``specs``."""
    request = _parse(body)
    if not isinstance(request, dict):
        raise BadRequest(
            f"request body: a JSON {_kind(request)}; expected an object with "
            '"instances" (row format) or "inputs" (columnar format)'
        )
    unknown = sorted(set(request) - set(REQUEST_KEYS))
    if unknown:
        raise BadRequest(
            f"request key {unknown[0]!r}: not part of a predict request; expected "
            '"instances" (row format) or "inputs" (columnar format), and optionally '
            '"signature_name"'
        )
    name = request.get("signature_name", signature)
    if name != signature:
        raise BadRequest(
            f"signature_name: {name!r} is not a signature of this model; expected {signature!r}"
        )
    if ("instances" in request) == ("inputs" in request):
        raise BadRequest(
            'request: expected exactly one of "instances" (row format) or "inputs" (columnar '
            "format)" + (", not both" if "instances" in request else "")
        )
    if "instances" in request:
        return _rows(request["instances"], specs, signature)
    return _columns(request["inputs"], specs, signature)


def _parse(body: bytes) -> Any:
    """The JSON value of a request body (``BadRequest`` saying why it is not JSON)."""
    if orjson is not None:
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            pass  # the standard library reads what orjson does not, or says why
    try:
        return json.loads(body)
    except UnicodeDecodeError:
        raise BadRequest("request body: not UTF-8 text; expected a JSON object") from None
    except ValueError as exc:
        raise BadRequest(
            f"request body: not valid JSON ({exc}); expected an object such as "
            '{"instances": [...]} or {"inputs": ...}'
        ) from None


def dumps(value: Any) -> bytes:
    """``value`` as compact UTF-8 JSON."""
    if orjson is not None:
        try:
            return orjson.dumps(value)
        except orjson.JSONEncodeError:
            pass  # an integer past 64 bits, say: the standard library writes it
    text = json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return text.encode("utf-8")


def _rows(instances: Any, specs: dict[str, InputSpec], signature: str) -> DecodedRequest:
    if not isinstance(instances, list) or not instances:
        raise BadRequest(
            f"instances: a {_kind(instances)}; expected a non-empty list with one element per "
            "example"
        )
    single = len(specs) == 1
    values: dict[str, list[Any]] = {n: [] for n in specs}
    for i, instance in enumerate(instances):
        if single and not _named(instance):
            (only,) = specs
            values[only].append(instance)
            continue
        if not _named(instance):
            raise BadRequest(
                f"instances[{i}]: a {_kind(instance)}; expected an object with the inputs "
                f"{', '.join(specs)}"
            )
        _check_names(instance, specs, f"instances[{i}]")
        for n in specs:
            values[n].append(instance[n])
    columns = {
        n: _array(values[n], spec, lambda r, n=n: f"instances[{r}]" + ("" if single else f".{n}"))
        for n, spec in specs.items()
    }
    return DecodedRequest(columns, len(instances), True, signature)


def _columns(inputs: Any, specs: dict[str, InputSpec], signature: str) -> DecodedRequest:
    if _named(inputs):
        _check_names(inputs, specs, "inputs")
        named = inputs
    elif len(specs) == 1:
        named = {next(iter(specs)): inputs}
    else:
        raise BadRequest(
            f"inputs: a {_kind(inputs)}; expected an object with the inputs {', '.join(specs)}"
        )
    single = len(specs) == 1 and not _named(inputs)
    columns = {}
    rows = None
    for n, spec in specs.items():
        where = "inputs" if single else f"inputs.{n}"
        batch = named[n]
        if not isinstance(batch, list) or not batch:
            raise BadRequest(
                f"{where}: a {_kind(batch)}; expected a non-empty list (one element per "
                f"example), each {spec.expected}"
            )
        columns[n] = _array(batch, spec, lambda r, where=where: f"{where}[{r}]")
        if rows is not None and len(batch) != rows:
            raise BadRequest(
                f"{where}: {len(batch)} examples, but the other inputs have {rows}; expected "
                "the same number for every input"
            )
        rows = len(batch)
    return DecodedRequest(columns, rows or 0, False, signature)


def _named(value: Any) -> bool:
    return isinstance(value, dict) and set(value) != {"b64"}


def _check_names(given: dict[str, Any], specs: dict[str, InputSpec], where: str) -> None:
    unknown = sorted(set(given) - set(specs))
    missing = [n for n in specs if n not in given]
    if unknown:
        raise BadRequest(
            f"{where}.{unknown[0]}: not an input of this model; expected the inputs "
            f"{', '.join(specs)}"
        )
    if missing:
        raise BadRequest(
            f"{where}: no value for {', '.join(missing)}; expected "
            + "; ".join(f"{n}: {specs[n].expected}" for n in missing)
        )


def _array(values: list[Any], spec: InputSpec, where: Any) -> np.ndarray:
    """The examples of one input as an array (``object`` of bytes for strings)."""
    if spec.dtype == "string":
        return _strings(values, spec, where)
    try:
        array = np.asarray(values)
    except ValueError:
        raise BadRequest(
            f"input {spec.name!r}: examples of different shapes; expected each {spec.expected}"
        ) from None
    if array.dtype.kind not in "biuf":
        row = _first_not_numeric(values)
        raise BadRequest(f"{where(row)}: not a number; expected {spec.expected}")
    shape = array.shape[1:]
    if len(shape) != len(spec.shape) or any(
        want is not None and want != got for want, got in zip(spec.shape, shape, strict=False)
    ):
        got = "[" + ", ".join(str(d) for d in shape) + "]"
        raise BadRequest(f"{where(0)}: an example of shape {got}; expected {spec.expected}")
    return array.astype(spec.dtype, copy=False)


def _strings(values: list[Any], spec: InputSpec, where: Any) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    for i, value in enumerate(values):
        if spec.shape:
            out[i] = _nested_strings(value, spec, where(i), len(spec.shape))
            continue
        out[i] = _string(value, spec, where(i))
    if spec.shape:
        try:
            return np.array(out.tolist(), dtype=object)
        except ValueError:
            raise BadRequest(
                f"{where(0)}: examples of different shapes; expected {spec.expected}"
            ) from None
    return out


def _nested_strings(value: Any, spec: InputSpec, where: str, depth: int) -> Any:
    if depth == 0:
        return _string(value, spec, where)
    if not isinstance(value, list):
        raise BadRequest(f"{where}: a {_kind(value)}; expected a list of {spec.expected}")
    return [_nested_strings(v, spec, f"{where}[{i}]", depth - 1) for i, v in enumerate(value)]


def _string(value: Any, spec: InputSpec, where: str) -> bytes:
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, dict) and set(value) == {"b64"}:
        text = value["b64"]
        if not isinstance(text, str):
            raise BadRequest(f"{where}.b64: a {_kind(text)}; expected base64 text")
        try:
            return base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise BadRequest(f"{where}.b64: not valid base64 ({exc}); expected {B64}") from None
    raise BadRequest(f"{where}: a {_kind(value)}; expected {spec.expected}")


def _first_not_numeric(values: list[Any]) -> int:
    for i, value in enumerate(values):
        try:
            if np.asarray(value).dtype.kind not in "biuf":
                return i
        except ValueError:
            return i
    return 0


def _kind(value: Any) -> str:
    names = {dict: "object", list: "list", str: "string", bool: "boolean", type(None): "null"}
    return names.get(type(value), "number")


def encode_response(
    outputs: dict[str, np.ndarray], row_format: bool, start: int = 0, stop: int | None = None
) -> dict[str, Any]:
    """TF Serving's answer for examples ``start:stop`` of the signature's ``outputs``."""
    named = {n: _jsonable(n, a[start:stop]) for n, a in outputs.items()}
    if not row_format:
        return {"outputs": next(iter(named.values())) if len(named) == 1 else named}
    if len(named) == 1:
        return {"predictions": next(iter(named.values()))}
    rows = len(next(iter(named.values())))
    return {"predictions": [{n: named[n][i] for n in named} for i in range(rows)]}


def _jsonable(name: str, array: np.ndarray) -> list[Any]:
    if array.dtype.kind not in "OSU":
        return array.tolist()
    binary = name.endswith("_bytes")
    return [_text(v, binary) for v in array.tolist()]


def _text(value: Any, binary: bool) -> Any:
    if isinstance(value, list):
        return [_text(v, binary) for v in value]
    if isinstance(value, bytes):
        if not binary:
            try:
                return value.decode("utf-8")
            except UnicodeDecodeError:
                pass
        return {"b64": base64.b64encode(value).decode("ascii")}
    return value
