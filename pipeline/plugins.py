"""Plugin discovery and loading: built-ins, entry points, ``--plugin`` modules, pipeline files.

Every source of plugins goes through the same pluggy hooks. A plugin that fails to import, or
whose hook implementations do not match their specs, is reported by name and the others load.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import sys
import traceback
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pluggy

from . import hookspecs
from .components import KIND_HOOKS, Component, kind_of
from .errors import PluginError
from .registry import Registry

ENTRY_POINT_GROUP = "pipeline"
ENV_PLUGINS = "PIPELINE_PLUGINS"
ENV_DISABLED = "PIPELINE_DISABLE_PLUGINS"


@dataclass
class Plugins:
    """A loaded set of plugins: the pluggy manager, the component registry and load failures."""

    manager: pluggy.PluginManager
    registry: Registry
    sources: dict[str, str] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    disabled: tuple[str, ...] = ()

    def load_modules(
        self, modules: Iterable[str], origin: str, folder: str | Path | None = None
    ) -> None:
        """Import and register more plugin modules (a pipeline file's ``plugins:`` list).

        A module that is not importable but stands in ``folder`` (the pipeline file's) is
        imported from there."""
        for module in modules:
            if module not in self.sources and module not in self.failed:
                self._add(module, lambda m=module: import_plugin_module(m, folder), origin)
        self._rebuild_registry()

    def notify(self, hook: str, **kwargs: Any) -> None:
        """Call a lifecycle hook on every observer; one that raises is reported, not fatal."""
        for plugin, call in self.hook_callers(hook):
            try:
                call(**kwargs)
            except Exception as exc:  # an observer must not break the run
                print(f"warning: plugin '{plugin}' raised in {hook}: {exc!r}", file=sys.stderr)

    def hook_callers(self, hook: str) -> Iterator[tuple[str, pluggy.HookCaller]]:
        """``(plugin name, caller)`` for each plugin implementing ``hook``, in load order.

        Each caller is pluggy's hook relay restricted to that one plugin, so that a failure is
        reported by name and does not keep the other plugins' implementations from running."""
        for impl in getattr(self.manager.hook, hook).get_hookimpls():
            others = [p for p in self.manager.get_plugins() if p is not impl.plugin]
            yield impl.plugin_name, self.manager.subset_hook_caller(hook, remove_plugins=others)

    def _add(self, name: str, load: Any, origin: str) -> None:
        if self.manager.is_blocked(name):
            return
        try:
            plugin = load()
        except Exception as exc:
            last = traceback.extract_tb(exc.__traceback__)[-1]
            self.failed[name] = f"{type(exc).__name__}: {exc} ({last.filename}:{last.lineno})"
            return
        try:
            self.manager.register(plugin, name=name)
            self.manager.check_pending()
        except (pluggy.PluginValidationError, ValueError) as exc:
            if self.manager.is_registered(plugin):
                self.manager.unregister(plugin)
            self.failed[name] = str(exc)
            return
        self.sources[name] = origin

    def _rebuild_registry(self) -> None:
        registry = Registry(failed_plugins=self.failed)
        for hook in dict.fromkeys(KIND_HOOKS.values()):
            kinds = [kind for kind, kind_hook in KIND_HOOKS.items() if kind_hook == hook]
            for plugin, call in self.hook_callers(hook):

                def register(
                    cls: type[Component], _plugin: str = plugin, _kinds: list[str] = kinds
                ) -> None:
                    registry.add(cls, kind_of(cls, _kinds), _plugin)

                try:
                    call(register=register)
                except PluginError:
                    raise
                except Exception as exc:
                    raise PluginError(
                        f"plugin '{plugin}' raised in {hook} while registering components: {exc!r}"
                    ) from exc
        self.registry = registry


def load_plugins(
    modules: Iterable[str] = (), disabled: Iterable[str] = (), *, entry_points: bool = True
) -> Plugins:
    """Load built-in plugins, entry-point plugins and ``modules``, except the ``disabled`` names.

    ``PIPELINE_PLUGINS`` (comma-separated modules) and ``PIPELINE_DISABLE_PLUGINS`` add to the
    arguments."""
    disabled = tuple(disabled) + _env_list(ENV_DISABLED)
    manager = pluggy.PluginManager(ENTRY_POINT_GROUP)
    manager.add_hookspecs(hookspecs)
    for name in disabled:
        manager.set_blocked(name)
    plugins = Plugins(manager=manager, registry=Registry(), disabled=disabled)

    from beamline_plugins import BUILTIN_PLUGINS

    for name, module in BUILTIN_PLUGINS.items():
        plugins._add(name, lambda m=module: importlib.import_module(m), "built-in")
    if entry_points:
        for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            if ep.name in plugins.sources or ep.name in plugins.failed:
                continue
            dist = ep.dist.name if ep.dist else "?"
            plugins._add(ep.name, ep.load, f"entry point ({dist})")
    for module in tuple(modules) + _env_list(ENV_PLUGINS):
        if module not in plugins.sources:
            plugins._add(module, lambda m=module: import_plugin_module(m, Path.cwd()), "--plugin")
    plugins._rebuild_registry()
    return plugins


def import_plugin_module(name: str, folder: str | Path | None = None) -> Any:
    """Import plugin module ``name``; if it is not importable, from ``folder`` when it is there.

    ``--plugin`` modules are looked up in the current folder and a pipeline file's ``plugins:``
    beside the file, as ``python -m`` would. The folder is also put on ``PYTHONPATH``, so that
    Beam worker processes import the same module."""
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        top = name.partition(".")[0]
        root = Path(folder) if folder is not None else None
        if exc.name != top or root is None:
            raise
        if not ((root / f"{top}.py").is_file() or (root / top / "__init__.py").is_file()):
            raise
    sys.path.insert(0, str(root))
    paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    os.environ["PYTHONPATH"] = os.pathsep.join([str(root), *paths])
    return importlib.import_module(name)


def _env_list(variable: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in os.environ.get(variable, "").split(",") if p.strip())
