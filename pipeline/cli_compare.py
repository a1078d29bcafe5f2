"""``pipeline compare RUN_A [RUN_B]``: the parameter, metric and per-class changes between runs."""

from __future__ import annotations

import click

from .artifacts import open_run
from .cli_group import AppState, echo_json, json_option
from .errors import SpecError


@click.command()
@click.argument("run_a", metavar="RUN_A")
@click.argument("run_b", metavar="[RUN_B]", required=False)
@json_option()
@click.pass_obj
def compare(state: AppState, run_a: str, run_b: str | None, as_json: bool) -> None:
    """Compare two runs: parameters that differ, metrics and per-class changes from A to B.

    A run is a folder, PIPELINE/RUN_ID, a run id or a pipeline name (its latest run), as for
    'pipeline show'. Without RUN_B, RUN_A is compared with the run of its pipeline before it."""
    from .compare import compare_runs, comparison_text, previous_run

    b = open_run(run_b if run_b is not None else run_a, state.runs_dir)
    if run_b is None:
        a = previous_run(b)
        if a is None:
            raise SpecError(
                f"run {b.pipeline}/{b.run_id} has no earlier run to compare with; give RUN_B"
            )
    else:
        a = open_run(run_a, state.runs_dir)
    diffs = compare_runs(a, b)
    if as_json:
        echo_json(
            {
                "a": {"pipeline": a.pipeline, "run_id": a.run_id, "path": str(a.path)},
                "b": {"pipeline": b.pipeline, "run_id": b.run_id, "path": str(b.path)},
                "steps": [d.as_dict() for d in diffs],
            }
        )
        return
    click.echo(comparison_text(a, b, diffs))
