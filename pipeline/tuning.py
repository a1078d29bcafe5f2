"""Tune steps and the steps that take their parameters, independent of any search library.

A tuner step (``beamline.Tuner``) names a ``target`` step and a search ``space`` over the
target's parameters, dotted through nested components (``learning_rate``, ``model.filters``)::

    tune:
      component: optuna_tuner
      target: train
      space:
        learning_rate: {log_uniform: [1.0e-4, 1.0e-2]}
        model.filters: {choice: [[16, 32], [32, 64]]}
        model.dropout: {uniform: [0, 0.5]}
        batch_size: {int: [16, 64]}
    train:
      component: keras_trainer
      params_from: tune          # the best trial's values join these parameters
      ...

When the file loads, ``link_tuned_steps`` checks every range against the parameter it names
(an unknown key, a range of the wrong type or outside the parameter's limits is an error at its
line), gives the tuner its target's component (``Tuner.trial``), makes the tune step read the
target's inputs (as ``target.<input>``), and makes a step with ``params_from`` read the tune
step. When that step runs (or is planned), ``tuned_step`` applies the values of the tune step's
``best.json``: they are the step's parameters in its fingerprint and ``meta.json`` (``tuned``).
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .artifacts import Artifact, read_json, write_json_atomic
from .components import Component, Input, Tuner
from .errors import PipelineError, SpecError, closest
from .params import BuildContext, check_limits, coerce, limit_problem, type_name
from .yamlfile import Document, KeyPath, dotted

if TYPE_CHECKING:
    from .spec import Step

#: The step-level key naming the tune step whose best values a step takes.
PARAMS_FROM = "params_from"
#: The file of a tuner's artifact that holds the best trial's values.
BEST_FILE = "best.json"
#: The range kinds of a search space entry.
RANGES = ("uniform", "log_uniform", "int", "log_int", "choice")


@dataclass(frozen=True)
class Dimension:
    """One searched parameter: its dotted key, its range kind and bounds (or choices)."""

    key: str
    kind: str
    low: float = 0.0
    high: float = 0.0
    choices: tuple[Any, ...] = ()

    @property
    def is_log(self) -> bool:
        """Whether values are drawn on a log scale."""
        return self.kind.startswith("log_")


def parse_dimension(key: str, entry: Any) -> Dimension:
    """The ``Dimension`` of one space entry; ``ValueError`` says what is wrong with its form."""
    forms = (
        "{uniform: [low, high]}, {log_uniform: ...}, {int: ...}, {log_int: ...} or {choice: [...]}"
    )
    if not isinstance(entry, dict) or len(entry) != 1 or next(iter(entry)) not in RANGES:
        given = next(iter(entry)) if isinstance(entry, dict) and len(entry) == 1 else None
        hint = closest(str(given), RANGES) if given is not None else ""
        raise ValueError(f"expected a range {forms}, got {json.dumps(entry, default=str)}{hint}")
    ((kind, value),) = entry.items()
    if kind == "choice":
        if not isinstance(value, list) or len(value) < 2:
            raise ValueError("choice: expected a list of at least 2 values")
        return Dimension(key, kind, choices=tuple(value))
    numbers = isinstance(value, list) and len(value) == 2
    if not numbers or any(isinstance(v, bool) or not isinstance(v, int | float) for v in value):
        raise ValueError(f"{kind}: expected [low, high] (two numbers), got {value!r}")
    low, high = value
    if kind in ("int", "log_int") and not all(isinstance(v, int) for v in value):
        raise ValueError(f"{kind}: expected two integers, got {value!r}")
    if not low < high:
        raise ValueError(f"{kind}: low must be below high, got [{low}, {high}]")
    if kind.startswith("log_") and low <= 0:
        raise ValueError(f"{kind}: a log scale needs low > 0, got {low}")
    if kind.endswith("uniform"):
        return Dimension(key, kind, float(low), float(high))
    return Dimension(key, kind, low, high)


def entries(
    values: Mapping[str, Any],
    target: Component | None = None,
    *,
    ranges: bool = True,
    prefix: str = "",
    at: KeyPath = (),
) -> list[tuple[str, KeyPath, Any]]:
    """``(dotted key, key path, entry)`` of each entry of a space (``ranges``) or fixed values.

    Keys are dotted (``model.filters``) or nested (``model: {filters: ...}``, which ``--set
    steps.tune.space.model.filters=...`` writes). A mapping is nested when it names a nested
    component's parameters (known with ``target``), or, in a space without ``target`` (one
    checked when its file loaded), when it is no range."""
    out: list[tuple[str, KeyPath, Any]] = []
    for key, entry in values.items():
        name, path = f"{prefix}{key}", (*at, key)
        if _is_nested(entry, target, name, ranges):
            out.extend(entries(entry, target, ranges=ranges, prefix=f"{name}.", at=path))
        else:
            out.append((name, path, entry))
    return out


def _is_nested(entry: Any, target: Component | None, key: str, ranges: bool) -> bool:
    if not isinstance(entry, dict) or not entry or (ranges and set(entry) & set(RANGES)):
        return False
    if target is None:
        return ranges
    try:
        owner, f, _ = resolve_param(target, key)
    except ValueError:
        return False
    value = getattr(owner, f.name)
    return dataclasses.is_dataclass(value) and not isinstance(value, type)


def dimensions(space: Mapping[str, Any]) -> list[Dimension]:
    """The dimensions of a search space already checked when its file loaded."""
    return [parse_dimension(key, entry) for key, _, entry in entries(space)]


def fixed_values(fixed: Mapping[str, Any], target: Component) -> dict[str, Any]:
    """A tuner's ``fixed`` values by dotted key."""
    return {key: value for key, _, value in entries(fixed, target, ranges=False)}


