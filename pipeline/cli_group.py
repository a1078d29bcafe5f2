"""The ``pipeline`` command group's class and the state it hands to its commands.

``PipelineGroup``: users write ``pipeline run FILE --runs-dir X`` as often as
``pipeline --runs-dir X run FILE``; click only takes a group's options before the command, so
they are moved there first. ``AppState``: the group's options and the plugins loaded for them,
which every command receives (``@click.pass_obj``); ``echo_json`` prints a command's ``--json``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from .plugins import Plugins


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


def echo_json(data: Any) -> None:
    """Print ``data`` on stdout as one indented JSON object (what ``--json`` promises)."""
    click.echo(json.dumps(data, indent=2, default=str))


def json_option(help: str = "Print JSON.") -> Callable[[Any], Any]:  # noqa: A002 - click's word
    """The ``--json`` flag (parameter ``as_json``) of every command, built-in or a plugin's."""
    return click.option("--json", "as_json", is_flag=True, help=help)


class PipelineGroup(click.Group):
    """The command group; its own options may also follow the command: users write
    ``pipeline run FILE --runs-dir X`` as often as ``pipeline --runs-dir X run FILE``."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        """Move this group's options found after the command in front of it, then parse."""
        return super().parse_args(ctx, hoist_group_options(self, ctx, args))


def hoist_group_options(group: click.Group, ctx: click.Context, args: list[str]) -> list[str]:
    """``run F --runs-dir X`` -> ``--runs-dir X run F``; a command's own option of the same name
    and everything after ``--`` stay where they are."""
    takes_value = {
        opt: not (p.is_flag or p.count)
        for p in group.params
        if isinstance(p, click.Option) and not p.is_eager
        for opt in p.opts
    }
    i = 0
    while i < len(args) and args[i].startswith("-") and args[i] != "--":
        name = args[i].split("=", 1)[0]
        i += 2 if takes_value.get(name) and "=" not in args[i] else 1
    if i >= len(args):
        return args
    command = group.get_command(ctx, args[i])
    own = _option_names(command) if command is not None else set()
    moved: list[str] = []
    kept: list[str] = []
    rest = args[i + 1 :]
    j = 0
    while j < len(rest):
        arg = rest[j]
        name = arg.split("=", 1)[0]
        if arg == "--":
            kept += rest[j:]
            break
        if name in takes_value and name not in own:
            width = 2 if takes_value[name] and "=" not in arg else 1
            moved += rest[j : j + width]
            j += width
            continue
        kept.append(arg)
        j += 1
    return moved + args[: i + 1] + kept


def _option_names(command: click.Command) -> set[str]:
    names = {opt for p in command.params if isinstance(p, click.Option) for opt in p.opts}
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            names |= _option_names(sub)
    return names
