"""Which project modules a piece of code imports, found by parsing source: nothing is executed.

A step's fingerprint digests the source of every project module its component's code can reach,
so that an edit to any of them reruns the step and an edit elsewhere does not. The graph follows
module-level and function-level imports (``if TYPE_CHECKING:`` blocks excepted: they never run),
resolves relative imports, turns ``from pkg import name`` into the submodule ``pkg.name`` when
there is one, and follows a name that a module only re-exports (``from .components import
Source`` in a package's ``__init__``) to the module that defines it.

*Project* modules are those of the packages given as roots (the framework's, the built-in
plugins' and a component's own top-level package) and any module whose file lies outside the
interpreter's installation (a plugin module next to a pipeline file, and the helpers it imports).
Installed libraries are not followed: their versions enter the fingerprint instead.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import json
import os
import site
import sys
import sysconfig
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from .atomic import atomic_write

#: Top-level packages always followed: the framework and its built-in plugins.
PROJECT_PACKAGES = ("beamline", "beamline_plugins")


@dataclass(frozen=True)
class _Parsed:
    """What one module's source says about its imports, and a digest of that source."""

    digest: str
    modules: frozenset[str]  # ``import a.b`` and ``from a.b import *``: absolute module names
    names: frozenset[tuple[str, str]]  # ``from a.b import c``: (a.b, c), c a module or a name
    reexports: Mapping[str, tuple[str, str]]  # name -> (module, name) bound by a top-level import