def resolve_param(component: Component, key: str) -> tuple[Any, dataclasses.Field, Any]:
    """The object holding dotted parameter ``key`` of ``component``, its field and its type.

    ``ValueError`` names the part that is not a parameter, with the closest name."""
    owner: Any = component
    parts = key.split(".")
    for depth, part in enumerate(parts):
        fields = {f.name: f for f in dataclasses.fields(owner) if f.init}
        label = type(owner).__name__
        if isinstance(owner, Component):
            label = f"component '{owner.name}'"
        if part not in fields:
            where = ".".join(parts[:depth]) or "the target"
            raise ValueError(
                f"'{part}' is not a parameter of {label} ({where}){closest(part, fields)}"
            )
        if depth == len(parts) - 1:
            return owner, fields[part], typing.get_type_hints(type(owner))[part]
        value = getattr(owner, part)
        if not (dataclasses.is_dataclass(value) and not isinstance(value, type)):
            raise ValueError(f"'{'.'.join(parts[: depth + 1])}' has no parameters of its own")
        owner = value
    raise ValueError("empty key")  # unreachable: split gives at least one part


def _searchable(component: Component, key: str) -> tuple[dataclasses.Field, Any]:
    owner, f, hint = resolve_param(component, key)
    if isinstance(getattr(owner, f.name), Component) or (
        isinstance(hint, type) and issubclass(hint, Component)
    ):
        raise ValueError(
            f"'{key}' is a component: search its parameters ({key}.<parameter>), not the component"
        )
    if isinstance(hint, type) and issubclass(hint, Input):
        raise ValueError(f"'{key}' names an input step, which a search cannot change")
    return f, hint


def _numeric(hint: Any) -> type | None:
    """``int`` or ``float`` when parameter type ``hint`` is that number (optional or not)."""
    union = typing.get_origin(hint) in (typing.Union, types.UnionType)
    options = [a for a in typing.get_args(hint) if a is not type(None)] if union else [hint]
    if len(options) == 1 and options[0] in (int, float):
        return options[0]  # type: ignore[no-any-return]
    return None


