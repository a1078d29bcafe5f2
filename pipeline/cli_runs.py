"""``pipeline runs [PIPELINE]`` and ``pipeline show RUN``: the stored runs, and one run's
steps, counts, metrics and artifacts."""

from __future__ import annotations

from typing import Any

import click

from .artifacts import Run, list_runs, open_run
from .cli_group import AppState, echo_json, json_option


@click.command()
@click.argument("pipeline", required=False)
@json_option()
@click.pass_obj
def runs(state: AppState, pipeline: str | None, as_json: bool) -> None:
    """List runs (of one PIPELINE if given), oldest first."""
    found = list_runs(state.runs_dir, pipeline)
    rows = [_run_row(r) for r in found]
    if as_json:
        echo_json(rows)
        return
    if not rows:
        click.echo("no runs yet")
        return
    from rich.table import Table

    from .console import make_console

    table = Table(title="runs")
    for column in ("pipeline", "run", "status", "started", "steps"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            row["pipeline"],
            row["run_id"],
            row["status"],
            row["started"],
            f"{len(row['completed_steps'])}/{len(row['steps'])}",
        )
    make_console(stderr=False).print(table)


@click.command()
@click.argument("run_ref", metavar="RUN")
@json_option()
@click.pass_obj
def show(state: AppState, run_ref: str, as_json: bool) -> None:
    """Show a run: its steps, counts, metrics and artifacts (RUN: folder, PIPELINE/ID or name)."""
    run_ = open_run(run_ref, state.runs_dir)
    steps = [run_.artifact(s).meta | {"path": str(run_.path / s)} for s in run_.steps()]
    if as_json:
        echo_json(_run_row(run_) | {"path": str(run_.path), "step_details": steps})
        return
    from .console import format_counts, format_metrics

    click.echo(f"{run_.pipeline}/{run_.run_id}: {run_.status}  ({run_.path})")
    if run_.info.get("error"):
        click.echo(f"  error: {run_.info['error']}")
    for meta in steps:
        reused = f", reused from {meta['reused_from']}" if meta.get("reused_from") else ""
        click.echo(f"  {meta['step']} ({meta['component']}){reused}: {meta.get('seconds', 0)}s")
        for line in (
            format_counts(meta.get("counts", {}), 10),
            format_metrics(meta.get("metrics", {}), 10),
        ):
            if line:
                click.echo(f"      {line}")
        if meta.get("tuned"):  # params_from: the tune step's best values this step ran with
            tuned = meta["tuned"]
            values = ", ".join(f"{k}={v}" for k, v in tuned.get("params", {}).items())
            click.echo(f"      tuned by {tuned.get('from')} (trial {tuned.get('trial')}): {values}")
    report = run_.path / "report.html"
    if report.exists():
        click.echo(f"  report: {report}")


def _run_row(run_: Run) -> dict[str, Any]:
    return {
        "pipeline": run_.pipeline,
        "run_id": run_.run_id,
        "status": run_.status,
        "started": run_.info.get("started", ""),
        "finished": run_.info.get("finished", ""),
        "steps": run_.info.get("steps", []),
        "completed_steps": run_.steps(),
        "path": str(run_.path),
    }
