"""Component base classes, one per kind, each with its typed contract, and ``param``.

A component is a small class: a ``name``, a docstring, and typed parameters written as annotated
class attributes. Subclasses become keyword-only dataclasses automatically, so a pipeline file's
mapping turns into an instance after its values were checked against the annotations and the
limits declared with ``param``.

Each kind is an abstract base class whose abstract methods are its contract: kinds that are
*steps* (source, validator, trainer, evaluator, exporter) implement ``run(ctx)`` and declare the
artifact type they write (``produces``); the others (transform, input pipeline, model, generator
and discriminator models) are parameters of steps and implement the methods of their kind.
Registration refuses a class that leaves a method of its contract out.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import inspect
import re
from abc import ABCMeta, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal

if TYPE_CHECKING:
    import apache_beam as beam
    import keras
    import tensorflow as tf

    from .artifacts import Artifact
    from .context import StepContext

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_MISSING = dataclasses.MISSING

#: What a data-path parameter names: a file, a folder, or a glob pattern matching files.
PathKind = Literal["file", "folder", "glob"]

#: The model inputs an input pipeline describes: ``{feature: {"shape": [...], "dtype": ...}}``.
ModelInputs = dict[str, dict[str, Any]]


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


# --- artifact types: what steps write and inputs read ----------------------------------------


class ArtifactType:
    """A type of artifact a step writes; a step's inputs are typed by the artifact they read."""

    name: ClassVar[str] = ""


class Examples(ArtifactType):
    """Sharded GZIP TFRecords of ``tf.train.Example`` per split, ``features.json``, rejected."""

    name = "examples"


class Statistics(ArtifactType):
    """Statistics of an examples artifact, its schema, anomalies, skew and drift."""

    name = "statistics"


class TrainedModel(ArtifactType):
    """A trained model with its training history and the input pipeline it was trained with."""

    name = "model"


class Evaluation(ArtifactType):
    """Metrics of a trained model and whether it is blessed."""

    name = "evaluation"


class ExportedModel(ArtifactType):
    """A servable SavedModel whose signature takes raw input."""

    name = "export"


class Input(str):
    """The type of a parameter that names an upstream step whose artifact this step reads.

    ``Input[Examples]`` accepts only a step that writes examples (a source); a bare ``Input``
    accepts any step. The pipeline file is checked when it loads."""

    expects: ClassVar[tuple[type[ArtifactType], ...]] = ()

    def __class_getitem__(cls, artifact: Any) -> type[Input]:
        types = artifact if isinstance(artifact, tuple) else (artifact,)
        if not all(isinstance(t, type) and issubclass(t, ArtifactType) for t in types):
            raise TypeError(f"Input[...] takes artifact types (beamline.Examples, ...): {artifact}")
        return _typed_input(types)


@functools.cache
def _typed_input(types: tuple[type[ArtifactType], ...]) -> type[Input]:
    label = ", ".join(t.__name__ for t in types)
    return type(f"Input[{label}]", (Input,), {"expects": types, "__module__": __name__})


@dataclass
class StepResult:
    """What a step reports: record counts, metrics, and a short line for the summary table.

    When ``counts`` has ``read``, the core checks ``read == written + rejected``."""

    counts: dict[str, int] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    summary: str = ""


class Component(metaclass=ABCMeta):  # noqa: B024 - the kinds declare the contracts
    """Base of every component. Subclass one of the kind classes, not this one."""

    name: ClassVar[str] = ""
    kind: ClassVar[str] = ""
    is_step: ClassVar[bool] = False
    #: The artifact types a step of this kind writes (what typed inputs of other steps accept).
    produces: ClassVar[tuple[type[ArtifactType], ...]] = ()
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