def check_space(tuner: Tuner, target: Component, path: KeyPath, ctx: BuildContext) -> None:
    """Check every entry of ``tuner.space`` and ``tuner.fixed`` against ``target``'s parameters.

    Errors name the entry's file and line: an unknown parameter (with the closest name), a range
    that does not fit the parameter's type (``uniform`` over an integer), a bound or choice that
    breaks the parameter's limits."""
    for key, at_key, entry in entries(tuner.space, target):
        where = path + ("space", *at_key)
        try:
            f, hint = _searchable(target, key)
            dim = parse_dimension(key, entry)
        except ValueError as exc:
            raise SpecError(f"{ctx.doc.where(where)}: {dotted(where)}: {exc}") from None
        if dim.kind == "choice":
            for index, option in enumerate(dim.choices):
                at = where + ("choice", index)
                coerced = coerce(option, hint, at, ctx)
                check_limits(coerced, f.metadata, at, ctx)
            continue
        number = _numeric(hint)
        wanted = float if dim.kind.endswith("uniform") else int
        if number is None or (number is int and wanted is float):
            other = "int or log_int" if number is int else "choice"
            raise SpecError(
                f"{ctx.doc.where(where)}: {dotted(where)}: {dim.kind} draws "
                f"{type_name(wanted)}s, but '{key}' is {type_name(hint)} (use {other})"
            )
        for bound, at in ((dim.low, 0), (dim.high, 1)):
            problem = limit_problem(bound, f.metadata)
            if problem:
                place = where + (dim.kind, at)
                raise SpecError(
                    f"{ctx.doc.where(place)}: {dotted(place)}: '{key}' {problem}, got {bound!r}"
                )
    for key, at_key, value in entries(tuner.fixed, target, ranges=False):
        where = path + ("fixed", *at_key)
        try:
            f, hint = _searchable(target, key)
        except ValueError as exc:
            raise SpecError(f"{ctx.doc.where(where)}: {dotted(where)}: {exc}") from None
        check_limits(coerce(value, hint, where, ctx), f.metadata, where, ctx)


def take_params_from(value: Any, path: KeyPath, ctx: BuildContext) -> tuple[Any, str]:
    """A step's mapping without its ``params_from:`` key, and the step that key names."""
    if not isinstance(value, dict) or PARAMS_FROM not in value:
        return value, ""
    source = value[PARAMS_FROM]
    where = path + (PARAMS_FROM,)
    if not isinstance(source, str) or source not in ctx.step_names:
        raise SpecError(
            f"{ctx.doc.where(where)}: {dotted(where)}: expected the name of a tune step of this "
            f"pipeline, got {source!r}{closest(str(source), ctx.step_names)}"
        )
    return {k: v for k, v in value.items() if k != PARAMS_FROM}, source


def link_tuned_steps(steps: list[Step], ctx: BuildContext) -> None:
    """Check and wire tune steps and the steps taking their values (see the module docstring)."""
    by_name = {s.name: s for s in steps}
    for step in steps:
        tuner = step.component
        if not isinstance(tuner, Tuner):
            continue
        path: KeyPath = ("steps", step.name)
        target = by_name.get(tuner.target)
        if target is None or target is step or isinstance(target.component, Tuner):
            where = path + ("target",)
            others = [s.name for s in steps if not isinstance(s.component, Tuner)]
            raise SpecError(
                f"{ctx.doc.where(where)}: {dotted(where)}: expected the step whose parameters "
                f"to search, got {tuner.target!r}{closest(tuner.target, others)}"
            )
        check_space(tuner, target.component, path, ctx)
        tuner.trial = target.component
        for param, upstream in target.inputs.items():
            if param != PARAMS_FROM:
                step.inputs[f"target.{param}"] = upstream
    for step in steps:
        if not step.params_from:
            continue
        source = by_name[step.params_from].component
        if not isinstance(source, Tuner) or source.target != step.name:
            where = ("steps", step.name, PARAMS_FROM)
            what = (
                f"searches step '{source.target}'"
                if isinstance(source, Tuner)
                else f"is a {source.kind.replace('_', ' ')} step"
            )
            raise SpecError(
                f"{ctx.doc.where(where)}: {dotted(where)}: step '{step.params_from}' {what}; "
                f"params_from names a tune step whose target is '{step.name}'"
            )
        step.inputs[PARAMS_FROM] = step.params_from


