"""Step fingerprints: a digest of a component's name and code, its parameters and its inputs."""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import json
import sys
from functools import cache
from pathlib import Path
from typing import Any

from .components import Component

FINGERPRINT_VERSION = 1


def plain(value: Any) -> Any:
    """Parameters as JSON-ready values; a nested component becomes ``{component: name, ...}``."""
    if isinstance(value, Component):
        out = {"component": value.name}
        out.update({f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)})
        return out
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, Path):
        return str(value)
    return value


def code_digest(component: Component) -> str:
    """A digest of the source files that define ``component`` and the components nested in it.

    Extra modules a class depends on are named in its ``code_modules`` class attribute."""
    modules: set[str] = set()
    stack = [component]
    while stack:
        item = stack.pop()
        for cls in type(item).__mro__:
            if cls is object:
                continue
            modules.add(cls.__module__)
            modules.update(getattr(cls, "code_modules", ()))
        stack.extend(item.children())
    digest = hashlib.sha256()
    for module in sorted(modules):
        digest.update(module.encode())
        digest.update(_module_digest(module).encode())
    return digest.hexdigest()


@cache
def _module_digest(module_name: str) -> str:
    """Digest of a module's source file, found without importing it."""
    module = sys.modules.get(module_name)
    origin = getattr(module, "__file__", None) if module else None
    if origin is None:
        try:
            spec = importlib.util.find_spec(module_name)
        except (ImportError, ValueError):
            spec = None
        origin = spec.origin if spec else None
    if not origin or not Path(origin).is_file():
        return "no-source"
    return hashlib.sha256(Path(origin).read_bytes()).hexdigest()


def step_fingerprint(
    component: Component, input_fingerprints: dict[str, str], data_digest: str | None
) -> str:
    """The fingerprint of a step: equal fingerprints mean the step's output can be reused."""
    payload = {
        "version": FINGERPRINT_VERSION,
        "component": component.name,
        "code": code_digest(component),
        "params": plain(component),
        "inputs": dict(sorted(input_fingerprints.items())),
        "data": data_digest,
    }
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def files_digest(paths: list[Path], root: Path | None = None) -> str:
    """A cheap digest of files (relative path, size, modification time); for data fingerprints."""
    digest = hashlib.sha256()
    for path in sorted(paths):
        stat = path.stat()
        name = str(path.relative_to(root)) if root else str(path)
        digest.update(f"{name}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()
