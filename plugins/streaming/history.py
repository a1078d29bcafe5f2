"""The history view of a continuous loop: accuracy, drift and data volume per cycle.

Written by the ``champion`` step of each cycle into its ``report/`` (``cycle_history.png`` and a
``summary.html`` table), so every cycle's run report shows the loop so far, this cycle last.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from beamline.atomic import atomic_write


def history_rows(cycles: list[dict[str, Any]], current: dict[str, Any]) -> list[dict[str, Any]]:
    """The earlier cycles (from ``loop.json``) and this one, oldest first."""
    rows = [c for c in cycles if c.get("cycle") != current.get("cycle")]
    return [*rows, current]


def plot_cycles(rows: list[dict[str, Any]], metric: str, path: Path) -> None:
    """Three panels over the cycles: candidate and blessed ``metric``, drift alarms, examples."""
    from beamline_plugins.training.plots import pyplot, save_figure

    plt = pyplot()
    x = [r["cycle"] for r in rows]
    fig, axes = plt.subplots(3, 1, figsize=(6, 6.5), sharex=True)
    for key, style, name in (
        (f"candidate_{metric}", "o-", "candidate"),
        (f"blessed_{metric}", "s--", "blessed before"),
    ):
        points = [(c, r[key]) for c, r in zip(x, rows, strict=True) if r.get(key) is not None]
        if points:
            axes[0].plot(*zip(*points, strict=True), style, label=name)
    key = f"candidate_{metric}"
    won = [
        (c, r[key])
        for c, r in zip(x, rows, strict=True)
        if r.get("outcome") == "blessed" and r.get(key) is not None
    ]
    if won:
        axes[0].plot(*zip(*won, strict=True), "*", markersize=14, label="blessed", color="gold")
    axes[0].set_ylabel(metric)
    axes[0].legend(loc="best", fontsize=8)
    drift = [r.get("drift_alarms", 0) or 0 for r in rows]
    axes[1].bar(x, drift, color="tab:red")
    axes[1].set_ylim(0, max(1, *drift) * 1.15)
    axes[1].set_ylabel("drift alarms")
    axes[2].bar(x, [r.get("examples", 0) for r in rows], color="tab:blue")
    axes[2].set_ylabel("examples")
    axes[2].set_xlabel("cycle")
    axes[2].set_xticks(x)
    save_figure(fig, path)


def history_table(rows: list[dict[str, Any]], metric: str) -> str:
    """An HTML fragment: one row per cycle."""
    head = [
        "cycle",
        "trigger",
        "windows",
        "examples",
        "drift alarms",
        f"candidate {metric}",
        f"blessed {metric}",
        "outcome",
        "run",
    ]
    lines = [
        "<h3>Continuous training: cycles</h3>",
        "<table>",
        "<tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr>",
    ]
    for r in rows:
        cells = [
            r.get("cycle"),
            r.get("trigger"),
            len(r.get("windows", [])),
            r.get("examples"),
            r.get("drift_alarms"),
            _number(r.get(f"candidate_{metric}")),
            _number(r.get(f"blessed_{metric}")),
            r.get("outcome", "this cycle"),
            r.get("run", ""),
        ]
        lines.append("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in cells) + "</tr>")
    lines.append("</table>")
    return "\n".join(lines) + "\n"


def write_history(out: Path, rows: list[dict[str, Any]], metric: str) -> None:
    """``report/cycle_history.png`` and ``report/summary.html`` under ``out``."""
    plot_cycles(rows, metric, out / "report" / "cycle_history.png")
    atomic_write(out / "report" / "summary.html", history_table(rows, metric))


def _number(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, int | float) else "-"
