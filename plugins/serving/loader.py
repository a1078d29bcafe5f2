"""One loaded model version: its SavedModel, serving signature, inputs and metadata.

TensorFlow is imported only here, when a version loads. A batch is called through the
signature's traced function with its inputs and captured variables in their flat order
(``call_flat`` of the concrete function's inference function), which skips TensorFlow's
per-call matching of keyword arguments to the structured signature, its gradient-tape checks
and the repacking of the outputs (~0.1 ms a call, against 0.13 ms for the whole call of one
digit); a signature whose inputs are not plain named placeholders, or whose outputs are not a
flat mapping of tensors, is called the public way.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from beamline.errors import PipelineError
from beamline.model_folder import export_info, saved_model_dir

from .rest_codec import InputSpec

SIGNATURE = "serving_default"


class UnreadableInput(Exception):
    """The model could not read an example (an image that does not decode, say)."""

    def __init__(self, reason: str, row: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.row = row


@dataclass
class LoadedVersion:
    """A SavedModel version ready to predict (``predict`` is called from one thread)."""

    version: int
    path: Path
    signature_name: str
    inputs: dict[str, InputSpec]
    outputs: list[str]
    signature_def: dict[str, Any]
    info: dict[str, Any]
    loaded_at: float = field(default_factory=time.time)
    _loaded: Any = None  # keeps the SavedModel's variables alive
    _signature: Any = None
    _flat: bool = False  # the signature takes its inputs in ``inputs`` order, flat
    _call: Any = None  # the traced function: flat inputs + captures -> flat outputs
    _captures: tuple = ()
    _output_order: tuple[str, ...] = ()  # the output names in the order ``_call`` returns them

    def predict(self, columns: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run the signature on a batch; ``UnreadableInput`` when an example is unreadable."""
        import tensorflow as tf

        tensors = {
            name: tf.constant(columns[name], dtype=self._dtype(spec))
            for name, spec in self.inputs.items()
        }
        signature = self._signature
        try:
            if self._call is not None:
                flat = self._call(*tensors.values(), *self._captures)
                return {n: t.numpy() for n, t in zip(self._output_order, flat, strict=True)}
            if self._flat:
                out = signature._call_flat(list(tensors.values()), signature.captured_inputs)
            else:
                out = signature(**tensors)
        except tf.errors.InvalidArgumentError as exc:
            raise UnreadableInput(model_reason(exc.message)) from None
        return {name: out[name].numpy() for name in self.outputs}

    def predict_rows(self, columns: dict[str, np.ndarray], rows: int) -> dict[str, np.ndarray]:
        """``predict``, and when it fails, find the first example the model cannot read."""
        try:
            return self.predict(columns)
        except UnreadableInput as failed:
            if rows == 1:
                raise UnreadableInput(failed.reason, 0) from None
            for row in range(rows):
                try:
                    self.predict({n: a[row : row + 1] for n, a in columns.items()})
                except UnreadableInput as exc:
                    raise UnreadableInput(exc.reason, row) from None
            raise

    @staticmethod
    def _dtype(spec: InputSpec) -> Any:
        import tensorflow as tf

        return tf.string if spec.dtype == "string" else tf.as_dtype(spec.dtype)


def model_reason(message: str) -> str:
    """The model's own words in a TensorFlow error (it puts its wrapper text around them)."""
    noise = ("Graph execution error", "Detected at node", "<stack traces unavailable>", "[[")
    lines = [line.strip() for line in message.splitlines()]
    useful = [line for line in lines if line and not line.startswith(noise)]
    return (useful[-1] if useful else message.strip()).rstrip(".") or "unreadable input"


