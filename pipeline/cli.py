"""The ``pipeline`` command: a thin face over ``beamline.api``; this module holds the command
group, ``main()`` (the console script) and the error contract; each command lives in the module
of its job: ``cli_run`` (run, --explain), ``cli_plugins`` (plugins, describe), ``cli_runs``
(runs, show), ``cli_init`` (init plugin/pipeline). Plugins add theirs with ``register_commands``.

Heavy libraries (TensorFlow, TFDV, Beam) are imported only when a step or a command needs them,
so ``pipeline --help`` and ``pipeline plugins`` start in a fraction of a second.

The error contract: exit 0 success, 1 a step failed, 2 bad input, 3 the validation gate stopped
the run, 130 interrupted. Results (the summary table, ``run ... succeeded: PATH``, listings) go to
stdout, progress, warnings and errors to stderr. With ``--json``, every outcome, failures
included, prints one JSON object on stdout with ``exit_code``, ``message`` and ``run`` (the run
folder, or null); listings print their data.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from .cli_compare import compare
from .cli_group import AppState, PipelineGroup, echo_json
from .cli_init import init_group
from .cli_plugins import describe, plugins
from .cli_run import run
from .cli_runs import runs, show
from .errors import PipelineError
from .plugins import Plugins, load_plugins
from .quiet import quiet

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


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
    loaded = given or load_plugins(plugin_modules, disabled)
    ctx.obj = AppState(loaded, runs_dir)


# The built-in commands; plugins add theirs through the register_commands hook (see main()).
for _command in (run, plugins, describe, runs, show, compare, init_group):
    cli.add_command(_command)


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
            echo_json(_outcome(1, f"{type(exc).__name__}: {exc}", state))
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
        echo_json(_outcome(code, message, state))
    sys.exit(code)
