"""Component base classes, one per kind, and the ``param`` helper for documented parameters.

A component is a small class: a ``name``, a docstring, and typed parameters written as annotated
class attributes. Subclasses become keyword-only dataclasses automatically, so a pipeline file's
mapping turns into an instance after its values were checked against the annotations.

Kinds that are *steps* (source, validator, trainer, evaluator, exporter) implement
``run(ctx) -> StepResult | None``; the others (transform, input pipeline, model) are used as
parameters of steps and implement the method their kind documents.
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from .context import StepContext

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_MISSING = dataclasses.MISSING


def param(default: Any = _MISSING, *, help: str = "") -> Any:  # noqa: A002 - click's word
    """Declare a parameter with help text; lists and dicts given as defaults are copied per use."""
    metadata = {"help": help}
    if default is _MISSING:
        return field(metadata=metadata)
    if _is_mutable(default):
        return field(default_factory=lambda: copy.deepcopy(default), metadata=metadata)
    return field(default=default, metadata=metadata)


def _is_mutable(value: Any) -> bool:
    is_config = dataclasses.is_dataclass(value) and not isinstance(value, type)
    return is_config or isinstance(value, list | dict | set)


class Input(str):
    """The type of a parameter that names an upstream step whose artifact this step reads."""


@dataclass
class StepResult:
    """What a step reports: record counts, metrics, and a short line for the summary table.

    When ``counts`` has ``read``, the core checks ``read == written + rejected``."""

    counts: dict[str, int] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    summary: str = ""


class Component:
    """Base of every component. Subclass one of the kind classes, not this one."""

    name: ClassVar[str] = ""
    kind: ClassVar[str] = ""
    is_step: ClassVar[bool] = False
    help_text: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # Read before dataclass() invents a docstring from the signature.
        cls.help_text = inspect.cleandoc(cls.__dict__.get("__doc__") or "")
        for attr, value in list(vars(cls).items()):
            # Mutable defaults written plainly become per-instance copies.
            if attr in cls.__dict__.get("__annotations__", {}) and _is_mutable(value):
                setattr(cls, attr, param(value))
        dataclass(kw_only=True)(cls)

    @classmethod
    def summary_line(cls) -> str:
        """The first line of the docstring: what ``pipeline plugins`` shows."""
        return cls.help_text.splitlines()[0] if cls.help_text else ""

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
    """A component that runs as a step of a pipeline."""

    is_step: ClassVar[bool] = True

    def run(self, ctx: StepContext) -> StepResult | None:
        """Do the step's work, writing its artifact under ``ctx.output_dir``."""
        raise NotImplementedError(f"component '{self.name}' does not implement run()")


class Transform(Component):
    """A Beam stage from records to records, with a tagged ``rejected`` side output.

    Implement ``stage(ctx)`` returning a ``beam.PTransform`` whose output is a
    ``DoOutputsTuple``/dict with ``main`` (records) and ``rejected`` (``Rejected`` records)."""

    kind: ClassVar[str] = "transform"

    def stage(self, ctx: StepContext) -> Any:
        """Return the Beam ``PTransform`` of this stage."""
        raise NotImplementedError

    # A transform may also define ``analyze(ctx)`` returning a Beam ``PTransform`` from the
    # TRAIN split's records to ``(relative_path, bytes)`` pairs (a vocabulary, normalisation
    # constants); ingest writes them under ``assets/`` of the examples artifact.


class InputPipeline(Component):
    """Builds a ``tf.data.Dataset`` from an examples artifact (``dataset(...)``)."""

    kind: ClassVar[str] = "input_pipeline"


class Model(Component):
    """Builds a ``keras.Model`` (``build(features, ...)``)."""

    kind: ClassVar[str] = "model"


@dataclass(kw_only=True)
class Split:
    """A deterministic, hash-based split: reruns and runners agree on every record's side.

    With ``from_feature`` the data set's own split is kept instead (a column of a table, or a
    source's feature): duplicates across splits are still removed before anything is written."""

    train: float = param(0.8, help="share of records for training")
    eval: float = param(0.1, help="share of records for evaluation during training")
    test: float = param(0.1, help="share of records held out for the final test")
    key: str = param("", help="feature hashed to choose the split; default: the record's content")
    group_by: str = param("", help="records with equal values of this feature stay on one side")
    salt: str = param("", help="changes the assignment while keeping it deterministic")
    from_feature: str = param(
        "",
        help="feature naming each record's split (train, eval/validation, test): predefined "
        "splits; shares, key and group_by are then not used and the feature is not written",
    )


class Source(StepComponent):
    """Reads raw data into records; as a step it also runs its transforms, splits and writes.

    Implement ``read(ctx)`` returning a Beam ``PTransform`` from the pipeline root to a dict of
    PCollections ``{"main": records, "rejected": rejected records}``; the core does the rest
    (see ``beamline.ingest``)."""

    kind: ClassVar[str] = "source"
    transforms: list[Transform] = param([], help="Beam stages applied to the records, in order")
    deduplicate: bool = param(True, help="drop exact duplicate records before splitting")
    split: Split = param(Split(), help="how records are split into train, eval and test")
    shards: int = param(0, help="TFRecord shards per split (0: chosen from the data size)")

    def read(self, ctx: StepContext) -> Any:
        """Return the Beam ``PTransform`` that reads this source."""
        raise NotImplementedError

    def run(self, ctx: StepContext) -> StepResult | None:
        """Run ingest: read, transform, split, write TFRecords and rejected records."""
        from .ingest import run_ingest

        return run_ingest(self, ctx)


class Validator(StepComponent):
    """Computes statistics of an examples artifact, checks them and gates the run."""

    kind: ClassVar[str] = "validator"


class Trainer(StepComponent):
    """Fits a model and writes it with its training history."""

    kind: ClassVar[str] = "trainer"


class Evaluator(StepComponent):
    """Computes metrics of a trained model and decides whether it is blessed."""

    kind: ClassVar[str] = "evaluator"


class Exporter(StepComponent):
    """Writes a servable model whose signature takes raw input."""

    kind: ClassVar[str] = "exporter"


KIND_BASES: dict[str, type[Component]] = {
    "source": Source,
    "transform": Transform,
    "validator": Validator,
    "input_pipeline": InputPipeline,
    "model": Model,
    "trainer": Trainer,
    "evaluator": Evaluator,
    "exporter": Exporter,
}

#: The registration hook of each kind.
KIND_HOOKS: dict[str, str] = {
    "source": "register_sources",
    "transform": "register_transforms",
    "validator": "register_validators",
    "input_pipeline": "register_input_pipelines",
    "model": "register_models",
    "trainer": "register_trainers",
    "evaluator": "register_evaluators",
    "exporter": "register_exporters",
}


def check_component_class(cls: Any, kind: str) -> str | None:
    """Return what is wrong with ``cls`` as a component of ``kind``, or None if nothing is."""
    base = KIND_BASES[kind]
    if not isinstance(cls, type) or not issubclass(cls, base):
        return f"{cls!r} is not a subclass of beamline.{base.__name__}"
    if not isinstance(cls.name, str) or not _NAME.match(cls.name):
        return f"{cls.__name__}.name must be lower_snake_case text, got {cls.name!r}"
    if not cls.help_text or cls.help_text == base.help_text:
        return f"{cls.__name__} ({cls.name}) needs a docstring: users read it in 'pipeline plugins'"
    return None
