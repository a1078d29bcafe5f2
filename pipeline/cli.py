"""The ``pipeline`` command: a thin face over ``beamline.api``.

Heavy libraries (TensorFlow, TFDV, Beam) are imported only when a step or a command needs them,
so ``pipeline --help`` and ``pipeline plugins`` start in a fraction of a second.

The error contract: exit 0 success, 1 a step failed, 2 bad input, 3 the validation gate stopped
the run, 130 interrupted. Results (the summary table, ``run ... succeeded: PATH``, listings) go to
stdout, progress, warnings and errors to stderr. With ``--json``, every outcome, failures
included, prints one JSON object on stdout with ``exit_code``, ``message`` and ``run`` (the run
folder, or null); listings print their data.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from .artifacts import Run, list_runs, open_run
from .beam_options import RUNNER_NAMES
from .cli_group import PipelineGroup
from .errors import PipelineError
from .plugins import Plugins, load_plugins
from .quiet import quiet
from .scaffold import PIPELINE_TEMPLATES

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class AppState:
    """Options of the command group, the plugins loaded for them, and the run being reported."""

    def __init__(self, plugins: Plugins, runs_dir: Path | None) -> None:
        self.plugins = plugins
        self.runs_dir = runs_dir
        self.reporter: Any = None

    @property
    def run_dir(self) -> Path | None:
        """The folder of the run this command started, if it has one (a refused run has none)."""
        run = getattr(self.reporter, "run", None)
        return run.path if run is not None and run.path.exists() else None


def _echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


@click.group(cls=PipelineGroup, context_settings=CONTEXT_SETTINGS)
@click.option(
    "--plugin",
    "plugin_modules",
    multiple=True,
    metavar="MODULE",
    help="Load a plugin module (repeatable; also $PIPELINE_PLUGINS, comma-separated).",
)
@click.option(
    "--disable-plugin",
    "disabled",
    multiple=True,
    metavar="NAME",
    help="Do not load the plugin NAME (repeatable; see 'pipeline plugins').",
)
@click.option(
    "--runs-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where runs are stored (default: $PIPELINE_RUNS_DIR or ./runs).",
)
@click.option(
    "--verbose",
    is_flag=True,
    help="Show TensorFlow's and Beam's own log lines (hidden by default).",
)
@click.version_option(package_name="beamline", prog_name="pipeline")
@click.pass_context
def cli(
    ctx: click.Context,
    plugin_modules: tuple[str, ...],
    disabled: tuple[str, ...],
    runs_dir: Path | None,
    verbose: bool,
) -> None:
    """Build datasets and train models from pipeline files.

    \b
    Exit codes: 0 success, 1 a step failed, 2 bad input (file, parameter, data
    folder, run, plugin, usage), 3 the validation gate stopped the run.
    Results go to stdout, progress and errors to stderr; with --json every
    outcome, failures included, is one JSON object on stdout.
    The options above may also follow the command (pipeline run F --runs-dir X).
    """
    quiet(verbose)
    if isinstance(ctx.obj, AppState):  # from main(), which reports errors with it
        ctx.obj.runs_dir = runs_dir
        return
    given = ctx.obj if isinstance(ctx.obj, Plugins) else None
    plugins = given or load_plugins(plugin_modules, disabled)
    ctx.obj = AppState(plugins, runs_dir)


@cli.command()
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
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON on stdout.")
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
        _echo_json(
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


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def plugins(state: AppState, as_json: bool) -> None:
    """List every component with its kind, plugin and one-line description."""
    loaded = state.plugins
    comps = loaded.registry.all()
    if as_json:
        _echo_json(
            {
                "components": [
                    {"name": c.name, "kind": c.kind, "plugin": c.plugin, "summary": c.summary}
                    for c in comps
                ],
                "plugins": [{"name": n, "source": s} for n, s in loaded.sources.items()],
                "failed": [{"name": n, "error": e} for n, e in loaded.failed.items()],
                "disabled": list(loaded.disabled),
            }
        )
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title="components")
    for column in ("name", "kind", "plugin", "description"):
        table.add_column(column)
    for c in comps:
        table.add_row(c.name, c.kind.replace("_", " "), c.plugin, c.summary)
    console = Console()
    console.print(table)
    console.print("plugins: " + ", ".join(f"{n} ({s})" for n, s in loaded.sources.items()))
    for name, error in loaded.failed.items():
        console.print(f"[red]failed to load plugin '{name}':[/] {error}", markup=True)


@cli.command()
@click.argument("component")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def describe(state: AppState, component: str, as_json: bool) -> None:
    """Show a component's documentation and parameters (type, default, help)."""
    info = state.plugins.registry.info(component)
    params = describe_params(info.cls)
    if as_json:
        _echo_json(
            {
                "name": info.name,
                "kind": info.kind,
                "plugin": info.plugin,
                "doc": info.cls.help_text,
                "parameters": params,
            }
        )
        return
    click.echo(f"{info.name} ({info.kind.replace('_', ' ')}, plugin '{info.plugin}')\n")
    click.echo(info.cls.help_text + "\n")
    click.echo("parameters:" if params else "parameters: none")
    for p in params:
        default = "required" if p["required"] else f"default {json.dumps(p['default'])}"
        limits = f"; {p['limits']}" if p["limits"] else ""
        click.echo(f"  {p['name']}: {p['type']} ({default}{limits})")
        if p["help"]:
            click.echo(f"      {p['help']}")


