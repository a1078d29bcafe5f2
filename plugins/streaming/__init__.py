"""Streams of files: watch a folder (or replay a TestStream), windowed shards, windowed statistics,
drift alarms.

Registers the streams ``watch_folder`` and ``replay_stream`` (``beamline.Stream``: the core's
streaming engine runs them window by window). Importing this module is cheap: Beam, TensorFlow
and TFDV load only when a step runs.
"""

from __future__ import annotations

from collections.abc import Callable

from beamline import Stream, hookimpl

from .sources import ReplayStream, WatchFolder

__all__ = ["ReplayStream", "WatchFolder"]


@hookimpl
def register_streams(register: Callable[[type[Stream]], None]) -> None:
    """Register ``watch_folder`` and ``replay_stream``."""
    register(WatchFolder)
    register(ReplayStream)
