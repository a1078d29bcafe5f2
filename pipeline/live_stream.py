"""Feed a running Beam pipeline from plain Python polls: a live, unbounded ``TestStream``.

``live_stream(polls, coder)`` serves ``polls`` (an iterator of ``(elements, watermark)``, each
element an ``(value, event time)`` pair, times in epoch seconds; a watermark of None leaves it
where it is) to Beam through a
``TestStream`` whose events come from a ``TestStreamServiceController`` (a local gRPC service):
every poll adds its elements with their event times, then advances the watermark, so
event-time windows close while the source goes on. When the iterator ends, the stream ends and
the watermark moves to infinity. The folder watch and the broker streams use it.

Why not a splittable DoFn? In Beam 2.72 the Python ``BundleBasedDirectRunner`` rejects
unbounded splittable DoFns in ``--streaming`` mode, and the in-process ``FnApiRunner`` runs no
streaming pipeline at all: a TestStream fed over gRPC is what runs live here. Beam stops a
TestStream after 30 s without an event, so a poll must come at least that often (a poll with no
element still advances the watermark).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

#: Seconds between polls must stay below Beam's 30 s TestStream event timeout.
MAX_POLL_INTERVAL = 10.0
#: Set to ask every live source of the process to end its stream (a continuous loop that is
#: done or interrupted): its windows are then written and acknowledged as at a normal end.
STOP = threading.Event()

Poll = tuple[list[tuple[Any, float]], float | None]


def window_batches(polls: Iterator[Poll], window_seconds: float) -> Iterator[Poll]:
    """``polls`` with each poll's elements grouped by fixed event-time window (as Beam's
    ``FixedWindows(window_seconds)`` assigns them): one element per window, the list of its
    values, stamped with their earliest event time; the watermarks unchanged. Beam then handles
    a poll's hundreds of records as a few elements (``beamline.stream_batches``)."""
    size = round(window_seconds * 1_000_000)
    for elements, watermark in polls:
        groups: dict[int, tuple[list[Any], float]] = {}
        for value, when in elements:
            key = int(when * 1_000_000) // size  # the micros the TestStream stamps
            values, earliest = groups.setdefault(key, ([], when))
            values.append(value)
            if when < earliest:
                groups[key] = (values, when)
        yield [(values, earliest) for values, earliest in groups.values()], watermark


class PollEvents:
    """The ``reader`` a ``TestStreamServiceController`` serves: polls as TestStream events."""

    def __init__(self, polls: Iterator[Poll], coder: Any) -> None:
        self._polls = polls
        self._coder = coder
        self._lock = threading.Lock()
        self.error: BaseException | None = None

    def read_multiple(self, _specs: Any) -> Iterator[Any]:
        """Yield element and watermark events, one pair per poll (the service calls this)."""
        from apache_beam.portability.api import beam_runner_api_pb2

        payload = beam_runner_api_pb2.TestStreamPayload
        with self._lock:  # one consumer: the pipeline's TestStream
            try:
                for elements, watermark in self._polls:
                    if elements:
                        stamped = [
                            payload.TimestampedElement(
                                encoded_element=self._coder.encode(value),
                                timestamp=int(when * 1_000_000),
                            )
                            for value, when in elements
                        ]
                        yield payload.Event(
                            element_event=payload.Event.AddElements(elements=stamped)
                        )
                    if watermark is None:  # nothing to advance yet
                        continue
                    micros = int(watermark * 1_000_000)
                    yield payload.Event(
                        watermark_event=payload.Event.AdvanceWatermark(new_watermark=micros)
                    )
            except Exception as exc:  # surfaced by the step after the pipeline ends
                self.error = exc
                raise


@dataclass
class LiveStream:
    """A running event service and the Beam ``TestStream`` that reads it; ``stop()`` when done."""

    transform: Any
    controller: Any
    reader: PollEvents

    def stop(self) -> None:
        """Shut the event service down."""
        self.controller.stop()


def live_stream(polls: Iterator[Poll], coder: Any) -> LiveStream:
    """Start serving ``polls`` and return the TestStream that reads them (see the module)."""
    from apache_beam.testing.test_stream import TestStream
    from apache_beam.testing.test_stream_service import TestStreamServiceController

    reader = PollEvents(polls, coder)
    controller = TestStreamServiceController(reader)
    controller.start()
    stream = TestStream(coder=coder, endpoint=controller.endpoint)
    return LiveStream(stream, controller, reader)