def describe_params(cls: type) -> list[dict[str, Any]]:
    """Name, type, default, limits and help of each parameter of a component class."""
    from .fingerprint import plain
    from .params import describe_limits, type_name

    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        if required:
            default = None
        elif f.default is not dataclasses.MISSING:
            default = plain(f.default)
        else:
            default = plain(f.default_factory())
        out.append(
            {
                "name": f.name,
                "type": type_name(hints[f.name]),
                "required": required,
                "default": default,
                "limits": describe_limits(f.metadata),
                "help": f.metadata.get("help", ""),
            }
        )
    return out


@cli.command()
@click.argument("pipeline", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def runs(state: AppState, pipeline: str | None, as_json: bool) -> None:
    """List runs (of one PIPELINE if given), oldest first."""
    found = list_runs(state.runs_dir, pipeline)
    rows = [_run_row(r) for r in found]
    if as_json:
        _echo_json(rows)
        return
    if not rows:
        click.echo("no runs yet")
        return
    from rich.console import Console
    from rich.table import Table

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
    Console().print(table)


@cli.command()
@click.argument("run_ref", metavar="RUN")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def show(state: AppState, run_ref: str, as_json: bool) -> None:
    """Show a run: its steps, counts, metrics and artifacts (RUN: folder, PIPELINE/ID or name)."""
    run_ = open_run(run_ref, state.runs_dir)
    steps = [run_.artifact(s).meta | {"path": str(run_.path / s)} for s in run_.steps()]
    if as_json:
        _echo_json(_run_row(run_) | {"path": str(run_.path), "step_details": steps})
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
    report = run_.path / "report.html"
    if report.exists():
        click.echo(f"  report: {report}")


@cli.group("init")
def init_group() -> None:
    """Write a new plugin package or pipeline file from a template."""


@init_group.command("plugin")
@click.argument("name")
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    help="Folder to create the package folder in (default: the current folder).",
)
@click.option("--json", "as_json", is_flag=True, help="Print what was written as JSON.")
def init_plugin(name: str, directory: Path, as_json: bool) -> None:
    """Write an installable plugin package NAME: one example transform, README and tests.

    NAME is the distribution name (e.g. acme-text); its package is NAME with '-' and '.' as
    '_'. An existing folder is never overwritten."""
    from .scaffold import create_plugin

    created = create_plugin(name, directory)
    if as_json:
        _echo_json(created.as_dict())
        return
    d = created.details
    click.echo(
        f"created plugin package {created.path}/ (plugin '{d['entry_point']}', "
        f"component '{d['component']}'):"
    )
    for file in created.files:
        click.echo(f"  {file}")
    click.echo(f"next:\n  cd {created.path}\n  pip install -e .    # then: pipeline plugins")
    click.echo("  python -m pytest    # its tests")


