"""Turn pipeline-file values into component instances, checking every value against its type.

Besides types, building checks what components declare with ``param``: limits (``ge``, ``gt``,
``choices``, ...), data paths that must exist, and each component's own ``check()``; typed
inputs are collected so that the pipeline file can check them once every step is known.
"""

from __future__ import annotations

import dataclasses
import glob
import math
import operator
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from .components import ArtifactType, Component, Input, ParamError
from .errors import SpecError, closest  # closest: re-exported for spec, registry, plugins
from .yamlfile import Document, KeyPath, dotted

if typing.TYPE_CHECKING:
    from .registry import Registry

COMPONENT_KEY = "component"


@dataclass(frozen=True)
class InputRef:
    """One ``Input`` value met while building: where it stands, the step it names, and the
    artifact types its annotation accepts (none: any step)."""

    path: KeyPath
    step: str
    expects: tuple[type[ArtifactType], ...]


@dataclass
class BuildContext:
    """What building needs: the document (for line numbers), the registry and the step names.

    ``base_dir`` is the folder data paths resolve from (the pipeline file's); building appends
    every ``Input`` it meets to ``inputs``."""

    doc: Document
    registry: Registry
    step_names: tuple[str, ...] = ()
    base_dir: Path | None = None
    inputs: list[InputRef] = field(default_factory=list)


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
    """Instantiate dataclass ``cls`` from ``params``; unknown keys get a closest-name hint.

    Each given value is checked against its type and its declared limits and paths, then the
    instance's ``check()`` (if any) against the limits that join several parameters."""
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    hints = typing.get_type_hints(cls)
    label = f"component '{cls.name}'" if issubclass(cls, Component) else cls.__name__
    for key in params:
        if key not in fields:
            where = ctx.doc.where(path + (key,))
            reason = getattr(cls, "refused", {}).get(key)
            if reason:
                raise SpecError(f"{where}: {dotted(path + (key,))}: {reason}")
            raise SpecError(
                f"{where}: {dotted(path + (key,))}: unknown parameter '{key}' of {label}"
                f"{closest(key, fields)} (see 'pipeline describe {getattr(cls, 'name', '')}')"
            )
    kwargs = {}
    for name, f in fields.items():
        if name in params:
            value = _with_default_component(params[name], f)
            kwargs[name] = coerce(value, hints[name], path + (name,), ctx)
            check_limits(kwargs[name], f.metadata, path + (name,), ctx)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise SpecError(
                f"{ctx.doc.where(path)}: {dotted(path)}: missing required parameter '{name}' "
                f"of {label}"
            )
    instance = cls(**kwargs)
    for name in kwargs:
        if fields[name].metadata.get("path"):
            check_path(instance, fields[name], path, ctx)
    check = getattr(instance, "check", None)
    if callable(check):
        try:
            check()
        except ParamError as exc:
            key_path = path + tuple(exc.key.split(".")) if exc.key else path
            raise SpecError(f"{ctx.doc.where(key_path)}: {dotted(key_path)}: {exc}") from None
        except (ValueError, SpecError) as exc:
            raise SpecError(f"{ctx.doc.where(path)}: {dotted(path)}: {exc}") from None
    return instance


def check_limits(
    value: Any, metadata: typing.Mapping[str, Any], path: KeyPath, ctx: BuildContext
) -> None:
    """Raise ``SpecError`` at ``path`` when ``value`` breaks a limit declared with ``param``."""
    problem = limit_problem(value, metadata)
    if problem:
        raise SpecError(f"{ctx.doc.where(path)}: {dotted(path)}: {problem}, got {value!r}")


_BOUNDS = {"ge": operator.ge, "gt": operator.gt, "le": operator.le, "lt": operator.lt}


def limit_problem(value: Any, metadata: typing.Mapping[str, Any]) -> str | None:
    """What ``value`` breaks of the limits in a field's ``metadata``, or None."""
    choices = metadata.get("choices")
    min_items = metadata.get("min_items")
    if isinstance(value, list | tuple):
        if min_items is not None and len(value) < min_items:
            return f"needs at least {min_items} item{'s' if min_items != 1 else ''}"
        items = list(value)
    else:
        items = [value]
    for item in items:
        if choices is not None and item not in choices:
            return f"must be one of {', '.join(repr(c) for c in choices)}"
        if isinstance(item, bool) or not isinstance(item, int | float):
            continue
        if math.isnan(item):
            return "must be a number, not NaN"
        if any(key in metadata and not fits(item, metadata[key]) for key, fits in _BOUNDS.items()):
            return f"must be {describe_limits(metadata, numeric_only=True)}"
    return None


