"""Attributions from the command line: ``pipeline explain EXPORT INPUT...``.

Registers the command only; the attribution code is the ``beamline_plugins.attributions``
library (shared with the classification evaluator). Importing this package does not import
TensorFlow.
"""

from __future__ import annotations

from typing import Any

from beamline import hookimpl


@hookimpl
def register_commands(cli: Any) -> None:
    """Add ``pipeline explain``."""
    from .command import explain_command

    cli.add_command(explain_command)
