"""The ``continuous:`` section of a pipeline file: when cycles start and what they train on.

A pipeline file with this section and a stream as its ingest step runs as a long-lived loop
(``beamline.continuous``). Checked when the file loads, with its line, like a step's
parameters.
"""

from __future__ import annotations

from dataclasses import dataclass

from .component_base import ParamError, param
from .kinds import Split


@dataclass(kw_only=True)
class ContinuousSettings:
    """Triggers, the rolling window, warm start and the steps a cycle plays roles with."""

    every_examples: int = param(
        0, help="start a cycle once this many new examples are stored (0: off)", ge=0
    )
    every_seconds: float = param(
        0.0, help="start a cycle this often while new examples arrived (0: off)", ge=0
    )
    on_drift: bool = param(True, help="start a cycle when a new window raised a drift alarm")
    windows: int = param(3, help="a cycle trains on the newest this many windows", ge=1)
    warm_start: bool = param(
        True, help="start each fit from the blessed model's weights (false: from scratch)"
    )
    freeze: list[str] = param([], help="layers kept at the blessed model's weights (patterns)")
    classes: list[str] = param(
        [], help="the class names, fixed across cycles ([]: those of the first cycle's windows)"
    )
    split: Split = param(Split(), help="how a cycle's examples are split (a stable hash)")
    trainer: str = param("train", help="the step that fits the candidate")
    evaluator: str = param("evaluate", help="the step that scores it on the held-out split")
    exporter: str = param("export", help="the step that exports (and publishes) a winner")
    metric: str = param("accuracy", help="what candidate and blessed model are compared on")
    min_gain: float = param(0.0, help="how much the candidate must beat the blessed model by", ge=0)
    max_cycles: int = param(0, help="stop after this many cycles (0: no limit)", ge=0)
    poll_seconds: float = param(1.0, help="how often the store is looked at (seconds)", gt=0)

    def check(self) -> None:
        """At least one trigger is on."""
        if not (self.every_examples or self.every_seconds or self.on_drift):
            raise ParamError(
                "", "set a trigger: every_examples, every_seconds or on_drift (all are off)"
            )