@init_group.command(
    "pipeline",
    epilog="\b\nTemplates:\n"
    + "\n".join(f"  {name}: {t.summary}" for name, t in PIPELINE_TEMPLATES.items()),
)
@click.argument("name")
@click.option(
    "--template",
    required=True,
    type=click.Choice(list(PIPELINE_TEMPLATES)),
    help="Kind of data: images or audio (class sub-folders), text or table (a CSV).",
)
@click.option(
    "--data",
    metavar="PATH",
    default=None,
    help="The data the ingest step reads (a folder or a CSV); written relative to the file.",
)
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    help="Folder to write NAME.yaml in (default: the current folder).",
)
@click.option("--json", "as_json", is_flag=True, help="Print what was written as JSON.")
@click.pass_obj
def init_pipeline(
    state: AppState,
    name: str,
    template: str,
    data: str | None,
    directory: Path,
    as_json: bool,
) -> None:
    """Write NAME.yaml: ingest, TFDV gate, training, evaluation and export, with comments.

    The file is checked against the loaded components before it is written; an existing
    file is never overwritten."""
    from .scaffold import create_pipeline

    created = create_pipeline(name, template, state.plugins, data, directory)
    for warning in created.warnings:
        click.echo(f"warning: {warning}", err=True)
    if as_json:
        _echo_json(created.as_dict())
        return
    steps = ", ".join(f"{s} ({c})" for s, c in created.details["steps"].items())
    click.echo(f"created {created.path} from template '{template}': {steps}")
    click.echo(f"next:\n  pipeline run {created.path}")


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
        _echo_json(
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


def _plugin_options(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """Read --plugin/--disable-plugin before click parses, so plugin commands can be added."""
    found: dict[str, list[str]] = {"--plugin": [], "--disable-plugin": []}
    args = list(argv)
    for i, arg in enumerate(args):
        if arg == "--":
            break
        for flag, values in found.items():
            if arg == flag and i + 1 < len(args):
                values.append(args[i + 1])
            elif arg.startswith(flag + "="):
                values.append(arg.split("=", 1)[1])
    return found["--plugin"], found["--disable-plugin"]


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the ``pipeline`` console script."""
    args = list(sys.argv[1:] if argv is None else argv)
    before_dashes = args[: args.index("--")] if "--" in args else args
    as_json = "--json" in before_dashes
    # Before anything imports TensorFlow: its C++ log level is read when it loads.
    quiet(verbose="--verbose" in before_dashes)
    state: AppState | None = None
    try:
        modules, disabled = _plugin_options(args)
        loaded = load_plugins(modules, disabled)
        loaded.notify("register_commands", cli=cli)
        state = AppState(loaded, None)
        cli.main(args=args, prog_name="pipeline", standalone_mode=False, obj=state)
    except PipelineError as exc:
        _fail(exc.exit_code, str(exc), state, as_json)
    except click.exceptions.Abort:
        _fail(130, "aborted", state, as_json)
    except click.ClickException as exc:
        exc.show()
        _fail(exc.exit_code, exc.format_message(), state, as_json, shown=True)
    except KeyboardInterrupt:
        _fail(130, "interrupted", state, as_json)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except Exception as exc:  # a bug: the traceback follows, and scripts still get their JSON
        if as_json:
            _echo_json(_outcome(1, f"{type(exc).__name__}: {exc}", state))
        raise
    sys.exit(0)


STATUS_OF_EXIT = {1: "failed", 2: "bad input", 3: "gate failed", 130: "interrupted"}


def _outcome(code: int, message: str, state: AppState | None) -> dict[str, Any]:
    run_dir = state.run_dir if state is not None else None
    return {
        "exit_code": code,
        "status": STATUS_OF_EXIT.get(code, "failed"),
        "message": message,
        "run": str(run_dir) if run_dir else None,
    }


def _fail(
    code: int, message: str, state: AppState | None, as_json: bool, shown: bool = False
) -> None:
    """Report a failed command on stderr (and as JSON on stdout with --json), then exit."""
    if not shown:
        click.echo(f"error: {message}" if code != 130 else message, err=True)
    if as_json:
        _echo_json(_outcome(code, message, state))
    sys.exit(code)
