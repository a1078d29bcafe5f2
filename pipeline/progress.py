"""How a run tells the world what it is doing; the CLI shows it with rich, the API logs it."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("beamline")


@dataclass
class StepRecord:
    """The outcome of one step in a run: status, counts, metrics, timing and where it lives."""

    step: str
    component: str
    status: str  # "ran", "reused" or "failed"
    seconds: float = 0.0
    counts: dict[str, int] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    summary: str = ""
    path: str = ""
    fingerprint: str = ""

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary."""
        return dict(self.__dict__)


class Reporter:
    """Receives run events; the default implementation logs them."""

    def run_started(self, run: Any, steps: list[str]) -> None:
        """A run began with these steps."""
        log.info("run %s started: %s", run.path, ", ".join(steps))

    def step_started(self, step: str, component: str) -> None:
        """A step began executing."""
        log.info("step %s (%s) started", step, component)

    def step_progress(self, step: str, completed: float, total: float | None, message: str) -> None:
        """A running step reported progress."""
        log.debug("step %s: %s/%s %s", step, completed, total, message)

    def step_message(self, step: str, message: str) -> None:
        """A running step has something to say."""
        log.info("step %s: %s", step, message)

    def step_finished(self, record: StepRecord) -> None:
        """A step completed, was reused or failed."""
        log.info("step %s %s in %.1fs", record.step, record.status, record.seconds)

    def run_finished(self, run: Any, records: list[StepRecord], error: Exception | None) -> None:
        """The run ended."""
        log.info("run %s %s", run.path, "failed" if error else "succeeded")
