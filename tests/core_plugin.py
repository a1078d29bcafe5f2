"""Light components for testing the core: no TensorFlow, fast, and observable from outside.

Loaded by pipeline files through ``plugins: [core_plugin]``; each run of a step appends a line
to ``$CORE_PLUGIN_LOG`` so tests can tell which steps really ran.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from beamline import (
    Evaluator,
    Examples,
    GateFailed,
    Input,
    Model,
    Source,
    StepResult,
    TrainedModel,
    Trainer,
    hookimpl,
    param,
)

#: A three-step pipeline of these components (data -> train -> again), for runner tests.
NUMBERS_PIPELINE = """
name: numbers
plugins: [core_plugin]
steps:
  data:
    component: numbers
    count: 6
    reject_every: 5
  train:
    component: fit
    examples: data
  again:
    component: fit
    examples: train
"""


def _log(event: str) -> None:
    log = os.environ.get("CORE_PLUGIN_LOG")
    if log:
        with open(log, "a", encoding="utf-8") as handle:
            handle.write(event + "\n")


class Numbers(Source):
    """Writes the numbers 0..count-1, rejecting the multiples of ``reject_every``."""

    name = "numbers"
    count: int = param(10, help="how many numbers to read")
    reject_every: int = param(0, help="reject multiples of this (0: none)")
    lose: int = param(0, help="silently drop this many records (to test the accounting check)")

    def run(self, ctx):
        _log(f"run {ctx.step.name}")
        kept = [
            n for n in range(self.count) if not (self.reject_every and n % self.reject_every == 0)
        ]
        written = kept[: len(kept) - self.lose] if self.lose else kept
        (ctx.output_dir / "numbers.json").write_text(json.dumps(written))
        return StepResult(
            counts={"read": self.count, "written": len(written), "rejected": self.count - len(kept)}
        )


class Scale(Model):
    """Multiplies by a factor."""

    name = "scale"
    factor: float = param(2.0, help="the factor", gt=0)

    def build(self, inputs, num_classes):
        return None  # the fixtures' trainer multiplies by the factor itself


class Fit(Trainer):
    """Scales the numbers of ``examples``; waits for ``wait_for`` to vanish if set."""

    name = "fit"
    examples: Input = param(help="the step with numbers.json")
    model: Model = param(Scale(), help="how to transform")
    wait_for: str = param("", help="a file whose presence holds the step (for kill tests)")
    fail: bool = param(False, help="raise instead of working")
    gate: bool = param(False, help="stop the run as a validation gate would")

    def run(self, ctx):
        _log(f"run {ctx.step.name}")
        if self.fail:
            raise ValueError("the fixture was asked to fail")
        if self.gate:
            raise GateFailed("feature 'n': drift 0.5 above threshold 0.1")
        numbers = json.loads(ctx.input("examples").file("numbers.json").read_text())
        (ctx.output_dir / "started").write_text("yes")
        while self.wait_for and Path(self.wait_for).exists():
            time.sleep(0.05)
        scaled = [n * self.model.factor for n in numbers]
        (ctx.output_dir / "scaled.json").write_text(json.dumps(scaled))
        (ctx.output_dir / "numbers.json").write_text(json.dumps(scaled))
        ctx.progress(1, 1, "done")
        return StepResult(metrics={"total": float(sum(scaled))})


class Score(Evaluator):
    """Sums the scaled numbers of a trained ``model``; typed inputs for the spec tests."""

    name = "score"
    model: Input[TrainedModel] = param(help="the trainer step whose scaled numbers to sum")
    examples: Input[Examples] | None = param(None, help="an ingest step (unused)")

    def run(self, ctx):
        scaled = json.loads(ctx.input("model").file("scaled.json").read_text())
        return StepResult(metrics={"total": float(sum(scaled))})


@hookimpl
def before_pipeline_run(run):
    _log("before_pipeline_run")


@hookimpl
def before_step_run(run, step):
    _log(f"before_step_run {step.name}")


@hookimpl
def after_step_run(run, step, record):
    _log(f"after_step_run {step.name} {record.status}")


@hookimpl
def on_step_error(run, step, error):
    _log(f"on_step_error {step.name} {type(error).__name__}")


@hookimpl
def after_pipeline_run(run, results):
    _log(f"after_pipeline_run {len(results)}")


@hookimpl
def register_sources(register):
    register(Numbers)


@hookimpl
def register_models(register):
    register(Scale)


@hookimpl
def register_trainers(register):
    register(Fit)


@hookimpl
def register_evaluators(register):
    register(Score)
