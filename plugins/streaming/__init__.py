"""Streams of files, and the steps of continuous training.

Registers the streams ``watch_folder`` and ``replay_stream`` (``beamline.Stream``: the core's
streaming engine runs them window by window), and what a continuous loop's cycles use
(``beamline.continuous``): the source ``stream_windows`` (the newest windows of a durable
window store, split), the trainer ``blessed_model`` (the blessed model as a step) and the
evaluator ``champion`` (the candidate must beat it; the cycle history in the report). Importing
this module is cheap: Beam, TensorFlow and TFDV load only when a step runs.
"""

from __future__ import annotations

from collections.abc import Callable

from beamline import Evaluator, Source, Stream, Trainer, hookimpl

from .champion import BlessedModel, Champion
from .sources import ReplayStream, WatchFolder
from .window_source import StreamWindows

__all__ = ["BlessedModel", "Champion", "ReplayStream", "StreamWindows", "WatchFolder"]


@hookimpl
def register_streams(register: Callable[[type[Stream]], None]) -> None:
    """Register ``watch_folder`` and ``replay_stream``."""
    register(WatchFolder)
    register(ReplayStream)


@hookimpl
def register_sources(register: Callable[[type[Source]], None]) -> None:
    """Register ``stream_windows``."""
    register(StreamWindows)


@hookimpl
def register_trainers(register: Callable[[type[Trainer]], None]) -> None:
    """Register ``blessed_model``."""
    register(BlessedModel)


@hookimpl
def register_evaluators(register: Callable[[type[Evaluator]], None]) -> None:
    """Register ``champion``."""
    register(Champion)
