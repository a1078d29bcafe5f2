"""``pipeline init plugin NAME`` and ``pipeline init pipeline NAME``: a new plugin package or
pipeline file written from a template (``beamline.scaffold``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from .cli_group import AppState, echo_json, json_option
from .scaffold import PIPELINE_TEMPLATES


def _dir_option(help: str) -> Callable[[Any], Any]:  # noqa: A002 - click's word
    return click.option(
        "--dir",
        "directory",
        type=click.Path(file_okay=False, path_type=Path),
        default=Path("."),
        help=help,
    )


@click.group("init")
def init_group() -> None:
    """Write a new plugin package or pipeline file from a template."""


@init_group.command("plugin")
@click.argument("name")
@_dir_option("Folder to create the package folder in (default: the current folder).")
@json_option("Print what was written as JSON.")
def init_plugin(name: str, directory: Path, as_json: bool) -> None:
    """Write an installable plugin package NAME: one example transform, README and tests.

    NAME is the distribution name (e.g. acme-text); its package is NAME with '-' and '.' as
    '_'. An existing folder is never overwritten."""
    from .scaffold import create_plugin

    created = create_plugin(name, directory)
    if as_json:
        echo_json(created.as_dict())
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
@_dir_option("Folder to write NAME.yaml in (default: the current folder).")
@json_option("Print what was written as JSON.")
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
        echo_json(created.as_dict())
        return
    steps = ", ".join(f"{s} ({c})" for s, c in created.details["steps"].items())
    click.echo(f"created {created.path} from template '{template}': {steps}")
    click.echo(f"next:\n  pipeline run {created.path}")
