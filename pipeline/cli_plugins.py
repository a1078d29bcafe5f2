"""``pipeline plugins`` and ``pipeline describe COMPONENT``: the loaded components, and one
component's documentation and parameters."""

from __future__ import annotations

import dataclasses
import json
import typing
from typing import Any

import click

from .cli_group import AppState, echo_json, json_option


@click.command()
@json_option()
@click.pass_obj
def plugins(state: AppState, as_json: bool) -> None:
    """List every component with its kind, plugin and one-line description."""
    loaded = state.plugins
    comps = loaded.registry.all()
    if as_json:
        echo_json(
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
    from rich.table import Table

    from .console import make_console

    table = Table(title="components")
    for column in ("name", "kind", "plugin", "description"):
        table.add_column(column)
    for c in comps:
        table.add_row(c.name, c.kind.replace("_", " "), c.plugin, c.summary)
    console = make_console(stderr=False)
    console.print(table)
    console.print("plugins: " + ", ".join(f"{n} ({s})" for n, s in loaded.sources.items()))
    for name, error in loaded.failed.items():
        console.print(f"[red]failed to load plugin '{name}':[/] {error}", markup=True)


@click.command()
@click.argument("component")
@json_option()
@click.pass_obj
def describe(state: AppState, component: str, as_json: bool) -> None:
    """Show a component's documentation and parameters (type, default, help)."""
    info = state.plugins.registry.info(component)
    params = describe_params(info.cls)
    if as_json:
        echo_json(
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
        if not f.init:  # set by the core (a tuner's trial component), not by a pipeline file
            continue
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