def describe_limits(metadata: typing.Mapping[str, Any], *, numeric_only: bool = False) -> str:
    """The limits of a field as ``pipeline describe`` shows them: ``>= 1``, ``in (0, 1]``..."""
    low = ("ge", ">=", "[") if "ge" in metadata else ("gt", ">", "(") if "gt" in metadata else None
    high = ("le", "<=", "]") if "le" in metadata else ("lt", "<", ")") if "lt" in metadata else None
    parts = []
    if low and high:
        parts.append(
            f"in {low[2]}{_number(metadata[low[0]])}, {_number(metadata[high[0]])}{high[2]}"
        )
    elif low or high:
        key, sign, _ = low or high  # type: ignore[misc]
        parts.append(f"{sign} {_number(metadata[key])}")
    if numeric_only:
        return " ".join(parts)
    if "choices" in metadata:
        parts.append("one of " + ", ".join(repr(c) for c in metadata["choices"]))
    if "min_items" in metadata:
        parts.append(f"at least {metadata['min_items']} item(s)")
    if "path" in metadata:
        under = f" under {metadata['under']}" if metadata.get("under") else ""
        what = {"glob": "an existing file or a glob pattern matching files"}.get(
            metadata["path"], f"an existing {metadata['path']}"
        )
        parts.append(what + under)
    return "; ".join(parts)


def _number(value: float) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def check_path(instance: Any, f: dataclasses.Field, path: KeyPath, ctx: BuildContext) -> None:
    """Raise ``SpecError`` when the data path in field ``f`` of ``instance`` does not exist.

    Relative paths resolve from the pipeline file's folder, or from the folder named by the
    parameter ``under`` (itself relative to the pipeline file)."""
    value = getattr(instance, f.name)
    if not isinstance(value, str) or not value or ctx.base_dir is None:
        return
    kind = f.metadata["path"]
    resolved = resolve_path(value, ctx.base_dir)
    under = f.metadata.get("under")
    if under and not Path(value).expanduser().is_absolute():
        resolved = resolve_path(value, resolve_path(str(getattr(instance, under)), ctx.base_dir))
    if kind == "folder":
        problem = None if resolved.is_dir() else "folder not found"
        if problem and resolved.is_file():
            problem = "expected a folder, found a file"
    elif kind == "file":
        problem = None if resolved.is_file() else "file not found"
        if problem and resolved.is_dir():
            problem = "expected a file, found a folder"
    elif glob.has_magic(str(resolved)):
        matched = any(Path(m).is_file() for m in glob.iglob(str(resolved)))
        problem = None if matched else "no file matches"
    else:
        problem = None if resolved.is_file() else "file not found"
    if problem:
        key_path = path + (f.name,)
        raise SpecError(f"{ctx.doc.where(key_path)}: {dotted(key_path)}: {problem}: {resolved}")


def resolve_path(value: str, base: Path) -> Path:
    """``value`` (``~`` expanded) as an absolute path; relative ones start from ``base``."""
    candidate = Path(value).expanduser()
    return candidate if candidate.is_absolute() else (base / candidate).resolve()


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
        if issubclass(annotation, Input):
            return _step_input(value, annotation, path, ctx)
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


def _step_input(value: Any, annotation: type[Input], path: KeyPath, ctx: BuildContext) -> Input:
    if not isinstance(value, str):
        raise _type_error(value, annotation, path, ctx)
    if ctx.step_names and value not in ctx.step_names:
        raise SpecError(
            f"{ctx.doc.where(path)}: {dotted(path)}: no step named '{value}' in this pipeline"
            f"{closest(value, ctx.step_names)}"
        )
    ctx.inputs.append(InputRef(path, value, annotation.expects))
    return Input(value)


def artifact_names(types: typing.Iterable[type[ArtifactType]]) -> str:
    """``examples`` or ``model or evaluation``: artifact types as users read them."""
    return " or ".join(t.name for t in types)


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
    if isinstance(annotation, type) and issubclass(annotation, Input):
        if annotation.expects:
            return f"name of a step writing {artifact_names(annotation.expects)}"
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
