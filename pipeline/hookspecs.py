"""Every hook a plugin can implement: the one file a plugin author reads.

Registration hooks receive a ``register`` callable; call it once per component class::

    from beamline import hookimpl

    @hookimpl
    def register_models(register):
        register(TinyCnn)

A component class subclasses the base class of its kind (``beamline.Model``,
``beamline.Source``, ...), has a ``name``, a docstring users see in ``pipeline plugins``, and
typed parameters declared as annotated class attributes. Registering must be cheap: import
TensorFlow or Beam inside the methods that run, never at module top.
"""

from __future__ import annotations

from typing import Any

import pluggy

hookspec = pluggy.HookspecMarker("pipeline")


@hookspec
def register_sources(register: Any) -> None:
    """Register source components: Beam readers that turn files or rows into records.

    A source is also the ingest step: the core chains its ``transforms``, splits and writes
    sharded TFRecords of ``tf.train.Example`` with a rejected-records output."""


@hookspec
def register_transforms(register: Any) -> None:
    """Register transform components: Beam stages from records to records plus rejected records."""


@hookspec
def register_validators(register: Any) -> None:
    """Register validator components: steps that compute statistics, check a schema, gate a run."""


@hookspec
def register_input_pipelines(register: Any) -> None:
    """Register input pipeline components: builders of ``tf.data.Dataset`` from examples."""


@hookspec
def register_models(register: Any) -> None:
    """Register model components: builders that return a ``keras.Model`` for a feature spec."""


@hookspec
def register_trainers(register: Any) -> None:
    """Register trainer components: steps that fit a model built from an input pipeline."""


@hookspec
def register_evaluators(register: Any) -> None:
    """Register evaluator components: steps that compute metrics and bless (or not) a model."""


@hookspec
def register_exporters(register: Any) -> None:
    """Register exporter components: steps that write a servable model taking raw input."""


@hookspec
def register_commands(cli: Any) -> None:
    """Add commands to the ``pipeline`` click group ``cli`` (call ``cli.add_command``)."""


@hookspec
def before_pipeline_run(run: Any) -> None:
    """Called once a run directory exists, before its first step; ``run`` is a ``beamline.Run``."""


@hookspec
def after_pipeline_run(run: Any, results: list[Any]) -> None:
    """Called after a run ends successfully, with the ``StepRecord`` of every step."""


@hookspec
def before_step_run(run: Any, step: Any) -> None:
    """Called before a step executes (not when reused); ``step`` is a ``beamline.spec.Step``."""


@hookspec
def after_step_run(run: Any, step: Any, record: Any) -> None:
    """Called after a step completed or was reused; ``record`` has its counts, metrics, timings."""


@hookspec
def on_step_error(run: Any, step: Any, error: BaseException) -> None:
    """Called when a step fails, before the run stops; ``error`` is the exception raised."""