def apply_values(component: Component, values: Mapping[str, Any]) -> Component:
    """A copy of ``component`` with dotted parameters set to ``values`` (types coerced, limits
    and each changed component's ``check()`` applied); ``SpecError`` when a value does not fit."""
    ctx = BuildContext(doc=Document(data=None, source="tuned values"), registry=None)  # type: ignore[arg-type]
    out = component
    for key, value in values.items():
        out = _replaced(out, key.split("."), value, ctx, (key,))
    return out


def _replaced(owner: Any, parts: list[str], value: Any, ctx: BuildContext, path: KeyPath) -> Any:
    name = parts[0]
    if len(parts) == 1:
        f = next(f for f in dataclasses.fields(owner) if f.name == name)
        new = coerce(value, typing.get_type_hints(type(owner))[name], path, ctx)
        check_limits(new, f.metadata, path, ctx)
    else:
        new = _replaced(getattr(owner, name), parts[1:], value, ctx, path)
    copy = dataclasses.replace(owner, **{name: new})
    check = getattr(copy, "check", None)
    if callable(check):
        try:
            check()
        except ValueError as exc:
            raise SpecError(f"{dotted(path)}: {exc}") from None
    return copy


def write_best(output_dir: Path, values: Mapping[str, Any], **facts: Any) -> None:
    """Write a tuner's ``best.json``: ``{"params": values, **facts}`` (trial, metric, value)."""
    write_json_atomic(output_dir / BEST_FILE, {"params": dict(values), **facts})


def read_best(artifact: Artifact) -> dict[str, Any]:
    """The ``best.json`` of a tune step's artifact."""
    path = artifact.file(BEST_FILE)
    if not path.is_file():
        raise PipelineError(f"{artifact.path}: a tune step's artifact without {BEST_FILE}")
    best = read_json(path)
    if not isinstance(best.get("params"), dict):
        raise PipelineError(f"{path}: expected {{'params': {{parameter: value}}, ...}}")
    return best


def tuned_step(step: Step, artifact: Artifact | None) -> Step:
    """``step`` with the best values of its ``params_from`` step's ``artifact`` applied (and
    recorded in ``Step.tuned``); ``step`` itself when it takes none or ``artifact`` is None."""
    if not step.params_from or artifact is None:
        return step
    best = read_best(artifact)
    component = apply_values(step.component, best["params"])
    tuned = {"from": step.params_from, **{k: v for k, v in best.items() if k != "params"}}
    tuned["params"] = best["params"]
    return dataclasses.replace(step, component=component, tuned=tuned)


def planned_tuned_step(
    step: Step, fingerprints: Mapping[str, str], lookup: Callable[[str], Artifact | None]
) -> Step:
    """``tuned_step`` as the planner sees it: the tune step's artifact with its planned
    fingerprint (``lookup``), when one exists; else the step as the file gives it (its input
    fingerprint then tells that the tune step runs first)."""
    if not step.params_from or step.params_from not in fingerprints:
        return step
    return tuned_step(step, lookup(fingerprints[step.params_from]))


def is_finite_number(value: Any) -> bool:
    """Whether ``value`` is a real, finite number (an objective value a search can use)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


__all__ = [
    "BEST_FILE",
    "PARAMS_FROM",
    "RANGES",
    "Dimension",
    "apply_values",
    "check_space",
    "dimensions",
    "link_tuned_steps",
    "parse_dimension",
    "planned_tuned_step",
    "read_best",
    "resolve_param",
    "take_params_from",
    "tuned_step",
    "write_best",
]