class Transform(Component):
    """A Beam stage from records to records, with a tagged ``rejected`` side output.

    Implement ``stage(ctx)``. A transform may also define ``analyze(ctx)`` returning a Beam
    ``PTransform`` from the TRAIN split's records to ``(relative_path, bytes)`` pairs (a
    vocabulary, normalisation constants); ingest writes them under ``assets/`` of the examples."""

    kind: ClassVar[str] = "transform"

    @abstractmethod
    def stage(self, ctx: StepContext) -> beam.PTransform:
        """Return the Beam ``PTransform`` of this stage.

        It maps a PCollection of records (dicts of feature -> value) to a ``DoOutputsTuple`` or
        dict with ``main`` (records) and ``rejected`` (``Rejected`` records with reasons)."""


class InputPipeline(Component):
    """Feeds a model: a ``tf.data.Dataset`` from an examples artifact, the model's inputs and
    the preprocessing the exported model runs on raw input."""

    kind: ClassVar[str] = "input_pipeline"

    @abstractmethod
    def model_inputs(self, examples: Artifact) -> ModelInputs:
        """The model's inputs for ``examples``: ``{feature: {"shape": [...], "dtype": ...}}``.

        What a model's ``build`` receives, saved with the trained model; the entries may hold
        more (a vocabulary, normalisation constants, spectrogram settings)."""

    @abstractmethod
    def dataset(
        self,
        examples: Artifact,
        split: str,
        *,
        inputs: ModelInputs | None = None,
        training: bool = False,
        batch_size: int = 32,
        seed: int = 0,
        with_ids: bool = False,
    ) -> tf.data.Dataset:
        """Batches of ``(features, target)`` of ``split`` (plus the ids when ``with_ids``).

        ``inputs`` defaults to ``model_inputs(examples)``; ``training`` shuffles (seeded by
        ``seed``, so the order depends on it only) and augments. ``features`` is a dict keyed
        by the names of ``inputs``; a pipeline may add a third element of sample weights."""

    @abstractmethod
    def serving(
        self, inputs: ModelInputs
    ) -> tuple[dict[str, tf.TensorSpec], Callable[[dict[str, tf.Tensor]], dict[str, tf.Tensor]]]:
        """The exported model's signature on raw input and the function that turns it into
        the model's features (the same preprocessing as ``dataset``)."""


class Model(Component):
    """Builds a ``keras.Model`` for the inputs an input pipeline describes."""

    kind: ClassVar[str] = "model"

    @abstractmethod
    def build(self, inputs: ModelInputs, num_classes: int) -> keras.Model:
        """Return a new ``keras.Model`` taking ``inputs`` (from ``model_inputs``).

        ``num_classes`` > 0: a classifier with that many logits; 0: a regression (one value)."""


class GeneratorModel(Component):
    """Builds the generator of a GAN: noise (and a class) to an image."""

    kind: ClassVar[str] = "generator_model"

    @abstractmethod
    def build(self, image_shape: list[int], latent_dim: int, num_classes: int = 0) -> keras.Model:
        """Return a ``keras.Model`` from ``{"noise": [batch, latent_dim]}`` (plus ``"label"``:
        class indices when ``num_classes`` > 0) to images of ``image_shape`` in [0, 1]."""


class DiscriminatorModel(Component):
    """Builds the discriminator of a GAN: an image (and a class) to a logit."""

    kind: ClassVar[str] = "discriminator_model"

    @abstractmethod
    def build(self, image_shape: list[int], num_classes: int = 0) -> keras.Model:
        """Return a ``keras.Model`` from ``{"image": ...}`` (plus ``"label"`` when
        ``num_classes`` > 0) to one float32 logit per image (> 0: it looks real)."""