def load_version(path: Path, version: int, signature_name: str = SIGNATURE) -> LoadedVersion:
    """Load the SavedModel of ``path`` (an export or a published version)."""
    import tensorflow as tf

    folder = saved_model_dir(path)
    info = export_info(path)
    signature_name = info.get("signature", signature_name)
    loaded = tf.saved_model.load(str(folder))
    if signature_name not in loaded.signatures:
        raise PipelineError(
            f"{folder}: no signature {signature_name!r} (it has {', '.join(loaded.signatures)})"
        )
    signature = loaded.signatures[signature_name]
    _, named = signature.structured_input_signature
    modalities = info.get("inputs", {})
    inputs = {
        name: InputSpec(
            name,
            "string" if spec.dtype == tf.string else spec.dtype.name,
            tuple(spec.shape.as_list()[1:]),
            modalities.get(name, ""),
        )
        for name, spec in sorted(named.items())
    }
    placeholders = [t.name.split(":")[0] for t in signature.inputs[: len(named)]]
    flat = (
        hasattr(signature, "_call_flat")
        and placeholders == list(inputs)
        and all(not isinstance(spec, tf.RaggedTensorSpec) for spec in named.values())
    )
    traced, order = _traced_call(signature) if flat else (None, ())
    version_loaded = LoadedVersion(
        version=version,
        path=folder,
        signature_name=signature_name,
        inputs=inputs,
        outputs=sorted(signature.structured_outputs),
        signature_def=signature_defs(folder),
        info=info,
        _loaded=loaded,
        _signature=signature,
        _flat=flat,
        _call=traced,
        _captures=tuple(signature.captured_inputs) if traced else (),
        _output_order=order,
    )
    warm_up(version_loaded)
    return version_loaded


def _traced_call(signature: Any) -> tuple[Any, tuple[str, ...]]:
    """The signature's traced function (flat tensors in and out) and its output names in
    order, or ``(None, ())`` where this TensorFlow has no such path or the outputs nest."""
    import tensorflow as tf

    traced = getattr(signature, "_inference_function", None)
    outputs = signature.structured_outputs
    if not (hasattr(traced, "call_flat") and isinstance(outputs, dict)):
        return None, ()
    if not all(isinstance(spec, tf.TensorSpec | tf.Tensor) for spec in outputs.values()):
        return None, ()
    order = tuple(tf.nest.flatten({name: name for name in outputs}))
    if len(traced.function_type.flat_outputs) != len(order):
        return None, ()
    return traced.call_flat, order


def warm_up(model: LoadedVersion) -> bool:
    """Call the model once on a made-up example, so that the first request does not pay
    TensorFlow's first call of a loaded function (~1 s on 2 loaded cores, against ms after).
    Best effort: a model that refuses the example (a size it does not take) is left cold."""
    import tensorflow as tf

    columns = {}
    for name, spec in model.inputs.items():
        shape = [1, *(d or 1 for d in spec.shape)]
        if spec.dtype != "string":
            columns[name] = np.zeros(shape, dtype=spec.dtype)
            continue
        if spec.modality == "image":
            value = tf.io.encode_png(tf.zeros([8, 8, 1], tf.uint8)).numpy()
        elif spec.modality == "audio":
            value = _silent_wav()
        else:
            value = b"warm up"
        columns[name] = np.full(shape, value, dtype=object)
    try:
        model.predict(columns)
    except Exception:  # any refusal: the first real request warms it instead
        return False
    return True


def _silent_wav(rate: int = 16000, seconds: float = 0.25) -> bytes:
    import io
    import wave

    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(b"\x00\x00" * int(rate * seconds))
    return out.getvalue()


def configure_threads(threads: int) -> None:
    """Run TensorFlow's ops on ``threads`` threads (intra-op; one inter-op thread), before
    TensorFlow starts; 0 keeps TensorFlow's default (one of each per core). On a small machine
    the event loop needs a core of its own: TensorFlow's default pools spin on both cores and
    cost twice the CPU per call for a small model (0.42 against 0.20 ms for one digit)."""
    if threads <= 0:
        return
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:  # TensorFlow already started in this process: its settings stay
        pass


def default_threads() -> int:
    """TensorFlow threads for a server: the cores but one (the event loop's), at least 1."""
    import os

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, (cores or 1) - 1)


def signature_defs(folder: Path) -> dict[str, Any]:
    """The SavedModel's ``SignatureDefMap`` as TF Serving's metadata endpoint writes it."""
    from google.protobuf import json_format
    from tensorflow.core.protobuf import saved_model_pb2

    model = saved_model_pb2.SavedModel()
    model.ParseFromString((folder / "saved_model.pb").read_bytes())
    graph = json_format.MessageToDict(
        model.meta_graphs[0], preserving_proto_field_name=True, including_default_value_fields=True
    )
    return {"signature_def": graph.get("signature_def", {})}
