"""Serving: ``pipeline serve``, TensorFlow Serving's REST API over an export or a model folder.

Modules: ``command`` (the CLI), ``server`` (what to serve, uvicorn), ``app`` (the Starlette
routes), ``rest_codec`` (TF Serving's JSON request and response format), ``batcher`` (concurrent
requests as one batch), ``manager`` (the version answering, swapped when a newer one is
published), ``loader`` (one SavedModel version), ``metrics`` (Prometheus text). Versioned model
folders themselves are the core's (``beamline.model_folder``), which the exporter publishes
into. Importing this package imports neither TensorFlow nor the web framework.
"""

from __future__ import annotations

from typing import Any

from beamline import hookimpl


@hookimpl
def register_commands(cli: Any) -> None:
    """Add ``pipeline serve``."""
    from .command import serve_command

    cli.add_command(serve_command)
