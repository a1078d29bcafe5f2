"""Streaming ingest: watch a folder (or replay a TestStream), windowed shards, windowed statistics,
drift alarms.

Registers the sources ``watch_folder`` and ``replay_stream``. Importing this module is cheap:
Beam, TensorFlow and TFDV load only when a step runs.
"""

from __future__ import annotations

from typing import Any

from beamline import hookimpl

from .sources import ReplayStream, WatchFolder

__all__ = ["ReplayStream", "WatchFolder"]


@hookimpl
def register_sources(register: Any) -> None:
    """Register ``watch_folder`` and ``replay_stream``."""
    register(WatchFolder)
    register(ReplayStream)
