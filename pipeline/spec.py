"""Pipeline files: read, apply overrides, check against the registry, and order the steps."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .components import Component, Input, StepComponent
from .errors import SpecError
from .params import BuildContext, artifact_names, build_component, build_params, closest
from .plugins import Plugins
from .tuning import link_tuned_steps, take_params_from
from .yamlfile import Document, dotted, load_yaml_file

TOP_LEVEL_KEYS = ("name", "description", "plugins", "runner", "steps", "continuous")
from .beam_options import BeamRunnerName  # noqa: E402 - the one list of runner names


@dataclass(kw_only=True)
class RunnerSettings:
    """Where the Beam stages run (see ``beamline.beam_options``)."""

    name: BeamRunnerName = "direct"
    workers: int = 0
    job_endpoint: str = ""
    environment_type: str = ""
    environment_config: str = ""
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class Step:
    """One step of a pipeline: its name, its component and the steps it reads.

    ``params_from`` names a tune step whose best values join the parameters when the step runs
    (``beamline.tuning``); ``tuned`` then records them."""

    name: str
    component: StepComponent
    inputs: dict[str, str]
    plugin: str
    params_from: str = ""
    tuned: dict[str, Any] = field(default_factory=dict)


@dataclass
class PipelineSpec:
    """A checked pipeline file: its steps in the order they run."""

    name: str
    path: Path
    description: str
    runner: RunnerSettings
    steps: list[Step]
    plugins: list[str]
    overrides: list[str] = field(default_factory=list)
    #: The ``continuous:`` section (``beamline.continuous_settings``), None for a plain file.
    continuous: Any = None

    @property
    def directory(self) -> Path:
        """The folder of the pipeline file: relative paths in it resolve from here."""
        return self.path.parent

    def step(self, name: str) -> Step:
        """The step called ``name``."""
        for step in self.steps:
            if step.name == name:
                return step
        raise SpecError(f"{self.path}: no step named '{name}'{closest(name, self.step_names)}")

    @property
    def step_names(self) -> list[str]:
        """Names of the steps in run order."""
        return [s.name for s in self.steps]


def read_document(path: str | Path, overrides: Iterable[str] = ()) -> Document:
    """Read a pipeline file and apply ``--set`` overrides to it."""
    doc = load_yaml_file(path)
    for assignment in overrides:
        doc.override(assignment)
    if not isinstance(doc.data, dict):
        raise SpecError(f"{path}: a pipeline file is a mapping with a 'steps:' key")
    return doc


def load_spec(
    path: str | Path,
    plugins: Plugins,
    overrides: Iterable[str] = (),
    runner: str | None = None,
    *,
    check_paths: bool = True,
    edit: Callable[[dict[str, Any]], None] | None = None,
) -> PipelineSpec:
    """Read, override and check a pipeline file against the components in ``plugins``.

    The file's ``plugins:`` modules are loaded into ``plugins`` first. Data paths named in it
    must exist unless ``check_paths`` is False (a file written before its data). ``edit``
    changes the file's data before it is checked (a continuous loop's cycle of the file)."""
    path = Path(path)
    overrides = list(overrides)
    doc = read_document(path, overrides)
    data: dict[str, Any] = doc.data
    if edit is not None:
        edit(data)
    for key in data:
        if key not in TOP_LEVEL_KEYS:
            raise SpecError(
                f"{doc.where((key,))}: unknown top-level key '{key}'{closest(key, TOP_LEVEL_KEYS)}"
                f" (allowed: {', '.join(TOP_LEVEL_KEYS)})"
            )
    extra_plugins = data.get("plugins") or []
    if not isinstance(extra_plugins, list) or not all(isinstance(p, str) for p in extra_plugins):
        raise SpecError(f"{doc.where(('plugins',))}: plugins: expected a list of module names")
    if extra_plugins:
        plugins.load_modules(extra_plugins, f"pipeline file {path.name}", path.resolve().parent)
        for module in extra_plugins:  # the file needs them: a failure is the file's error
            if module in plugins.failed:
                raise SpecError(
                    f"{doc.where(('plugins',))}: plugins: '{module}' failed to load: "
                    f"{plugins.failed[module]} (a module importable from the environment, or a "
                    f"file {module}.py beside the pipeline file)"
                )
    steps_data = data.get("steps")
    if not isinstance(steps_data, dict) or not steps_data:
        raise SpecError(f"{doc.where(('steps',))}: 'steps:' must map step names to components")
    ctx = BuildContext(
        doc=doc,
        registry=plugins.registry,
        step_names=tuple(steps_data),
        base_dir=path.resolve().parent if check_paths else None,
    )
    runner_data = data.get("runner", {})
    if isinstance(runner_data, str):
        runner_data = {"name": runner_data}
    if runner:
        runner_data = {**(runner_data or {}), "name": runner}
        doc.lines[("runner", "name")] = f"--runner {runner}"
    settings = build_params(RunnerSettings, runner_data or {}, ("runner",), ctx)
    continuous = None
    if data.get("continuous") is not None:
        from .continuous_settings import ContinuousSettings

        if not isinstance(data["continuous"], dict):
            raise SpecError(f"{doc.where(('continuous',))}: continuous: expected a mapping")
        continuous = build_params(ContinuousSettings, data["continuous"], ("continuous",), ctx)
    steps = []
    for name, value in steps_data.items():
        value, params_from = take_params_from(value, ("steps", name), ctx)
        component = build_component(None, value, ("steps", name), ctx)
        info = plugins.registry.components[component.name]
        steps.append(Step(name, component, step_inputs(component), info.plugin, params_from))
    link_tuned_steps(steps, ctx)  # tune steps read their target's inputs; params_from a tune step
    ordered = order_steps(steps, doc)
    check_input_types(steps, ctx)
    name = data.get("name", path.stem)
    if not isinstance(name, str) or not name.replace("-", "_").isidentifier():
        raise SpecError(f"{doc.where(('name',))}: name: expected a short name like 'digits'")
    return PipelineSpec(
        name=name,
        path=path.resolve(),
        description=str(data.get("description", "")),
        runner=settings,
        steps=ordered,
        plugins=list(extra_plugins),
        overrides=overrides,
        continuous=continuous,
    )


def step_inputs(component: Component) -> dict[str, str]:
    """Map each ``Input`` parameter (nested ones as ``a.b``) to the step it names."""
    found: dict[str, str] = {}

    def visit(value: Any, prefix: str) -> None:
        if isinstance(value, Input):
            found[prefix] = str(value)
        elif dataclasses.is_dataclass(value) and not isinstance(value, type):
            for f in dataclasses.fields(value):
                visit(getattr(value, f.name), f"{prefix}.{f.name}" if prefix else f.name)
        elif isinstance(value, list | tuple):
            for i, item in enumerate(value):
                visit(item, f"{prefix}[{i}]")
        elif isinstance(value, dict):
            for key, item in value.items():
                visit(item, f"{prefix}.{key}")

    visit(component, "")
    return found


def check_input_types(steps: list[Step], ctx: BuildContext) -> None:
    """Check that every typed ``Input`` names a step writing an artifact type it accepts."""
    by_name = {s.name: s for s in steps}
    for ref in ctx.inputs:
        if not ref.expects:
            continue
        upstream = by_name[ref.step].component
        if accepts(ref.expects, upstream.produces):
            continue
        wanted = artifact_names(ref.expects)
        fits = [s.name for s in steps if accepts(ref.expects, s.component.produces)]
        writes = artifact_names(upstream.produces) or "no typed artifact"
        hint = f": {', '.join(fits)}" if fits else f" (no step of this pipeline writes {wanted})"
        raise SpecError(
            f"{ctx.doc.where(ref.path)}: {dotted(ref.path)}: '{ref.step}' is a "
            f"{upstream.kind.replace('_', ' ')} step writing {writes}; expected a step "
            f"writing {wanted}{hint}"
        )


def accepts(expects: Iterable[type], produces: Iterable[type]) -> bool:
    """Whether a step writing ``produces`` fits an input typed ``expects`` (subtypes fit)."""
    return any(issubclass(p, e) for p in produces for e in expects)


def order_steps(steps: list[Step], doc: Document) -> list[Step]:
    """Order steps so each runs after the steps it reads, keeping file order otherwise."""
    by_name = {s.name: s for s in steps}
    ordered: list[Step] = []
    state: dict[str, str] = {}

    def visit(step: Step, chain: tuple[str, ...]) -> None:
        if state.get(step.name) == "done":
            return
        if state.get(step.name) == "visiting":
            cycle = " -> ".join(chain + (step.name,))
            raise SpecError(f"{doc.where(('steps', step.name))}: steps read each other: {cycle}")
        state[step.name] = "visiting"
        for upstream in step.inputs.values():
            visit(by_name[upstream], chain + (step.name,))
        state[step.name] = "done"
        ordered.append(step)

    for step in steps:
        visit(step, ())
    return ordered
