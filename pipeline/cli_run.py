"""``pipeline run FILE``: run a pipeline file's steps (reusing unchanged ones), or with
``--explain`` say which steps a run would reuse and what changed for the others."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import click

from .beam_options import RUNNER_NAMES
from .cli_group import AppState, echo_json, json_option
from .plugins import Plugins


@click.command()
@click.argument("pipeline_file", type=click.Path(path_type=Path))
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a value of the file, e.g. --set steps.train.epochs=3 (repeatable).",
)
@click.option(
    "--runner",
    type=click.Choice(RUNNER_NAMES),
    help="The Beam runner (overrides the file's runner.name).",
)
@click.option("--force", is_flag=True, help="Rerun every step, even unchanged ones.")
@click.option("--force-step", multiple=True, metavar="STEP", help="Rerun this step (repeatable).")
@click.option(
    "--only",
    metavar="STEP",
    help="Run this step alone; its inputs are taken from earlier runs.",
)
@click.option("--until", metavar="STEP", help="Run the file's steps up to and including STEP.")
@click.option(
    "--explain",
    is_flag=True,
    help="Run nothing: say which steps would be reused and what changed for the others.",
)
@json_option("Print the outcome as JSON on stdout.")
@click.pass_obj
def run(
    state: AppState,
    pipeline_file: Path,
    overrides: tuple[str, ...],
    runner: str | None,
    force: bool,
    force_step: tuple[str, ...],
    only: str | None,
    until: str | None,
    explain: bool,
    as_json: bool,
) -> None:
    """Run PIPELINE_FILE: reuse unchanged steps, run the others, print a summary."""
    from .console import ConsoleReporter
    from .executor import execute
    from .spec import load_spec

    _warn_failed_plugins(state.plugins)
    spec = load_spec(pipeline_file, state.plugins, overrides, runner)
    for name in force_step:
        spec.step(name)
    if explain:
        _explain(spec, state.runs_dir, True if force else force_step, only, until, as_json)
        return
    reporter = ConsoleReporter()
    if as_json:  # stdout holds the JSON object alone: the summary joins the progress on stderr
        reporter = ConsoleReporter(results=reporter.console)
    state.reporter = reporter
    if spec.continuous is not None and not (only or until):
        _run_loop(spec, state, reporter, as_json)
        return
    result = execute(
        spec,
        state.plugins,
        runs_dir=state.runs_dir,
        force=True if force else force_step,
        reporter=reporter,
        only=only,
        until=until,
    )
    if as_json:
        echo_json(
            {
                "exit_code": 0,
                "status": "succeeded",
                "message": f"run {spec.name}/{result.run.run_id} succeeded",
                "run": str(result.run.path),
                "pipeline": spec.name,
                "run_id": result.run.run_id,
                "steps": [r.as_dict() for r in result.records],
            }
        )


def _run_loop(spec: Any, state: AppState, reporter: Any, as_json: bool) -> None:
    """A file with ``continuous:``: the long-lived loop (``beamline.continuous``)."""
    from .continuous import run_loop

    console = getattr(reporter, "console", None)
    log = click.echo if console is None else partial(console.print, markup=False, highlight=False)
    outcome = run_loop(spec, state.plugins, runs_dir=state.runs_dir, reporter=reporter, log=log)
    blessed = sum(1 for c in outcome.cycles if c.get("outcome") == "blessed")
    message = f"loop {spec.name} ended: {len(outcome.cycles)} cycles, {blessed} blessed"
    if as_json:
        echo_json(
            {
                "exit_code": 0,
                "status": "succeeded",
                "message": message,
                "pipeline": spec.name,
                "state": str(outcome.state_file),
                "cycles": outcome.cycles,
            }
        )
        return
    click.echo(message)


def _explain(
    spec: Any,
    runs_dir: Path | None,
    force: bool | tuple[str, ...],
    only: str | None,
    until: str | None,
    as_json: bool,
) -> None:
    """``run --explain``: what a run would reuse and why the rest would run; nothing runs."""
    from .planner import explain, explanation_lines, explanation_summary

    steps = explain(spec, runs_dir=runs_dir, force=force, only=only, until=until)
    summary = explanation_summary(spec.name, steps)
    if as_json:
        echo_json(
            {
                "exit_code": 0,
                "status": "explained",
                "message": summary,
                "pipeline": spec.name,
                "run": None,
                "steps": [s.as_dict() for s in steps],
            }
        )
        return
    click.echo(summary)
    for line in explanation_lines(steps):
        click.echo(line)


def _warn_failed_plugins(loaded: Plugins) -> None:
    for name, error in loaded.failed.items():
        click.echo(f"warning: plugin '{name}' failed to load: {error}", err=True)