@dataclass(kw_only=True)
class Split:
    """A deterministic, hash-based split: reruns and runners agree on every record's side.

    With ``from_feature`` the data set's own split is kept instead (a column of a table, or a
    source's feature): duplicates across splits are still removed before anything is written."""

    train: float = param(0.8, help="share of records for training", ge=0, le=1)
    eval: float = param(0.1, help="share of records for evaluation during training", ge=0, le=1)
    test: float = param(0.1, help="share of records held out for the final test", ge=0, le=1)
    key: str = param("", help="feature hashed to choose the split; default: the record's content")
    group_by: str = param("", help="records with equal values of this feature stay on one side")
    salt: str = param("", help="changes the assignment while keeping it deterministic")
    from_feature: str = param(
        "",
        help="feature naming each record's split (train, eval/validation, test): predefined "
        "splits; shares, key and group_by are then not used and the feature is not written",
    )

    def check(self) -> None:
        """The shares sum to 1; predefined splits (``from_feature``) take no key or group."""
        if self.from_feature:
            if self.key or self.group_by:
                raise ParamError(
                    "",
                    "from_feature cannot be combined with key or group_by (the data names each "
                    "record's split)",
                )
            return
        total = self.train + self.eval + self.test
        if abs(total - 1.0) > 1e-6:
            raise ParamError(
                "",
                f"the shares train {self.train:g} + eval {self.eval:g} + test {self.test:g} sum "
                f"to {total:g}, not 1 (a share left out keeps its default: eval 0.1, test 0.1)",
            )


class Source(Component):
    """Reads raw data into records: a bounded data set (files, a table), read once per run.

    Implement ``read(ctx)`` returning a Beam ``PTransform`` from the pipeline root to a dict of
    PCollections ``{"main": records, "rejected": rejected records}`` (``beamline.ingest`` builds
    one from a reading function). The ingest engine (``beamline.ingest_engine``) runs the step:
    the transforms, duplicates, split, shards, rejected records and counts. A source may also
    define ``feature_info(ctx)``, ``location(ctx)`` and ``data_fingerprint(ctx)`` (see
    ``beamline.examples``). A source that writes its examples artifact itself (prepared data)
    defines ``run(ctx)`` instead of ``read``."""

    kind: ClassVar[str] = "source"
    is_step: ClassVar[bool] = True
    produces: ClassVar[tuple[type[ArtifactType], ...]] = (Examples,)
    #: The module whose ``run(component, ctx)`` runs this kind as a step.
    engine: ClassVar[str] = "beamline.ingest_engine"
    transforms: list[Transform] = param([], help="Beam stages applied to the records, in order")
    deduplicate: bool = param(True, help="drop exact duplicate records before splitting")
    split: Split = param(Split(), help="how records are split into train, eval and test")
    shards: int = param(0, help="TFRecord shards per split (0: chosen from the data size)", ge=0)

    def read(self, ctx: StepContext) -> beam.PTransform:
        """Return the Beam ``PTransform`` that reads this source."""
        raise NotImplementedError(f"source '{self.name}' does not implement read(ctx)")


