"""The component kinds, one abstract base class each, whose abstract methods are its contract.

Kinds that are *steps* (source, stream, validator, tuner, trainer, evaluator, exporter) implement
``run(ctx)`` (or, for sources and streams, ``read(ctx)``: their kind's engine runs the step) and
declare the artifact type they write (``produces``); the others (transform, input pipeline,
model, generator and discriminator models) are parameters of steps and implement the methods of
their kind. ``KIND_BASES`` and ``KIND_HOOKS`` map each kind's name to its base class and its
registration hook; ``beamline.contracts`` checks a registered class against its kind.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from .artifact_types import (
    ArtifactType,
    Evaluation,
    Examples,
    ExportedModel,
    Statistics,
    TrainedModel,
    Tuning,
)
from .component_base import Component, ParamError, StepComponent, param

if TYPE_CHECKING:
    from pathlib import Path

    import apache_beam as beam
    import keras
    import tensorflow as tf

    from .artifacts import Artifact
    from .context import StepContext

#: The model inputs an input pipeline describes: ``{feature: {"shape": [...], "dtype": ...}}``.
ModelInputs = dict[str, dict[str, Any]]


class Transform(Component):
    """A Beam stage from records to records, with a tagged ``rejected`` side output.

    Implement ``stage(ctx)``. A transform may also define ``analyze(ctx)`` returning a Beam
    ``PTransform`` from the TRAIN split's records to ``(relative_path, bytes)`` pairs (a
    vocabulary, normalisation constants); ingest writes them under ``assets/`` of the examples.
    An analyzing transform may also define ``analyze_in_process(ctx)``: an object with
    ``add(record)`` (each TRAIN record) and ``assets()`` (the same pairs), which lets the
    ``direct`` runner's in-process ingest (``beamline.ingest_in_process``) run it without Beam."""

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
    refused: ClassVar[dict[str, str]] = {
        "split": "a stream takes no split: each event-time window is written as its own folder "
        "(examples/window-<start>-<end>/); remove 'split:'",
    }

    def read(self, ctx: StepContext) -> beam.PTransform:
        """Return the Beam ``PTransform`` that reads this stream (timestamped records)."""
        raise NotImplementedError(f"stream '{self.name}' does not implement read(ctx)")

    def acknowledge(self, window: str, sources: list[str]) -> None:
        """Acknowledge records stored durably (see the class docstring); default: nothing."""
        return None

    def close(self, ctx: StepContext) -> None:
        """Stop what ``read`` started (see the class docstring); default: nothing."""
        return None

    def store(self, ctx: StepContext) -> Path | None:
        """A folder where windows are committed durably across runs (``beamline.window_store``),
        or None (default) to write them into the step's folder. A broker stream keeps one, so
        that what it acknowledged survives a kill of the process."""
        return None

    def window_checks(self, ctx: StepContext) -> Any:
        """What checks each window's statistics (a ``beamline.stream_engine.WindowChecks``),
        or None for no statistics; the streaming plugin computes TFDV statistics and alarms."""
        return None


class Validator(StepComponent):
    """Computes statistics of an examples artifact, checks them and gates the run."""

    kind: ClassVar[str] = "validator"
    produces: ClassVar[tuple[type[ArtifactType], ...]] = (Statistics,)


class Tuner(StepComponent):
    """Searches parameters of another step of the pipeline (its ``target``, a train step).

    ``space`` maps a dotted parameter of the target (``learning_rate``, ``model.filters``) to a
    range: ``{uniform: [low, high]}``, ``{log_uniform: [low, high]}``, ``{int: [low, high]}``,
    ``{log_int: [low, high]}`` or ``{choice: [a, b, ...]}``; ``fixed`` sets target parameters in
    every trial (a shorter fit while searching). Both are checked against the target's
    parameters when the file loads (``beamline.tuning``), which also sets ``trial`` (the
    target's component as the file gives it) and makes the tune step read the target's inputs
    (as ``target.<input>``). A trial is ``beamline.tuning.apply_values(self.trial, values)``
    run with those inputs. ``run`` writes ``best.json`` (``beamline.tuning.write_best``): a step
    with ``params_from: <this step>`` takes the best trial's values into its parameters."""

    kind: ClassVar[str] = "tuner"
    produces: ClassVar[tuple[type[ArtifactType], ...]] = (Tuning,)
    target: str = param(help="the step whose parameters are searched (a train step)")
    space: dict[str, Any] = param(
        help="dotted parameter of the target -> {uniform|log_uniform|int|log_int: [low, high]} "
        "or {choice: [values]}"
    )
    fixed: dict[str, Any] = param(
        {}, help="dotted parameter of the target -> value used in every trial"
    )
    trial: Component | None = field(default=None, init=False)

    def check(self) -> None:
        """The space names at least one parameter; a key is searched or fixed, not both."""
        super().check()
        if not self.space:
            raise ParamError("space", "needs at least one parameter to search")
        both = sorted(set(self.space) & set(self.fixed))
        if both:
            raise ParamError("fixed", f"{', '.join(both)}: searched in space and fixed here")


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
    "tuner": Tuner,
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
    "tuner": "register_tuners",
    "trainer": "register_trainers",
    "evaluator": "register_evaluators",
    "exporter": "register_exporters",
}
