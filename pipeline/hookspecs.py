"""Every hook a plugin can implement: the one file a plugin author reads.

Registration hooks receive a ``register`` callable; call it once per component class::

    from beamline import hookimpl

    @hookimpl
    def register_models(register):
        register(TinyCnn)

A component class subclasses the base class of its kind (``beamline.Model``,
``beamline.Source``, ...), implements the abstract methods of that base (its contract:
``Model.build``, ``Transform.stage``, ``InputPipeline.dataset``, a step's ``run``...), has a
``name``, a docstring users see in ``pipeline plugins``, and typed parameters declared as
annotated class attributes with ``param`` (limits, data paths, typed ``Input`` steps).
Registration refuses a class that misses part of its contract, naming the plugin. Registering
must be cheap: import TensorFlow or Beam inside the methods that run, never at module top.

Hooks are called through pluggy's relay, one plugin at a time: a lifecycle hook that raises is
reported with its plugin's name and the run goes on; a registration hook that raises stops
loading with its plugin's name.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    import click

    from .artifacts import Run
    from .components import (
        DiscriminatorModel,
        Evaluator,
        Exporter,
        GeneratorModel,
        InputPipeline,
        Model,
        Source,
        Stream,
        Trainer,
        Transform,
        Tuner,
        Validator,
    )
    from .progress import StepRecord
    from .spec import Step

hookspec = pluggy.HookspecMarker("pipeline")


@hookspec
def register_sources(register: Callable[[type[Source]], None]) -> None:
    """Register source components: Beam readers that turn a bounded data set (files, rows)
    into records.

    A source only reads (``Source.read``); the core's ingest engine runs it as a step: it chains
    the source's ``transforms``, removes duplicates, splits and writes sharded TFRecords of
    ``tf.train.Example`` with a rejected-records output."""


@hookspec
def register_streams(register: Callable[[type[Stream]], None]) -> None:
    """Register stream components: readers of unbounded data with event times (a watched
    folder, a message broker).

    A stream reads timestamped records (``Stream.read``) and acknowledges what the core has
    durably written (``Stream.acknowledge``); the core's streaming engine runs it as a step,
    window by window: transforms, duplicates within a window, shards, rejected records and
    statistics per event-time window."""


@hookspec
def register_transforms(register: Callable[[type[Transform]], None]) -> None:
    """Register transform components: Beam stages from records to records plus rejected records."""


@hookspec
def register_validators(register: Callable[[type[Validator]], None]) -> None:
    """Register validator components: steps that compute statistics, check a schema, gate a run."""


@hookspec
def register_input_pipelines(register: Callable[[type[InputPipeline]], None]) -> None:
    """Register input pipeline components: builders of ``tf.data.Dataset`` from examples."""


@hookspec
def register_models(
    register: Callable[[type[Model] | type[GeneratorModel] | type[DiscriminatorModel]], None],
) -> None:
    """Register model components: builders that return a ``keras.Model`` for a feature spec.

    Subclasses of ``beamline.Model`` (classifiers and regressions), ``beamline.GeneratorModel``
    and ``beamline.DiscriminatorModel`` (GANs) all register here; the base class is the kind."""


@hookspec
def register_tuners(register: Callable[[type[Tuner]], None]) -> None:
    """Register tuner components: steps that search parameters of a train step (its trials run
    the train step's component with the values tried) and write the best trial's values."""


@hookspec
def register_trainers(register: Callable[[type[Trainer]], None]) -> None:
    """Register trainer components: steps that fit a model built from an input pipeline."""


@hookspec
def register_evaluators(register: Callable[[type[Evaluator]], None]) -> None:
    """Register evaluator components: steps that compute metrics and bless (or not) a model."""


@hookspec
def register_exporters(register: Callable[[type[Exporter]], None]) -> None:
    """Register exporter components: steps that write a servable model taking raw input."""


@hookspec
def register_commands(cli: click.Group) -> None:
    """Add commands to the ``pipeline`` click group ``cli`` (call ``cli.add_command``)."""


@hookspec
def before_pipeline_run(run: Run) -> None:
    """Called once a run directory exists, before its first step; ``run`` is a ``beamline.Run``."""


@hookspec
def after_pipeline_run(run: Run, results: list[StepRecord]) -> None:
    """Called after a run ends successfully, with the ``StepRecord`` of every step."""


@hookspec
def before_step_run(run: Run, step: Step) -> None:
    """Called before a step executes (not when reused); ``step`` is a ``beamline.spec.Step``."""


@hookspec
def after_step_run(run: Run, step: Step, record: StepRecord) -> None:
    """Called after a step completed or was reused; ``record`` has its counts, metrics, timings."""


@hookspec
def on_step_error(run: Run, step: Step, error: BaseException) -> None:
    """Called when a step fails, before the run stops; ``error`` is the exception raised."""
