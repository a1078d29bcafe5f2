"""Warm start: begin a fit from the weights of an earlier model instead of a fresh initialisation.

A trainer's ``warm_start`` parameter is a mapping::

    warm_start:
      from: pretrain            # a step of this pipeline writing a model or an export, or a path:
                                # a trainer artifact (model.keras inside), a .keras file, an
                                # export (saved_model/ inside) or a SavedModel folder; a relative
                                # path is tried from the pipeline file's folder, then under
                                # runs/<pipeline>/ (``<run-id>/<step>``)
      freeze: [conv2d*]         # layer names or fnmatch patterns kept at the parent's weights
      strict: true              # every layer with weights must come from the parent, same shapes

Layers are matched by name with Keras' automatic counter removed (``conv2d_3`` is the second
``conv2d`` of its model when ``conv2d_2`` is the first): names depend on how many models a process
built before, not on the model. ``strict: false`` loads the layers whose weights match in shape
and keeps the others fresh (a new output layer for other classes, say); what was loaded,
skipped and frozen is returned for the trainer's record. A source given as a path enters the
step's fingerprint through ``source_digest`` (the bytes of its weight files), a step through its
input fingerprint: another parent model reruns the fit.
"""

from __future__ import annotations

import fnmatch
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from beamline import StepContext
from beamline.artifacts import Artifact
from beamline.errors import DataNotFound, PipelineError

#: The key of the ``from:`` entry in ``ctx.inputs`` when it names a step.
INPUT_KEY = "warm_start.from"
KEYS = ("from", "freeze", "strict")
KERAS_FILE = "model.keras"
SAVED_MODEL_PB = "saved_model.pb"
_COUNTER = re.compile(r"^(.*?)(?:_(\d+))?$")


@dataclass(frozen=True)
class WarmStart:
    """A parsed ``warm_start`` mapping: where the weights come from and what stays frozen."""

    source: str
    freeze: tuple[str, ...] = ()
    strict: bool = True
    from_step: bool = False


@dataclass
class Parent:
    """The weights of the parent model by variable path, and where they were read."""

    location: Path
    kind: str  # "keras" or "saved_model"
    weights: dict[str, Any] = field(default_factory=dict)


def parse(value: dict[str, Any], component: str = "keras_trainer") -> WarmStart | None:
    """The ``warm_start`` mapping as a ``WarmStart`` (None when empty); raises ``ParamError``
    naming the key that is wrong."""
    from beamline import Input, ParamError

    if not value:
        return None
    for key in value:
        if key not in KEYS:
            raise ParamError(
                f"warm_start.{key}",
                f"unknown key '{key}' of {component}'s warm_start (keys: {', '.join(KEYS)})",
            )
    source = value.get("from")
    if not isinstance(source, str) or not source:
        raise ParamError(
            "warm_start.from",
            "warm_start needs 'from': a step of this pipeline writing a model, or a path to a "
            "trained model or export",
        )
    freeze = value.get("freeze", [])
    if isinstance(freeze, str):
        freeze = [freeze]
    if not isinstance(freeze, list) or not all(isinstance(p, str) and p for p in freeze):
        raise ParamError("warm_start.freeze", "expected a list of layer names or patterns")
    strict = value.get("strict", True)
    if not isinstance(strict, bool):
        raise ParamError("warm_start.strict", f"expected true or false, got {strict!r}")
    return WarmStart(str(source), tuple(freeze), strict, isinstance(source, Input))


def locate(ctx: StepContext, spec: WarmStart) -> Path:
    """The folder or file the weights come from: the upstream step's artifact or the path."""
    if spec.from_step:
        artifact: Artifact = ctx.input(INPUT_KEY)
        return artifact.path
    written = Path(spec.source).expanduser()
    candidates = [ctx.resolve(written)]
    if not written.is_absolute():
        candidates.append(ctx.run.path.parent / written)  # <run-id>/<step> of this pipeline
    for candidate in candidates:
        if candidate.exists():
            return candidate
    raise DataNotFound(
        f"warm start model not found: {spec.source} (tried {', '.join(map(str, candidates))})",
        param="warm_start.from",
    )


def weight_source(location: Path) -> tuple[str, Path]:
    """``("keras", file)`` or ``("saved_model", folder)``: what holds the weights at
    ``location`` (a trainer artifact, a .keras file, an export or a SavedModel folder)."""
    if location.is_file() and location.suffix == ".keras":
        return "keras", location
    if (location / KERAS_FILE).is_file():
        return "keras", location / KERAS_FILE
    for folder in (location, location / "saved_model"):
        if (folder / SAVED_MODEL_PB).is_file():
            return "saved_model", folder
    raise PipelineError(
        f"warm_start: {location} holds no model: expected a trainer step's folder "
        f"({KERAS_FILE}), a .keras file, an export (saved_model/) or a SavedModel folder"
    )


def source_digest(location: Path) -> str:
    """A digest of the bytes of the weight files at ``location`` (for the step's fingerprint)."""
    kind, path = weight_source(location)
    files = [path] if kind == "keras" else sorted((path / "variables").glob("*"))
    digest = hashlib.sha256(kind.encode())
    for file in files:
        digest.update(f"\0{file.name}\0".encode())
        with file.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()[:32]


