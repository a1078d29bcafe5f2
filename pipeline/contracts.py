"""Checks that a registered class fits its kind's contract: name, docstring, and the methods
of the kind's base class with signatures the core can call."""

from __future__ import annotations

import inspect
import re
from collections.abc import Sequence
from typing import Any

from .kinds import KIND_BASES

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


def check_component_class(cls: Any, kind: str) -> str | None:
    """Return what is wrong with ``cls`` as a component of ``kind``, or None if nothing is.

    Beyond its name and docstring, a class must implement every method of its kind's contract
    and accept the arguments the contract passes."""
    base = KIND_BASES[kind]
    if not isinstance(cls, type) or not issubclass(cls, base):
        return f"{cls!r} is not a subclass of beamline.{base.__name__}"
    if not isinstance(cls.name, str) or not _NAME.match(cls.name):
        return f"{cls.__name__}.name must be lower_snake_case text, got {cls.name!r}"
    if not cls.help_text or cls.help_text == base.help_text:
        return f"{cls.__name__} ({cls.name}) needs a docstring: users read it in 'pipeline plugins'"
    missing = sorted(getattr(cls, "__abstractmethods__", ()))
    if missing:
        wanted = ", ".join(f"{m}{_signature(getattr(base, m, None))}" for m in missing)
        return (
            f"{cls.__name__} ({cls.name}) does not implement {wanted} "
            f"of the {kind.replace('_', ' ')} contract (beamline.{base.__name__})"
        )
    for method in contract_methods(base):
        problem = _signature_problem(getattr(base, method), getattr(cls, method))
        if problem:
            return f"{cls.__name__}.{method}{_signature(getattr(cls, method))}: {problem}"
    return None


def kind_of(cls: Any, kinds: Sequence[str]) -> str:
    """The kind among ``kinds`` whose base class ``cls`` subclasses (else the first one)."""
    for kind in kinds:
        if isinstance(cls, type) and issubclass(cls, KIND_BASES[kind]):
            return kind
    return kinds[0]


def contract_methods(base: type) -> list[str]:
    """The names of the abstract methods a kind's base class declares: its contract."""
    return sorted(
        name
        for klass in base.__mro__
        for name, value in vars(klass).items()
        if getattr(value, "__isabstractmethod__", False)
    )


def _signature(function: Any) -> str:
    if function is None:
        return "()"
    params = list(inspect.signature(function).parameters.values())[1:]  # without self
    return (
        "(" + ", ".join(p.name if p.kind != p.KEYWORD_ONLY else f"{p.name}=" for p in params) + ")"
    )


def _signature_problem(contract: Any, implementation: Any) -> str | None:
    """What keeps ``implementation`` from being called as the core calls ``contract``, or None.

    The core passes the contract's positional parameters by position (their names are free)
    and its keyword-only ones by name."""
    try:
        wanted = list(inspect.signature(contract).parameters.values())[1:]
        given = list(inspect.signature(implementation).parameters.values())[1:]
    except (TypeError, ValueError):
        return None
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    wanted_pos = [p for p in wanted if p.kind in positional]
    wanted_kw = {p.name for p in wanted if p.kind == p.KEYWORD_ONLY}
    given_pos = [p for p in given if p.kind in positional]
    varargs = any(p.kind == p.VAR_POSITIONAL for p in given)
    varkw = any(p.kind == p.VAR_KEYWORD for p in given)
    if len(given_pos) < len(wanted_pos) and not varargs:
        return (
            f"takes {len(given_pos)} argument(s); the contract passes {len(wanted_pos)}: "
            f"{_signature(contract)}"
        )
    for name in sorted(wanted_kw):
        accepts = any(p.name == name and p.kind != p.POSITIONAL_ONLY for p in given)
        if not accepts and not varkw:
            return f"takes no '{name}=' argument; the contract calls it with {_signature(contract)}"
    extra = [p.name for p in given_pos[len(wanted_pos) :] if p.default is p.empty]
    extra += [
        p.name
        for p in given
        if p.kind == p.KEYWORD_ONLY and p.default is p.empty and p.name not in wanted_kw
    ]
    if extra:
        return (
            f"requires {', '.join(extra)}, which the contract {_signature(contract)} never passes"
        )
    return None
