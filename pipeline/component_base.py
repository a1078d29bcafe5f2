"""The component base class, ``param``, ``ParamError`` and ``StepResult``.

A component is a small class: a ``name``, a docstring, and typed parameters written as annotated
class attributes. Subclasses become keyword-only dataclasses automatically, so a pipeline file's
mapping turns into an instance after its values were checked against the annotations and the
limits declared with ``param``. The kinds built on this base are in ``beamline.kinds``.
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
from abc import ABCMeta, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from .artifact_types import ArtifactType

if TYPE_CHECKING:
    from .context import StepContext

_MISSING = dataclasses.MISSING

#: What a data-path parameter names: a file, a folder, or a glob pattern matching files.
PathKind = Literal["file", "folder", "glob"]


def param(
    default: Any = _MISSING,
    *,
    help: str = "",  # noqa: A002 - click's word
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    lt: float | None = None,
    choices: Sequence[Any] | None = None,
    min_items: int | None = None,
    path: PathKind | None = None,
    under: str = "",
) -> Any:
    """Declare a parameter with help text and the limits checked when a pipeline file loads.

    ``ge``/``gt``/``le``/``lt`` bound a number (or each number of a list); ``choices`` lists
    the allowed values; ``min_items`` the shortest list. ``path`` marks text naming data the
    step reads (a ``file``, a ``folder`` or a ``glob`` pattern): it must exist, relative to
    the pipeline file's folder, or to the folder named by parameter ``under``. Empty text
    means "not given" and is not checked. Lists and dicts given as defaults are copied per use.
    """
    limits = {
        key: value
        for key, value in (
            ("ge", ge),
            ("gt", gt),
            ("le", le),
            ("lt", lt),
            ("choices", tuple(choices) if choices is not None else None),
            ("min_items", min_items),
            ("path", path),
            ("under", under or None),
        )
        if value is not None
    }
    metadata = {"help": help, **limits}
    if default is _MISSING:
        return field(metadata=metadata)
    if _is_mutable(default):
        return field(default_factory=lambda: copy.deepcopy(default), metadata=metadata)
    return field(default=default, metadata=metadata)


def _is_mutable(value: Any) -> bool:
    is_config = dataclasses.is_dataclass(value) and not isinstance(value, type)
    return is_config or isinstance(value, list | dict | set)


class ParamError(ValueError):
    """Raised by a component's ``check()``: ``key`` names the parameter that is wrong."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


@dataclass
class StepResult:
    """What a step reports: record counts, metrics, and a short line for the summary table.

    When ``counts`` has ``read``, the core checks ``read == written + rejected``. ``details``
    holds further JSON-ready facts (a search's best trials), kept in ``meta.json`` and shown by
    ``pipeline show --json``."""

    counts: dict[str, int] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    summary: str = ""
    details: dict[str, Any] = field(default_factory=dict)


class Component(metaclass=ABCMeta):  # noqa: B024 - the kinds declare the contracts
    """Base of every component. Subclass one of the kind classes, not this one."""

    name: ClassVar[str] = ""
    kind: ClassVar[str] = ""
    is_step: ClassVar[bool] = False
    #: The artifact types a step of this kind writes (what typed inputs of other steps accept).
    produces: ClassVar[tuple[type[ArtifactType], ...]] = ()
    #: Keys a pipeline file may not give this component, each with the reason it says instead
    #: of "unknown parameter" (a key users carry over from a related kind, such as a stream's).
    refused: ClassVar[dict[str, str]] = {}
    help_text: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # Read before dataclass() invents a docstring from the signature.
        cls.help_text = inspect.cleandoc(cls.__dict__.get("__doc__") or "")
        annotations = cls.__dict__.get("__annotations__", {})
        for attr, value in list(vars(cls).items()):
            # Mutable defaults written plainly become per-instance copies (not class variables).
            hint = str(annotations.get(attr, "ClassVar"))
            if not hint.startswith(("ClassVar", "typing.ClassVar")) and _is_mutable(value):
                setattr(cls, attr, param(value))
        dataclass(kw_only=True)(cls)

    @classmethod
    def summary_line(cls) -> str:
        """The first line of the docstring: what ``pipeline plugins`` shows."""
        return cls.help_text.splitlines()[0] if cls.help_text else ""

    def check(self) -> None:
        """Check limits that join several parameters; raise ``ParamError(key, message)``.

        Called when the pipeline file loads, after every parameter was checked on its own
        (types, the limits declared with ``param``, data paths). An override calls
        ``super().check()`` first: kinds check here too (a stream refuses ``split``)."""
        return None

    def data_fingerprint(self, ctx: StepContext) -> str | None:
        """A digest of external data this component reads (files, tables); None if it reads none.

        It joins the step's fingerprint so that changed data reruns the step."""
        return None

    def children(self) -> list[Component]:
        """Components nested in this one's parameters (a trainer's model, a source's transforms)."""
        found: list[Component] = []
        for f in dataclasses.fields(self):
            _collect_components(getattr(self, f.name), found)
        return found


def _collect_components(value: Any, found: list[Component]) -> None:
    if isinstance(value, Component):
        found.append(value)
    elif isinstance(value, list | tuple):
        for item in value:
            _collect_components(item, found)
    elif isinstance(value, dict):
        for item in value.values():
            _collect_components(item, found)


class StepComponent(Component):
    """A component that runs as a step of a pipeline and writes one artifact.

    ``produces`` names the artifact types the step writes: an input typed ``Input[T]`` of
    another step may name this step only if ``T`` is among them."""

    is_step: ClassVar[bool] = True
    produces: ClassVar[tuple[type[ArtifactType], ...]] = ()

    @abstractmethod
    def run(self, ctx: StepContext) -> StepResult | None:
        """Do the step's work, writing its artifact under ``ctx.output_dir``."""
