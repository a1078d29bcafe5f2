"""The core's modules import each other without a circle (``if TYPE_CHECKING:`` imports aside)."""

from __future__ import annotations

import ast
from pathlib import Path

import beamline
import beamline_plugins

CORE = Path(beamline.__file__).parent


def _imports(path: Path, modules: set[str]) -> set[str]:
    """Core modules ``path`` imports at run time, at module level or inside functions."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                for other in child.orelse:
                    visit(other)
                continue
            if isinstance(child, ast.ImportFrom):
                if child.level == 1 or (child.module or "").startswith("beamline"):
                    parts = (child.module or "").split(".")
                    name = parts[-1] if child.level == 1 else (parts[1] if len(parts) > 1 else "")
                    found.update([name] if name else [a.name for a in child.names])
            elif isinstance(child, ast.Import):
                found.update(a.name.split(".")[1] for a in child.names if "." in a.name)
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    return found & modules - {path.stem}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def walk(module: str) -> list[str] | None:
        state[module] = 1
        stack.append(module)
        for target in sorted(graph[module]):
            if state.get(target) == 1:
                return stack[stack.index(target) :] + [target]
            if target not in state and (found := walk(target)):
                return found
        state[module] = 2
        stack.pop()
        return None

    for module in sorted(graph):
        if module not in state and (found := walk(module)):
            return found
    return None


def test_no_import_circle_among_the_core_modules() -> None:
    paths = {p.stem: p for p in CORE.glob("*.py")}
    graph = {name: _imports(path, set(paths)) for name, path in paths.items()}
    assert graph["components"] & {"ingest", "ingest_engine", "stream_engine"} == set()
    assert _cycle(graph) is None, " -> ".join(_cycle(graph) or [])


def test_the_cycle_finder_finds_a_circle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


PLUGINS = Path(beamline_plugins.__file__).parent
# shared code the plugins import on purpose
LIBRARIES = {"training", "tfdv_tools", "sequences", "attributions"}


def _project_imports(path: Path) -> list[tuple[str, list[str]]]:
    """``(absolute module, imported names)`` for each import of the project in ``path``."""
    package = ".".join(("beamline_plugins", *path.relative_to(PLUGINS).parent.parts))
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1]
            module = node.module or ""
            if node.level:
                module = ".".join([*base, *([module] if module else [])])
            found.append((module, [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            found.extend((a.name, []) for a in node.names)
    return [(m, names) for m, names in found if m.split(".")[0] in {"beamline", "beamline_plugins"}]


def test_plugins_import_only_the_core_their_own_package_and_the_libraries() -> None:
    from beamline_plugins import BUILTIN_PLUGINS

    assert LIBRARIES.isdisjoint(m.rsplit(".", 1)[-1] for m in BUILTIN_PLUGINS.values())
    problems = []
    for path in sorted(PLUGINS.rglob("*.py")):
        owner = path.relative_to(PLUGINS).parts[0] if path.parent != PLUGINS else ""
        for module, names in _project_imports(path):
            parts = module.split(".")
            private = [n for n in names if n.startswith("_") and n != "__version__"]
            if any(p.startswith("_") for p in parts) or private:
                problems.append(f"{path.name}: private {module} {private}")
            if parts[0] != "beamline_plugins" or len(parts) < 2 or parts[1] == owner:
                continue
            if parts[1] not in LIBRARIES:
                problems.append(f"{path.relative_to(PLUGINS)} imports {module}")
    assert problems == []