class ImportGraph:
    """Project modules reachable from a set of modules, with a digest of each one's source.

    ``overrides`` maps a module name to source bytes read instead of its file (what a test uses to
    simulate an edit without touching the tree). Parses are cached by the source's digest, so a
    long-lived process still sees an edited file."""

    def __init__(self, overrides: Mapping[str, bytes] | None = None) -> None:
        self._overrides = dict(overrides or {})
        self._parsed: dict[tuple[str, str], _Parsed] = {}
        self._locations: dict[str, tuple[Path | None, bool]] = {}
        self._top_dirs: dict[str, list[Path] | None] = {}
        self._local: dict[str, bool] = {}

    def with_overrides(self, overrides: Mapping[str, bytes]) -> ImportGraph:
        """A graph reading ``overrides`` instead of those modules' files; it shares this one's
        caches (parses are keyed by content)."""
        graph = ImportGraph({**self._overrides, **overrides})
        graph._parsed, graph._locations = self._parsed, self._locations
        graph._top_dirs, graph._local = self._top_dirs, self._local
        return graph

    # -- queries -------------------------------------------------------------------------------

    def closure(self, modules: Iterable[str], roots: Iterable[str] = ()) -> dict[str, str]:
        """Every project module reachable from ``modules`` (included), with its source digest.

        ``roots`` are extra top-level packages to treat as project code."""
        project = set(PROJECT_PACKAGES) | set(roots)
        seen: dict[str, str] = {}
        memo: dict[str, _Parsed | None] = {}  # each file is read once per closure
        stack = [m for m in modules if self._is_project(m, project)]
        while stack:
            name = stack.pop()
            if name in seen:
                continue
            entry = self._entry(name, memo)
            if entry is None:
                continue
            seen[name] = entry.digest
            for imported in self._imports(entry, memo, project):
                if imported not in seen and self._is_project(imported, project):
                    stack.append(imported)
        return dict(sorted(seen.items()))

    def source(self, module: str) -> bytes | None:
        """The source of ``module`` (its override if one is given); None when it has none."""
        if module in self._overrides:
            return self._overrides[module]
        path, _ = self._locate(module)
        if path is None:
            return None
        try:
            return path.read_bytes()
        except OSError:
            return None

    def imports(self, module: str) -> frozenset[str]:
        """The modules ``module``'s code imports (resolved; project or not)."""
        memo: dict[str, _Parsed | None] = {}
        entry = self._entry(module, memo)
        return self._imports(entry, memo) if entry is not None else frozenset()

    def _imports(
        self, entry: _Parsed, memo: dict[str, _Parsed | None], project: set[str] | None = None
    ) -> frozenset[str]:
        """The modules ``entry`` imports; with ``project``, a ``from`` import of another package
        is left unresolved (it is not followed anyway)."""
        found = set(entry.modules)
        for base, name in entry.names:
            outside = project is not None and not self._is_project(base, project)
            found.add(base if outside else self._target(base, name, memo))
        return frozenset(found)

    # -- parsing -------------------------------------------------------------------------------

    def _entry(self, module: str, memo: dict[str, _Parsed | None]) -> _Parsed | None:
        """``module``'s parse and digest, or None when it has no source.

        The source is read and hashed once per closure (cheap); parsing it (the costly part) is
        cached by that hash, in memory and in the user's cache folder (``$XDG_CACHE_HOME`` or
        ``~/.cache``, ``beamline/imports/``): content-addressed, so it cannot go stale."""
        if module in memo:
            return memo[module]
        memo[module] = None
        source = self.source(module)
        if source is None:
            return None
        full = hashlib.sha256(source).hexdigest()
        key = (module, full)
        entry = self._parsed.get(key)
        if entry is None:
            stored = None if module in self._overrides else _stored_path(module, full)
            entry = _read_stored(stored, module, full[:16])
            if entry is None:
                entry = self._parse_source(module, source, full[:16])
                _store(stored, module, entry)
            self._parsed[key] = entry
        memo[module] = entry
        return entry

    def _parse_source(self, module: str, source: bytes, digest: str) -> _Parsed:
        try:
            tree = ast.parse(source)
        except SyntaxError:
            return _Parsed(digest, frozenset(), frozenset(), {})
        _, is_package = self._locate(module)
        package = module if is_package else module.rpartition(".")[0]
        found: set[str] = set()
        names: set[tuple[str, str]] = set()
        reexports: dict[str, tuple[str, str]] = {}
        for node, top_level in _import_nodes(tree):
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
                continue
            base = _absolute(node.module, node.level, package)
            if base is None:
                continue
            for alias in node.names:
                if alias.name == "*":
                    found.add(base)
                    continue
                names.add((base, alias.name))
                if top_level:
                    reexports[alias.asname or alias.name] = (base, alias.name)
        for name in _defined_names(tree):
            reexports.pop(name, None)  # rebound after the import: this module defines it
        return _Parsed(digest, frozenset(found), frozenset(names), reexports)

    def _target(self, base: str, name: str, memo: dict[str, _Parsed | None], depth: int = 0) -> str:
        """The module that ``from base import name`` depends on."""
        candidate = f"{base}.{name}"
        if self._locate(candidate)[0] is not None or candidate in self._overrides:
            return candidate
        entry = self._entry(base, memo)
        if entry is not None and depth < 20:
            bound = entry.reexports.get(name)
            if bound is not None:
                return self._target(*bound, memo, depth=depth + 1)
        return base

    # -- finding files -------------------------------------------------------------------------

    def _locate(self, module: str) -> tuple[Path | None, bool]:
        """``module``'s source file (None when it has none) and whether it is a package."""
        if module not in self._locations:
            self._locations[module] = self._find(module)
        return self._locations[module]

    def _find(self, module: str) -> tuple[Path | None, bool]:
        top, *rest = module.split(".")
        dirs = self._top_level_dirs(top)
        if not rest:
            return self._top_level_file(top), dirs is not None
        if not dirs:
            return None, False
        for part in rest[:-1]:
            dirs = [d / part for d in dirs if (d / part).is_dir()]
        for folder in dirs:
            if (folder / rest[-1] / "__init__.py").is_file():
                return folder / rest[-1] / "__init__.py", True
            if (folder / f"{rest[-1]}.py").is_file():
                return folder / f"{rest[-1]}.py", False
        for folder in dirs:
            if (folder / rest[-1]).is_dir():
                return None, True  # a namespace package: no source of its own
        return None, False

    def _spec(self, top: str) -> importlib.machinery.ModuleSpec | None:
        loaded = sys.modules.get(top)
        if loaded is not None and getattr(loaded, "__spec__", None) is not None:
            return loaded.__spec__
        try:  # a top-level name: the finders look at sys.path, nothing is imported
            return importlib.util.find_spec(top)
        except (ImportError, ValueError):
            return None

    def _top_level_dirs(self, top: str) -> list[Path] | None:
        if top not in self._top_dirs:
            spec = self._spec(top)
            locations = spec.submodule_search_locations if spec else None
            self._top_dirs[top] = [Path(p) for p in locations] if locations is not None else None
        return self._top_dirs[top]

    def _top_level_file(self, top: str) -> Path | None:
        spec = self._spec(top)
        origin = spec.origin if spec else None
        if origin and origin.endswith(".py") and Path(origin).is_file():
            return Path(origin)
        return None

    def _is_project(self, module: str, project: set[str]) -> bool:
        top = module.partition(".")[0]
        if top in project:
            return True
        if top not in self._local:
            self._local[top] = self._is_local(top)
        return self._local[top]

    def _is_local(self, top: str) -> bool:
        """Whether a top-level module's file lies outside the interpreter and its libraries."""
        if top in sys.builtin_module_names or top in sys.stdlib_module_names:
            return False
        spec = self._spec(top)
        if spec is None or not spec.origin or not Path(spec.origin).is_file():
            return False
        origin = Path(spec.origin).resolve()
        return not any(origin.is_relative_to(prefix) for prefix in _installed_prefixes())


