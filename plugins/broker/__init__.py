"""A message broker as a stream: Redis Streams with consumer groups, and its commands.

Registers the stream ``redis_stream`` (``beamline.Stream``: windows committed to a durable
store, acknowledged with ``XACK`` only after) and the commands ``pipeline publish`` (replay a
folder of files or a CSV into a stream) and ``pipeline broker`` (a local ``redis-server``).
Importing this module is cheap: redis, Beam and TFDV load only when a step or command runs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from beamline import Stream, hookimpl

from .redis_stream import RedisStream

__all__ = ["RedisStream"]


@hookimpl
def register_streams(register: Callable[[type[Stream]], None]) -> None:
    """Register ``redis_stream``."""
    register(RedisStream)


@hookimpl
def register_commands(cli: Any) -> None:
    """Add ``pipeline publish`` and ``pipeline broker``."""
    from .commands import broker_command, publish_command

    cli.add_command(publish_command)
    cli.add_command(broker_command)
