"""Parameter search as a pipeline step: ``optuna_tuner`` (Optuna, SQLite storage, trial processes).

Modules: ``tuner`` (the component and its parameters), ``search`` (the study: resume, budget,
the loop that asks and tells), ``pool`` (trial processes), ``trial`` (what runs in one),
``space`` (search-space dimensions as Optuna distributions) and ``report`` (trials.jsonl, best
trials, importances, plots). Importing this package does not import Optuna or TensorFlow.
"""

from __future__ import annotations

from typing import Any

from beamline import hookimpl

from .tuner import OptunaTuner


@hookimpl
def register_tuners(register: Any) -> None:
    """Register the Optuna tuner."""
    register(OptunaTuner)