_STORE_FORMAT = 1


def _stored_path(module: str, digest: str) -> Path | None:
    """Where the parse of ``module`` with source ``digest`` is kept across processes."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    if not os.path.isabs(base):
        return None
    name = hashlib.sha256(f"{_STORE_FORMAT}|{module}|{digest}".encode()).hexdigest()[:32]
    return Path(base) / "beamline" / "imports" / f"{name}.json"


def _read_stored(path: Path | None, module: str, digest: str) -> _Parsed | None:
    """The parse kept in ``path`` when it was made from this module's current source."""
    if path is None:
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data["format"] != _STORE_FORMAT or (data["module"], data["digest"]) != (
            module,
            digest,
        ):
            return None
        return _Parsed(
            digest,
            frozenset(data["modules"]),
            frozenset((base, name) for base, name in data["names"]),
            {name: (m, n) for name, (m, n) in data["reexports"].items()},
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _store(path: Path | None, module: str, entry: _Parsed) -> None:
    """Keep a parse for later processes; a folder we may not write to is skipped."""
    if path is None:
        return
    data = {
        "format": _STORE_FORMAT,
        "module": module,
        "digest": entry.digest,
        "modules": sorted(entry.modules),
        "names": sorted(entry.names),
        "reexports": dict(sorted(entry.reexports.items())),
    }
    try:
        atomic_write(path, json.dumps(data))
    except OSError:
        pass


@cache
def _installed_prefixes() -> list[Path]:
    """Folders of installed code: the interpreter's prefixes, the stdlib and site-packages."""
    paths = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    paths.update(sysconfig.get_paths().values())
    paths.update(site.getsitepackages() if hasattr(site, "getsitepackages") else ())
    paths.add(site.getusersitepackages())
    return [Path(p).resolve() for p in paths if p]


def _import_nodes(tree: ast.Module) -> Iterable[tuple[ast.Import | ast.ImportFrom, bool]]:
    """Every import statement that can run, with whether it is at the module's top level.

    Only statement lists are walked (imports are statements), which keeps this a small part of
    the parse's cost."""

    def walk(statements: list[ast.stmt], top_level: bool) -> Iterable:
        for node in statements:
            if isinstance(node, ast.Import | ast.ImportFrom):
                yield node, top_level
            elif isinstance(node, ast.If) and _is_type_checking(node.test):
                yield from walk(node.orelse, top_level)
            else:
                nested = top_level and isinstance(node, ast.If | ast.Try | ast.With)
                for block in _blocks(node):
                    yield from walk(block, nested)

    return walk(tree.body, True)


def _blocks(node: ast.stmt) -> Iterable[list[ast.stmt]]:
    """The statement lists inside a compound statement (bodies, branches, handlers, cases)."""
    for name in ("body", "orelse", "finalbody"):
        block = getattr(node, name, None)
        if block:
            yield block
    for handler in getattr(node, "handlers", ()):
        yield handler.body
    for case in getattr(node, "cases", ()):
        yield case.body


def _is_type_checking(test: ast.expr) -> bool:
    if isinstance(test, ast.Name):
        return test.id == "TYPE_CHECKING"
    return isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"


def _defined_names(tree: ast.Module) -> set[str]:
    """Names a module binds at its top level other than by importing them."""
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                names.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
    return names


def _absolute(module: str | None, level: int, package: str) -> str | None:
    """The absolute name of ``from <level dots><module> import ...`` inside ``package``."""
    if level == 0:
        return module
    parts = package.split(".") if package else []
    if level - 1 > len(parts) or (level - 1 == len(parts) and not module):
        return None
    base = parts[: len(parts) - (level - 1)]
    return ".".join([*base, module] if module else base) or None


#: The graph every fingerprint of this process uses (its parses are cached).
DEFAULT_GRAPH = ImportGraph()
