"""Step fingerprints: a digest of what a step's output depends on, kept as named parts.

A step's fingerprint hashes its component's name, its parameters, the source of every project
module its component's code imports (derived by ``beamline.import_graph``, never listed by hand),
the versions of the libraries that shape its output, a digest of the data files it reads and its
inputs' fingerprints. The parts are written to the step's ``meta.json`` so that ``pipeline run
--explain`` can say which of them changed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import json
import platform
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

from .components import Component
from .import_graph import DEFAULT_GRAPH, PROJECT_PACKAGES, ImportGraph
from .steps import engine_of

FINGERPRINT_VERSION = 2

#: Distributions whose version enters every step's fingerprint: they shape what steps write.
LIBRARIES = (
    "tensorflow",
    "keras",
    "apache-beam",
    "tensorflow-data-validation",
    "tfx-bsl",
    "numpy",
    "pyarrow",
)


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


@dataclass(frozen=True)
class Fingerprint:
    """A step's fingerprint and the parts it is made of (what ``meta.json`` records)."""

    component: str
    params: Any
    modules: dict[str, str]
    libraries: dict[str, str]
    data: str | None
    inputs: dict[str, str] = field(default_factory=dict)

    @property
    def value(self) -> str:
        """The fingerprint: equal values mean the step's output can be reused."""
        payload = {"version": FINGERPRINT_VERSION, **self.parts()}
        payload["params"] = self.params
        text = json.dumps(payload, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:32]

    def parts(self) -> dict[str, Any]:
        """The parts as written to ``meta.json`` (parameters as a digest: meta has them whole)."""
        return {
            "component": self.component,
            "params": _digest(self.params),
            "modules": dict(self.modules),
            "libraries": dict(self.libraries),
            "data": self.data,
            "inputs": dict(sorted(self.inputs.items())),
        }


def component_modules(component: Component) -> tuple[list[str], set[str]]:
    """The modules defining ``component``'s classes (MRO, nested components included) and their
    top-level packages."""
    modules: set[str] = set()
    stack = [component]
    while stack:
        item = stack.pop()
        for cls in type(item).__mro__:
            if cls is not object:
                modules.add(cls.__module__)
        engine = engine_of(item)  # a source's or stream's step runs in its kind's engine
        if engine:
            modules.add(engine)
        stack.extend(item.children())
    return sorted(modules), {m.partition(".")[0] for m in modules}


def code_modules(component: Component, graph: ImportGraph | None = None) -> dict[str, str]:
    """Every project module ``component``'s code imports, transitively, with its source digest.

    A class whose module has no source file (one defined in a notebook or a script run as
    ``__main__``) enters as ``module:QualName`` with the digest of its own source."""
    modules, tops = component_modules(component)
    found = (graph or DEFAULT_GRAPH).closure(modules, roots=tops)
    for cls in _classes(component):
        if cls.__module__ not in found and cls.__module__.partition(".")[0] in tops:
            try:
                source = inspect.getsource(cls)
            except (OSError, TypeError):
                continue
            digest = hashlib.sha256(source.encode()).hexdigest()[:16]
            found[f"{cls.__module__}:{cls.__qualname__}"] = digest
    return dict(sorted(found.items()))


def _classes(component: Component) -> list[type]:
    classes: list[type] = []
    stack = [component]
    while stack:
        item = stack.pop()
        classes.extend(c for c in type(item).__mro__ if c is not object and c not in classes)
        stack.extend(item.children())
    return classes


def library_versions(component: Component) -> dict[str, str]:
    """Versions of the libraries that shape the step's output, and of the distribution of a
    third-party plugin that defines one of its classes. Read from metadata: nothing is imported."""
    versions = {name: _version(name) for name in LIBRARIES}
    versions["python"] = platform.python_version()
    _, tops = component_modules(component)
    for top in sorted(tops - set(PROJECT_PACKAGES)):
        for dist in _distributions().get(top, ()):
            versions[dist] = _version(dist)
    return versions


def step_fingerprint(
    component: Component,
    input_fingerprints: Mapping[str, str],
    data_digest: str | None,
    graph: ImportGraph | None = None,
) -> Fingerprint:
    """The fingerprint of a step with ``component``, its inputs' fingerprints and its data digest.

    ``graph`` reads module sources (a test passes one with edited sources)."""
    return Fingerprint(
        component=component.name,
        params=plain(component),
        modules=code_modules(component, graph),
        libraries=library_versions(component),
        data=data_digest,
        inputs=dict(input_fingerprints),
    )


def _digest(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@cache
def _version(distribution: str) -> str:
    """A distribution's version from the ``Version:`` header of its metadata; parsing the whole
    file as ``metadata.version`` does costs ~10 ms for TensorFlow's."""
    try:
        dist = metadata.distribution(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"
    for line in (dist.read_text("METADATA") or dist.read_text("PKG-INFO") or "").splitlines():
        if line.startswith("Version:"):
            return line.partition(":")[2].strip()
        if not line:  # the headers end at the first empty line
            break
    return dist.version


@cache
def _distributions() -> Mapping[str, list[str]]:
    return metadata.packages_distributions()


def files_digest(paths: list[Path], root: Path | None = None) -> str:
    """A cheap digest of files (relative path, size, modification time); for data fingerprints."""
    digest = hashlib.sha256()
    for path in sorted(paths):
        stat = path.stat()
        name = str(path.relative_to(root)) if root else str(path)
        digest.update(f"{name}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()
