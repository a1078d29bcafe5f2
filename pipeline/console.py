"""A terminal reporter: a live line per running step and a summary table at the end."""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from .progress import Reporter, StepRecord


def format_counts(counts: dict[str, Any], limit: int = 3) -> str:
    """``read 1797, written 1790, rejected 7`` (the main counts first)."""
    keys = [k for k in ("read", "written", "rejected") if k in counts]
    keys += [k for k in counts if k not in keys]
    return ", ".join(f"{k} {counts[k]}" for k in keys[:limit])


def format_metrics(metrics: dict[str, Any], limit: int = 3) -> str:
    """``accuracy 0.981, loss 0.07``."""
    parts = []
    for key, value in list(metrics.items())[:limit]:
        parts.append(f"{key} {value:.4g}" if isinstance(value, float) else f"{key} {value}")
    return ", ".join(parts)


class ConsoleReporter(Reporter):
    """Shows progress on stderr (so ``--json`` output on stdout stays clean)."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self._live: Live | None = None
        self._step = ""
        self._component = ""
        self._started = 0.0
        self._detail = ""

    def run_started(self, run: Any, steps: list[str]) -> None:
        """Print where the run lives."""
        self.console.print(f"[bold]run[/] {run.pipeline}/{run.run_id}  ({len(steps)} steps)")

    def step_started(self, step: str, component: str) -> None:
        """Start a live status line for the step."""
        self._step, self._component, self._detail = step, component, ""
        self._started = time.perf_counter()
        if self.console.is_terminal:
            self._live = Live(
                self._line(),
                console=self.console,
                refresh_per_second=4,
                transient=True,
                get_renderable=self._line,
            )
            self._live.start()
        else:
            self.console.print(f"  … {step} ({component}) running")

    def step_progress(self, step: str, completed: float, total: float | None, message: str) -> None:
        """Update the live line with progress."""
        done = f"{completed:g}/{total:g}" if total else f"{completed:g}"
        self._detail = f"{done} {message}".strip()
        if self._live is None:
            self.console.print(f"    {step}: {self._detail}")

    def step_message(self, step: str, message: str) -> None:
        """Print a message from the step above the live line."""
        self.console.print(f"    {step}: {message}")

    def step_finished(self, record: StepRecord) -> None:
        """Replace the live line with the step's outcome."""
        if self._live is not None:
            self._live.stop()
            self._live = None
        mark = {"ran": "[green]✓[/]", "reused": "[cyan]↺[/]", "failed": "[red]✗[/]"}[record.status]
        detail = "; ".join(
            p for p in (format_counts(record.counts), format_metrics(record.metrics)) if p
        )
        self.console.print(
            f"  {mark} {record.step} ({record.component}) {record.status} "
            f"in {record.seconds:.1f}s" + (f"  [dim]{detail}[/]" if detail else "")
        )

    def run_finished(self, run: Any, records: list[StepRecord], error: Exception | None) -> None:
        """Print the summary table."""
        if self._live is not None:
            self._live.stop()
            self._live = None
        self.console.print(summary_table(records))
        status = "[red]failed[/]" if error else "[green]succeeded[/]"
        self.console.print(f"run {run.pipeline}/{run.run_id} {status}: {run.path}")

    def _line(self) -> Text:
        elapsed = time.perf_counter() - self._started
        return Text.assemble(
            ("  ⠿ ", "yellow"),
            f"{self._step} ({self._component}) ",
            (f"{elapsed:5.1f}s ", "dim"),
            self._detail,
        )


def summary_table(records: list[StepRecord]) -> Table:
    """The table printed at the end of a run."""
    table = Table(title="summary", title_justify="left")
    for column in ("step", "component", "status", "seconds", "counts", "metrics"):
        table.add_column(column, justify="right" if column == "seconds" else "left")
    for r in records:
        table.add_row(
            r.step,
            r.component,
            r.status,
            f"{r.seconds:.1f}",
            format_counts(r.counts),
            format_metrics(r.metrics),
        )
    return table
