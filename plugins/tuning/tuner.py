"""The ``optuna_tuner`` step: search parameters of a train step with Optuna.

Artifact::

    best.json                 the best trial's values (what ``params_from`` takes), its value
    trials.jsonl              every trial: number, state, values, metric per epoch, seconds
    study.db                  the Optuna study (SQLite; ``optuna.load_study(study_name="search",
                              storage="sqlite:///.../study.db")``)
    report/summary.html       the best trials and the parameter importances as tables
    report/*.png              optimisation history, metric per epoch, parameter importances

While it runs, the study lives in ``runs/<pipeline>/.scratch/<step>-<digest>/study.db`` (the
digest covers the step's parameters, its target's and its inputs' fingerprints): a killed search
started again keeps its finished trials, and the trials that were running are retried with the
same values. The folder is removed once the step completes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from beamline import ParamError, StepContext, StepResult, Tuner, param
from beamline.tuning import entries, parse_dimension

#: Metrics a search minimises when ``direction`` is ``auto`` (anything else is maximised).
LOWER_IS_BETTER = ("loss", "mae", "rmse", "mse", "error", "perplexity")


@dataclass(kw_only=True)
class Objective:
    """What a trial is scored by: a metric its train step reports, and its direction."""

    metric: str = param(
        "val_loss", help="a metric of the train step: val_loss, val_accuracy, val_mae..."
    )
    direction: Literal["auto", "minimize", "maximize"] = param(
        "auto", help="auto: minimize losses and errors, maximize anything else"
    )

    def resolved(self) -> str:
        """``minimize`` or ``maximize``."""
        if self.direction != "auto":
            return self.direction
        lower = any(word in self.metric for word in LOWER_IS_BETTER)
        return "minimize" if lower else "maximize"


class OptunaTuner(Tuner):
    """Search a train step's parameters with Optuna: parallel trial processes, pruning, resume.

    Each trial runs the target step's component with the values tried, in its own process
    (its own TensorFlow; the memory goes back to the system when the trial ends), reports the
    objective after every epoch so that the pruner stops unpromising trials, and is recorded in
    an SQLite study that a killed search resumes from."""

    name = "optuna_tuner"
    objective: Objective = param(Objective(), help="the metric to optimise and its direction")
    trials: int = param(20, help="trials to finish (complete, pruned or failed); 0: no limit", ge=0)
    seconds: float = param(0.0, help="no new trial after this many seconds (0: no limit)", ge=0)
    workers: int = param(1, help="trials run at once, each in its own process", ge=1)
    threads: int = param(
        0, help="TensorFlow threads per trial process (0: the CPU cores divided by workers)", ge=0
    )
    sampler: Literal["tpe", "random"] = param("tpe", help="how values are drawn")
    pruner: Literal["median", "halving", "none"] = param(
        "median", help="median: stop a trial below the median; halving: successive halving"
    )
    startup_trials: int = param(
        2, help="median pruner: trials that finish before any is pruned", ge=0
    )
    warmup_epochs: int = param(
        1, help="epochs a trial runs before it may be pruned (halving: its first rung)", ge=0
    )
    start_with: list[dict[str, Any]] = param(
        [], help="trials to run first (searched parameter -> value): the hand-picked settings"
    )
    seed: int = param(0, help="seed of the sampler")

    def check(self) -> None:
        """A budget is given; ``start_with`` entries name searched parameters, within range."""
        super().check()
        if not self.trials and not self.seconds:
            raise ParamError("trials", "give a budget: trials > 0, seconds > 0, or both")
        dims = {}
        for key, _, entry in entries(self.space):
            try:
                dims[key] = parse_dimension(key, entry)
            except ValueError:
                continue  # reported at its own line when the file's steps are linked
        for index, entry in enumerate(self.start_with):
            for key, value in entry.items():
                where = f"start_with.{index}.{key}"
                dim = dims.get(key)
                if dim is None:
                    raise ParamError(where, f"'{key}' is not searched (space: {', '.join(dims)})")
                if dim.kind == "choice":
                    if value not in dim.choices:
                        raise ParamError(where, f"{value!r} is not one of the choices")
                elif not isinstance(value, int | float) or not dim.low <= value <= dim.high:
                    raise ParamError(where, f"{value!r} is outside [{dim.low}, {dim.high}]")

    def run(self, ctx: StepContext) -> StepResult:
        """Run (or resume) the search and write the artifact (see the module docstring)."""
        from .search import run_search

        return run_search(self, ctx)