def read_parent(location: Path) -> Parent:
    """The parent model's weights (variable path -> numpy array) at ``location``."""
    kind, path = weight_source(location)
    weights: dict[str, Any] = {}
    if kind == "keras":
        import keras

        model = keras.saving.load_model(str(path), compile=False)
        weights = {w.path: w.numpy() for w in model.weights}
    else:
        import tensorflow as tf

        loaded = tf.saved_model.load(str(path))
        for variable in loaded.variables:
            name = variable.name.rpartition(":")[0] or variable.name
            if "seed_generator" not in name:  # random-generator state, not a weight
                weights[name] = variable.numpy()
    return Parent(location, kind, weights)


def apply(model: Any, parent: Parent, spec: WarmStart) -> dict[str, Any]:
    """Copy the parent's weights into ``model`` layer by layer and freeze the layers asked.

    Raises ``PipelineError`` naming the layer when ``strict`` and a layer is missing on either
    side or differs in shape. Returns what was done: loaded, skipped and frozen layers."""
    own = _by_layer({w.path: w for w in model.weights})
    theirs = _by_layer(parent.weights)
    loaded, skipped = [], []
    for key, (name, variables) in own.items():
        problem = _mismatch(key, name, variables, theirs.get(key), parent)
        if problem:
            if spec.strict:
                raise PipelineError(
                    f"warm_start: {problem}; use the parent's model settings, or "
                    "strict: false to load only the layers that match"
                )
            skipped.append({"layer": name, "reason": problem})
            continue
        _, values = theirs[key]
        for (_, variable), (_, value) in zip(variables, values, strict=True):
            variable.assign(value)
        loaded.append(name)
    unused = [theirs[k][0] for k in theirs if k not in own]
    if unused and spec.strict:
        raise PipelineError(
            f"warm_start: layer '{unused[0]}' of {parent.location} has no counterpart in this "
            f"model ({len(unused)} such layer(s)); use the parent's model settings, or strict: "
            "false"
        )
    frozen = freeze(model, spec.freeze)
    return {
        "from": spec.source,
        "location": str(parent.location),
        "format": parent.kind,
        "strict": spec.strict,
        "loaded_layers": loaded,
        "skipped_layers": skipped,
        "unused_parent_layers": unused,
        "frozen_layers": frozen,
    }


def freeze(model: Any, patterns: tuple[str, ...]) -> list[str]:
    """Set ``trainable = False`` on the layers whose names match a pattern; each pattern must
    match at least one layer."""
    frozen: list[str] = []
    names = [layer.name for layer in model.layers]
    for pattern in patterns:
        matched = [layer for layer in model.layers if fnmatch.fnmatchcase(layer.name, pattern)]
        if not matched:
            raise PipelineError(
                f"warm_start.freeze: '{pattern}' matches no layer of the model (layers: "
                f"{', '.join(names)})"
            )
        for layer in matched:
            layer.trainable = False
            if layer.name not in frozen:
                frozen.append(layer.name)
    return frozen


def _mismatch(
    key: str,
    name: str,
    variables: list[tuple[str, Any]],
    other: tuple[str, list[tuple[str, Any]]] | None,
    parent: Parent,
) -> str:
    """Why layer ``name`` cannot take the parent's weights ('' when it can)."""
    if other is None:
        return f"layer '{name}' has no counterpart in {parent.location}"
    other_name, values = other
    if len(values) != len(variables):
        return (
            f"layer '{name}' has {len(variables)} weights, its counterpart '{other_name}' in "
            f"{parent.location} has {len(values)}"
        )
    for (path, variable), (other_path, value) in zip(variables, values, strict=True):
        if [b for b, _ in _relative_order(path)] != [b for b, _ in _relative_order(other_path)]:
            return f"layer '{name}': {path} has no counterpart in {parent.location} ({other_path})"
        if tuple(variable.shape) != tuple(value.shape):
            return (
                f"layer '{name}': {path} has shape {tuple(variable.shape)} here but "
                f"{tuple(value.shape)} in {parent.location} ({other_path})"
            )
    return ""


def _by_layer(weights: dict[str, Any]) -> dict[str, tuple[str, list[tuple[str, Any]]]]:
    """Weights grouped by top-level layer, keyed ``base[rank]`` (``conv2d[1]``: the second layer
    named conv2d, whatever Keras' counter said), each layer's weights in a stable order."""
    layers: dict[str, list[tuple[str, Any]]] = {}
    for path, value in weights.items():
        layers.setdefault(path.split("/", 1)[0], []).append((path, value))
    by_base: dict[str, list[str]] = {}
    for name in layers:
        by_base.setdefault(_split(name)[0], []).append(name)
    keyed: dict[str, tuple[str, list[tuple[str, Any]]]] = {}
    for base, names in by_base.items():
        for rank, name in enumerate(sorted(names, key=lambda n: _split(n)[1])):
            ordered = sorted(layers[name], key=lambda item: _relative_order(item[0]))
            keyed[f"{base}[{rank}]"] = (name, ordered)
    return keyed


def _split(name: str) -> tuple[str, int]:
    """``conv2d_3`` -> ``("conv2d", 3)``; ``scores`` -> ``("scores", 0)``."""
    match = _COUNTER.match(name)
    assert match is not None  # the pattern matches every string
    return match.group(1), int(match.group(2) or 0)


def _relative_order(path: str) -> tuple[tuple[str, int], ...]:
    """A weight's place within its layer, by the path below the layer, counters as numbers."""
    return tuple(_split(part) for part in path.split("/")[1:])
