"""Watch a folder for new files and feed them to a running Beam pipeline as an unbounded stream.

``FolderWatch`` is plain Python: it polls a folder, reports each file once (when it has settled)
and decides when to stop. ``watch_stream`` serves its polls to Beam through the core's live
``TestStream`` (``beamline.live_stream``): every poll sends the new files, stamped with the poll
time (their event time is their arrival), then advances the watermark to that time, so
event-time windows close while the watch goes on. When the watch stops, the stream ends and the
watermark moves to infinity.

Why not a splittable DoFn (``MatchContinuously``, ``PeriodicImpulse``)? In Beam 2.72 the Python
``BundleBasedDirectRunner`` rejects unbounded splittable DoFns in ``--streaming`` mode (its
streaming GroupByKey override runs before the SDF expansion adds a GroupByKey: "was not replaced
as expected"), and even outside streaming it never resumes a deferred restriction. The
in-process ``FnApiRunner`` runs no streaming pipeline at all, and the default ``DirectRunner``
first tries to download the Prism binary.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from beamline.live_stream import MAX_POLL_INTERVAL as MAX_POLL_INTERVAL
from beamline.live_stream import LiveStream, live_stream

#: Name endings of files still being written by common tools: never taken.
PARTIAL_SUFFIXES = (".tmp", ".part", ".partial", ".crdownload", ".download", ".swp")


@dataclass(frozen=True)
class StopRule:
    """When a watch ends; 0 disables a condition, and at least one must be set.

    ``max_duration``: seconds since the watch started; ``max_files``: files taken;
    ``idle_timeout``: seconds since the last new file (or since the start)."""

    max_duration: float = 0.0
    max_files: int = 0
    idle_timeout: float = 0.0

    def problem(self) -> str | None:
        """What is wrong with the rule, or None."""
        if self.max_duration < 0 or self.max_files < 0 or self.idle_timeout < 0:
            return "max_duration, max_files and idle_timeout must be 0 (off) or more"
        if not (self.max_duration or self.max_files or self.idle_timeout):
            return (
                "a streaming step must end: set max_duration, max_files or idle_timeout "
                "(seconds, files, seconds without a new file)"
            )
        return None


class FolderWatch:
    """Polls ``root`` (recursively) and returns each new, settled file once, in name order.

    A file is taken when its modification time is at least ``settle_seconds`` old (a file still
    being written keeps changing it); hidden files and names ending in ``PARTIAL_SUFFIXES`` are
    skipped, so writing under a temporary name and renaming is always safe. With
    ``include_existing`` False the files present at the first poll are ignored."""

    def __init__(
        self,
        root: Path,
        *,
        extensions: list[str],
        stop: StopRule,
        settle_seconds: float = 0.5,
        include_existing: bool = True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.root = Path(root)
        self.extensions = {e.lower() if e.startswith(".") else f".{e.lower()}" for e in extensions}
        self.stop = stop
        self.settle_seconds = settle_seconds
        self.include_existing = include_existing
        self.clock = clock
        self.seen: set[str] = set()
        self.taken = 0
        self.polls = 0
        self.started = clock()
        self.last_new = self.started
        self.stop_reason: str | None = None

    def _wanted(self, name: str) -> bool:
        low = name.lower()
        if name.startswith((".", "~")) or low.endswith(PARTIAL_SUFFIXES):
            return False
        return not self.extensions or os.path.splitext(low)[1] in self.extensions

    def _listing(self, now: float) -> list[str]:
        found = []
        for folder, dirs, files in os.walk(self.root):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for name in files:
                if not self._wanted(name):
                    continue
                path = os.path.join(folder, name)
                if path in self.seen:
                    continue
                try:
                    stat = os.stat(path)
                except OSError:  # vanished between listing and stat
                    continue
                if now - stat.st_mtime >= self.settle_seconds:
                    found.append(path)
        return sorted(found)

    def poll(self) -> list[str]:
        """The new settled files since the last poll (marked as seen), respecting ``max_files``."""
        now = self.clock()
        new = self._listing(now) if self.root.is_dir() else []
        self.polls += 1
        if self.polls == 1 and not self.include_existing:
            self.seen.update(new)
            return []
        if self.stop.max_files:
            new = new[: max(0, self.stop.max_files - self.taken)]
        if new:
            self.seen.update(new)
            self.taken += len(new)
            self.last_new = now
        return new

    def should_stop(self) -> str | None:
        """Why the watch ends now (and remember it), or None to go on."""
        now = self.clock()
        rule = self.stop
        if rule.max_files and self.taken >= rule.max_files:
            self.stop_reason = f"took max_files={rule.max_files} files"
        elif rule.max_duration and now - self.started >= rule.max_duration:
            self.stop_reason = f"ran max_duration={rule.max_duration:g}s"
        elif rule.idle_timeout and now - self.last_new >= rule.idle_timeout:
            self.stop_reason = f"no new file for idle_timeout={rule.idle_timeout:g}s"
        return self.stop_reason


def watch_polls(
    watch: FolderWatch, poll_interval: float, sleep: Callable[[float], Any] = time.sleep
) -> Iterator[tuple[list[str], float]]:
    """Yield ``(new files, poll time)`` once per poll until ``watch`` says stop.

    The last poll happens after the stop condition is met, so nothing settled is left behind
    by an idle or duration stop."""
    while True:
        stopping = watch.should_stop() is not None
        files = watch.poll()
        yield files, watch.clock()
        if stopping or watch.should_stop():
            return
        sleep(poll_interval)


def watch_stream(watch: FolderWatch, poll_interval: float) -> LiveStream:
    """Start serving ``watch``'s polls and return the live TestStream that reads them (file
    paths stamped with their poll time; the watermark follows the polls)."""
    from apache_beam import coders

    polls = (
        ([(f, when) for f in files], when) for files, when in watch_polls(watch, poll_interval)
    )
    return live_stream(polls, coders.StrUtf8Coder())


def replay_stream(events: list[tuple[str, Any]]) -> Any:
    """A scripted ``TestStream`` of file paths: ``("files", (paths, seconds))`` adds files with
    that event time (epoch seconds), ``("watermark", seconds)`` advances the watermark; the
    watermark goes to infinity at the end."""
    from apache_beam import coders
    from apache_beam.testing.test_stream import TestStream
    from apache_beam.transforms.window import TimestampedValue

    stream = TestStream(coder=coders.StrUtf8Coder())
    for kind, value in events:
        if kind == "files":
            paths, when = value
            stream = stream.add_elements([TimestampedValue(p, when) for p in paths])
        else:
            stream = stream.advance_watermark_to(value)
    return stream.advance_watermark_to_infinity()
