"""Turn pipeline-file values into component instances, checking every value against its type."""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from dataclasses import dataclass
from typing import Any, Literal

from .components import Component, Input
from .errors import SpecError
from .yamlfile import Document, KeyPath, dotted

if typing.TYPE_CHECKING:
    from .registry import Registry

COMPONENT_KEY = "component"


@dataclass
class BuildContext:
    """What building needs: the document (for line numbers), the registry and the step names."""

    doc: Document
    registry: Registry
    step_names: tuple[str, ...] = ()


def closest(word: str, choices: typing.Iterable[str]) -> str:
    """Return ``"; did you mean 'x'?"`` for the closest of ``choices``, or an empty string."""
    match = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"; did you mean '{match[0]}'?" if match else ""


def build_component(kind: str | None, value: Any, path: KeyPath, ctx: BuildContext) -> Component:
    """Build a component of ``kind`` (any step kind if None) from a name or a mapping.

    A mapping names its component under ``component:``; its other keys are parameters."""
    where = ctx.doc.where(path)
    if isinstance(value, str):
        name, params, params_path = value, {}, path
    elif isinstance(value, dict):
        if COMPONENT_KEY not in value:
            raise SpecError(
                f"{where}: {dotted(path)}: missing '{COMPONENT_KEY}:' naming a component"
            )
        name = value[COMPONENT_KEY]
        params = {k: v for k, v in value.items() if k != COMPONENT_KEY}
        params_path = path
        if not isinstance(name, str):
            raise SpecError(f"{where}: {dotted(path)}.component: expected a component name")
    else:
        raise SpecError(
            f"{where}: {dotted(path)}: expected a component name or a mapping with "
            f"'{COMPONENT_KEY}:', got {_describe(value)}"
        )
    name_path = path + (COMPONENT_KEY,) if isinstance(value, dict) else path
    where_name = f"{ctx.doc.where(name_path)}: {dotted(name_path)}"
    cls = ctx.registry.find(name, kind, where=where_name)
    return build_params(cls, params, params_path, ctx)


def build_params(cls: type, params: dict[str, Any], path: KeyPath, ctx: BuildContext) -> Any:
    """Instantiate dataclass ``cls`` from ``params``; unknown keys get a closest-name hint."""
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    hints = typing.get_type_hints(cls)
    label = f"component '{cls.name}'" if issubclass(cls, Component) else cls.__name__
    for key in params:
        if key not in fields:
            where = ctx.doc.where(path + (key,))
            raise SpecError(
                f"{where}: {dotted(path + (key,))}: unknown parameter '{key}' of {label}"
                f"{closest(key, fields)} (see 'pipeline describe {getattr(cls, 'name', '')}')"
            )
    kwargs = {}
    for name, f in fields.items():
        if name in params:
            value = _with_default_component(params[name], f)
            kwargs[name] = coerce(value, hints[name], path + (name,), ctx)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise SpecError(
                f"{ctx.doc.where(path)}: {dotted(path)}: missing required parameter '{name}' "
                f"of {label}"
            )
    return cls(**kwargs)


def _with_default_component(value: Any, f: dataclasses.Field) -> Any:
    """A mapping of parameters without ``component:`` keeps the field's default component."""
    default = f.default if f.default is not dataclasses.MISSING else None
    if default is None and f.default_factory is not dataclasses.MISSING:
        default = f.default_factory()
    if isinstance(value, dict) and COMPONENT_KEY not in value and isinstance(default, Component):
        return {COMPONENT_KEY: default.name, **value}
    return value


def coerce(value: Any, annotation: Any, path: KeyPath, ctx: BuildContext) -> Any:
    """Check ``value`` against ``annotation`` and convert it (nested components, dataclasses)."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if annotation is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for option in (a for a in args if a is not type(None)):
            try:
                return coerce(value, option, path, ctx)
            except SpecError as exc:
                errors.append(exc)
        raise errors[-1] if len(errors) == 1 else _type_error(value, annotation, path, ctx)
    if origin is Literal:
        if value in args:
            return value
        hint = closest(str(value), [str(a) for a in args])
        choices = ", ".join(repr(a) for a in args)
        raise SpecError(
            f"{ctx.doc.where(path)}: {dotted(path)}: expected one of {choices}, got {value!r}{hint}"
        )
    if origin in (list, tuple) or annotation in (list, tuple):
        if not isinstance(value, list):
            raise _type_error(value, annotation, path, ctx)
        item_type = args[0] if args else Any
        items = [coerce(v, item_type, path + (i,), ctx) for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict or annotation is dict:
        if not isinstance(value, dict):
            raise _type_error(value, annotation, path, ctx)
        value_type = args[1] if len(args) == 2 else Any
        return {k: coerce(v, value_type, path + (k,), ctx) for k, v in value.items()}
    if isinstance(annotation, type):
        if issubclass(annotation, Component):
            kind = annotation.kind or None
            return build_component(kind, value, path, ctx)
        if dataclasses.is_dataclass(annotation):
            if not isinstance(value, dict):
                raise _type_error(value, annotation, path, ctx)
            return build_params(annotation, value, path, ctx)
        if annotation is Input:
            return _step_input(value, path, ctx)
        if annotation is bool:
            if isinstance(value, bool):
                return value
        elif annotation is float:
            if isinstance(value, int | float) and not isinstance(value, bool):
                return float(value)
        elif annotation is int:
            if isinstance(value, int) and not isinstance(value, bool):
                return value
        elif annotation is str:
            if isinstance(value, str):
                return value
        elif isinstance(value, annotation):
            return value
        raise _type_error(value, annotation, path, ctx)
    return value


def _step_input(value: Any, path: KeyPath, ctx: BuildContext) -> Input:
    if not isinstance(value, str):
        raise _type_error(value, Input, path, ctx)
    if ctx.step_names and value not in ctx.step_names:
        raise SpecError(
            f"{ctx.doc.where(path)}: {dotted(path)}: no step named '{value}' in this pipeline"
            f"{closest(value, ctx.step_names)}"
        )
    return Input(value)


def type_name(annotation: Any) -> str:
    """A short, readable name of a parameter type, as ``pipeline describe`` shows it."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        return " | ".join(type_name(a) for a in args)
    if origin is Literal:
        return " | ".join(repr(a) for a in args)
    if origin in (list, tuple):
        return f"list of {type_name(args[0])}" if args else "list"
    if origin is dict:
        return f"mapping of {type_name(args[1])}" if len(args) == 2 else "mapping"
    if annotation is type(None):
        return "null"
    if annotation is Input:
        return "step name"
    if isinstance(annotation, type) and issubclass(annotation, Component):
        return f"{annotation.kind.replace('_', ' ')} component" if annotation.kind else "component"
    names = {int: "integer", float: "number", str: "text", bool: "true/false"}
    return names.get(annotation, getattr(annotation, "__name__", str(annotation)))


def _describe(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "nothing (null)"
    return f"{value!r} ({type_name(type(value))})"


def _type_error(value: Any, annotation: Any, path: KeyPath, ctx: BuildContext) -> SpecError:
    return SpecError(
        f"{ctx.doc.where(path)}: {dotted(path)}: expected {type_name(annotation)}, "
        f"got {_describe(value)}"
    )
