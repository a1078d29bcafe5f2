"""The registry of components: name -> class, kind and the plugin that registered it."""

from __future__ import annotations

from dataclasses import dataclass, field

from .components import KIND_BASES, Component, check_component_class
from .errors import PluginError, SpecError
from .params import closest


@dataclass(frozen=True)
class ComponentInfo:
    """One registered component."""

    name: str
    kind: str
    plugin: str
    cls: type[Component]

    @property
    def summary(self) -> str:
        """The first line of the component's docstring."""
        return self.cls.summary_line()


@dataclass
class Registry:
    """Every registered component, plus the plugins that failed to load (for better errors)."""

    components: dict[str, ComponentInfo] = field(default_factory=dict)
    failed_plugins: dict[str, str] = field(default_factory=dict)

    def add(self, cls: type[Component], kind: str, plugin: str) -> None:
        """Register ``cls`` as a ``kind`` component of ``plugin``; reject duplicates and misfits."""
        problem = check_component_class(cls, kind)
        if problem:
            raise PluginError(f"plugin '{plugin}': cannot register {kind}: {problem}")
        existing = self.components.get(cls.name)
        if existing is not None and existing.cls is not cls:
            raise PluginError(
                f"component name '{cls.name}' is registered twice: as a {existing.kind} by plugin "
                f"'{existing.plugin}' and as a {kind} by plugin '{plugin}'. Rename one of them, or "
                f"disable a plugin with --disable-plugin NAME."
            )
        self.components[cls.name] = ComponentInfo(cls.name, kind, plugin, cls)

    def find(self, name: str, kind: str | None = None, *, where: str = "") -> type[Component]:
        """Return the class of component ``name``; ``kind`` None accepts any step kind."""
        info = self.components.get(name)
        prefix = f"{where}: " if where else ""
        if info is None:
            wanted = [c.name for c in self.of_kind(kind)] if kind else list(self.components)
            hint = closest(name, wanted) or closest(name, self.components)
            failed = "".join(
                f"\n  note: plugin '{p}' failed to load: {why}"
                for p, why in self.failed_plugins.items()
            )
            raise SpecError(
                f"{prefix}unknown {kind.replace('_', ' ') if kind else 'component'} '{name}'{hint}"
                f" (list them with 'pipeline plugins'){failed}"
            )
        if kind is None and not info.cls.is_step:
            raise SpecError(
                f"{prefix}'{name}' is a {info.kind} component and cannot be a step; steps use "
                f"a source, validator, tuner, trainer, evaluator or exporter"
            )
        if kind is not None and info.kind != kind:
            fits = ", ".join(c.name for c in self.of_kind(kind))
            raise SpecError(
                f"{prefix}'{name}' is a {info.kind.replace('_', ' ')} component, expected a "
                f"{kind.replace('_', ' ')}" + (f" ({fits})" if fits else "")
            )
        return info.cls

    def info(self, name: str) -> ComponentInfo:
        """Return the registration of ``name`` (``SpecError`` with a hint if unknown)."""
        if name not in self.components:
            self.find(name)  # raises, with the closest name and failed plugins
        return self.components[name]

    def of_kind(self, kind: str) -> list[ComponentInfo]:
        """All components of one kind, sorted by name."""
        return sorted((c for c in self.components.values() if c.kind == kind), key=lambda c: c.name)

    def all(self) -> list[ComponentInfo]:
        """All components, sorted by kind (in pipeline order) and name."""
        order = {k: i for i, k in enumerate(KIND_BASES)}
        return sorted(self.components.values(), key=lambda c: (order[c.kind], c.name))
