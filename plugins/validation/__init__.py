"""Dataset validation with TensorFlow Data Validation: statistics, schema, anomalies, drift.

Registers the ``tfdv`` validator step and the ``pipeline validate DATA`` command. Importing this
module is cheap: TensorFlow, TFDV and Beam load only when the step or the command runs.
"""

from __future__ import annotations

from typing import Any

from beamline import hookimpl

from .component import Tfdv


@hookimpl
def register_validators(register: Any) -> None:
    """Register the ``tfdv`` validator."""
    register(Tfdv)


@hookimpl
def register_commands(cli: Any) -> None:
    """Add ``pipeline validate DATA``."""
    from .command import validate

    cli.add_command(validate)