class Stream(Component):
    """Reads an unbounded stream of records with event times, ingested window by window.

    What a stream implements (the streaming engine, ``beamline.stream_engine``, does the rest):

    - ``read(ctx)``: a Beam ``PTransform`` from the pipeline root to ``{"main": records,
      "rejected": rejected records}`` whose records carry event times (elements stamped by the
      Beam source itself, as a ``TestStream`` or a broker reader does, or
      ``beam.window.TimestampedValue(record, seconds)``) and whose watermark says when a window
      is complete. The PCollection may be unbounded: the step ends when the stream does (the
      stream's own stop rule: a duration, a count, a time without new data).
    - ``acknowledge(window, sources)``: called after records are durably stored (their files
      renamed into place), once for a window's examples and once for its rejected records, with
      the window's folder name and the ``__source__`` of each stored record. A broker source
      commits offsets or acknowledges messages here, so that nothing is acknowledged before it
      is stored. It runs in the Beam worker that wrote the window, on a pickled copy of the
      stream: open connections lazily. Default: nothing to acknowledge.
    - ``close(ctx)``: called once the pipeline ended, also when it failed: stop what ``read``
      started (a folder watch's event service, a broker connection). Default: nothing.
    - optional, as for sources: ``feature_info(ctx)``, ``location(ctx)``, and
      ``data_fingerprint(ctx)`` (a live stream returns a fresh value: it is never reused).

    Per fixed event-time window of ``window_seconds`` the engine applies the transforms, drops
    duplicates within the window, and writes ``examples/window-<start>-<end>/`` shards, the
    window's rejected records and its statistics (``window_checks``); there is no ``split``."""

    kind: ClassVar[str] = "stream"
    is_step: ClassVar[bool] = True
    produces: ClassVar[tuple[type[ArtifactType], ...]] = (Examples,)
    engine: ClassVar[str] = "beamline.stream_engine"
    transforms: list[Transform] = param([], help="Beam stages applied to the records, in order")
    deduplicate: bool = param(True, help="drop exact duplicate records within a window")
    shards: int = param(0, help="TFRecord shards per window (0: chosen from the data size)", ge=0)
    window_seconds: float = param(
        60.0, help="length of the fixed event-time windows (seconds)", gt=0
    )
    split: Any = param(None, help="not accepted: each event-time window is its own folder")

    def check(self) -> None:
        """Refuse ``split``: a stream has no splits, it writes windows."""
        if self.split is not None:
            raise ParamError(
                "split",
                f"stream '{self.name}' takes no split: each event-time window is written as its "
                "own folder (examples/window-<start>-<end>/); remove 'split:'",
            )

    def read(self, ctx: StepContext) -> beam.PTransform:
        """Return the Beam ``PTransform`` that reads this stream (timestamped records)."""
        raise NotImplementedError(f"stream '{self.name}' does not implement read(ctx)")

    def acknowledge(self, window: str, sources: list[str]) -> None:
        """Acknowledge records stored durably (see the class docstring); default: nothing."""
        return None

    def close(self, ctx: StepContext) -> None:
        """Stop what ``read`` started (see the class docstring); default: nothing."""
        return None

    def window_checks(self, ctx: StepContext) -> Any:
        """What checks each window's statistics (a ``beamline.stream_engine.WindowChecks``),
        or None for no statistics; the streaming plugin computes TFDV statistics and alarms."""
        return None


class Validator(StepComponent):
    """Computes statistics of an examples artifact, checks them and gates the run."""

    kind: ClassVar[str] = "validator"
    produces: ClassVar[tuple[type[ArtifactType], ...]] = (Statistics,)


class Trainer(StepComponent):
    """Fits a model and writes it with its training history."""

    kind: ClassVar[str] = "trainer"
    produces: ClassVar[tuple[type[ArtifactType], ...]] = (TrainedModel,)


class Evaluator(StepComponent):
    """Computes metrics of a trained model and decides whether it is blessed."""

    kind: ClassVar[str] = "evaluator"
    produces: ClassVar[tuple[type[ArtifactType], ...]] = (Evaluation,)


class Exporter(StepComponent):
    """Writes a servable model whose signature takes raw input."""

    kind: ClassVar[str] = "exporter"
    produces: ClassVar[tuple[type[ArtifactType], ...]] = (ExportedModel,)


KIND_BASES: dict[str, type[Component]] = {
    "source": Source,
    "stream": Stream,
    "transform": Transform,
    "validator": Validator,
    "input_pipeline": InputPipeline,
    "model": Model,
    "generator_model": GeneratorModel,
    "discriminator_model": DiscriminatorModel,
    "trainer": Trainer,
    "evaluator": Evaluator,
    "exporter": Exporter,
}

#: The registration hook of each kind; one hook may register several kinds (models).
KIND_HOOKS: dict[str, str] = {
    "source": "register_sources",
    "stream": "register_streams",
    "transform": "register_transforms",
    "validator": "register_validators",
    "input_pipeline": "register_input_pipelines",
    "model": "register_models",
    "generator_model": "register_models",
    "discriminator_model": "register_models",
    "trainer": "register_trainers",
    "evaluator": "register_evaluators",
    "exporter": "register_exporters",
}


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
