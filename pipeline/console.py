"""A terminal reporter: progress on stderr, the summary table and the outcome on stdout.

On a terminal a running step has a live line; elsewhere (a log file, a pipe, CI) every line is
printed whole, never wrapped in the middle of a metric.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from .progress import Reporter, StepRecord

#: Values steps report with their metrics that are settings, not measures of quality: kept in
#: ``meta.json``, not shown (a cosine schedule's last learning rate reads as "learning_rate 0").
HIDDEN_METRICS = ("learning_rate",)
#: Rejected records whose reasons a finished step shows.
SHOWN_REJECTS = 3
#: The width of a console that is not a terminal: wide enough for the summary table's rows.
PLAIN_WIDTH = 200
MARKS = {"ran": ("✓", "green"), "reused": ("↺", "cyan"), "failed": ("✗", "red")}


def make_console(stderr: bool) -> Console:
    """A rich console on stderr or stdout; one that is not a terminal gets a wide fixed width."""
    console = Console(stderr=stderr)
    return console if console.is_terminal else Console(stderr=stderr, width=PLAIN_WIDTH)


def format_counts(counts: dict[str, Any], limit: int = 3) -> str:
    """``read 1797, written 1790, rejected 7`` (the main counts first)."""
    keys = [k for k in ("read", "written", "rejected") if k in counts]
    keys += [k for k in counts if k not in keys]
    return ", ".join(f"{k} {counts[k]}" for k in keys[:limit])


def format_metrics(metrics: dict[str, Any], limit: int = 3) -> str:
    """``accuracy 0.981, loss 0.07`` (settings such as the learning rate left out)."""
    shown = [(k, v) for k, v in metrics.items() if k not in HIDDEN_METRICS][:limit]
    return ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in shown)


def rejected_preview(artifact: str | Path, limit: int = SHOWN_REJECTS) -> tuple[list[str], Path]:
    """The first ``limit`` rejected records of an artifact as ``source: reason``, and the folder
    that holds them all (``rejected/`` of an ingest step). Reads only as many lines as it shows."""
    from .examples import REJECTED_DIR

    folder = Path(artifact) / REJECTED_DIR
    lines: list[str] = []
    for file in sorted(folder.glob("*.jsonl")):
        with file.open(encoding="utf-8") as handle:
            for line in handle:
                if len(lines) == limit:
                    return lines, folder
                if line.strip():
                    entry = json.loads(line)
                    lines.append(f"{entry.get('source', '?')}: {entry.get('reason', '?')}")
    return lines, folder


class ConsoleReporter(Reporter):
    """Shows progress on ``console`` (stderr) and the summary on ``results`` (stdout).

    With ``--json`` the CLI passes the stderr console for both, so stdout holds only JSON. The
    run (``run``) and every finished step (``records``, failed ones included) are kept."""

    def __init__(self, console: Console | None = None, results: Console | None = None) -> None:
        self.console = console or make_console(stderr=True)
        self.results = results or make_console(stderr=False)
        self.run: Any = None
        self.steps: list[str] = []
        self.records: list[StepRecord] = []
        self._live: Live | None = None
        self._step = ""
        self._component = ""
        self._started = 0.0
        self._detail = ""

    def run_started(self, run: Any, steps: list[str]) -> None:
        """Print where the run lives."""
        self.run, self.steps, self.records = run, list(steps), []
        self._print(
            Text.assemble(("run", "bold"), f" {run.pipeline}/{run.run_id}  ({len(steps)} steps)")
        )

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
            self._print(Text(f"  … {step} ({component}) running"))

    def step_progress(self, step: str, completed: float, total: float | None, message: str) -> None:
        """Update the live line with progress (or print it, off a terminal)."""
        done = f"{completed:g}/{total:g}" if total else f"{completed:g}"
        self._detail = f"{done} {message}".strip()
        if self._live is None:
            self._print(Text(f"    {step}: {self._detail}"))

    def step_message(self, step: str, message: str) -> None:
        """Print a message from the step above the live line."""
        self._print(Text(f"    {step}: {message}"))

    def step_finished(self, record: StepRecord) -> None:
        """Replace the live line with the step's outcome, and the first rejected records."""
        self._stop_live()
        self.records.append(record)
        mark, style = MARKS.get(record.status, ("·", "dim"))
        detail = "; ".join(
            p for p in (format_counts(record.counts), format_metrics(record.metrics)) if p
        )
        self._print(
            Text.assemble(
                (f"  {mark} ", style),
                f"{record.step} ({record.component}) {record.status} in {record.seconds:.1f}s",
                (f"  {detail}" if detail else "", "dim"),
            )
        )
        if record.counts.get("rejected") and record.path:
            self._show_rejected(record)

    def run_finished(self, run: Any, records: list[StepRecord], error: Exception | None) -> None:
        """Print the summary table (failed and unreached steps included) and the outcome."""
        self._stop_live()
        if not Path(run.path).exists():  # refused before any step: the executor removed it
            self._print(Text("  no step ran: the run folder was removed", style="dim"))
            return
        self.results.print(summary_table(self._summary_records(records, error)))
        outcome = Text.assemble(
            f"run {run.pipeline}/{run.run_id} ",
            ("failed", "red") if error else ("succeeded", "green"),
            f": {run.path}",
        )
        self.results.print(outcome, soft_wrap=True)

    def _summary_records(
        self, records: list[StepRecord], error: Exception | None
    ) -> list[StepRecord]:
        shown = {r.step: r for r in [*records, *self.records]}
        if error is not None:
            missing = [s for s in self.steps if s not in shown]
            for i, step in enumerate(missing):
                shown[step] = StepRecord(step, "", "failed" if i == 0 else "not run")
        order = {s: i for i, s in enumerate(self.steps)}
        return sorted(shown.values(), key=lambda r: order.get(r.step, len(order)))

    def _show_rejected(self, record: StepRecord) -> None:
        try:
            reasons, folder = rejected_preview(record.path)
        except (OSError, ValueError):  # a step's own layout: the count alone is shown
            return
        if not reasons:
            return
        total = record.counts["rejected"]
        for reason in reasons:
            self._print(Text(f"    rejected {reason}", style="yellow"))
        every = f"all {total} rejected records" if total > len(reasons) else "rejected records"
        self._print(Text(f"    {every}: {folder}", style="dim"))

    def _print(self, text: Text) -> None:
        self.console.print(text, soft_wrap=True)

    def _stop_live(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None

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
        ran = r.status in ("ran", "reused") or r.seconds
        table.add_row(
            r.step,
            r.component,
            Text(r.status, style=MARKS.get(r.status, ("", "dim"))[1]),
            f"{r.seconds:.1f}" if ran else "",
            format_counts(r.counts),
            format_metrics(r.metrics),
        )
    return table
