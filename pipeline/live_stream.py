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
element still advances the watermark, or, before any message was seen, sends a keep-alive).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

#: Seconds between polls must stay below Beam's 30 s TestStream event timeout.
MAX_POLL_INTERVAL = 10.0
#: Set to ask every live source of the process to end its stream (a continuous loop that is
#: done or interrupted): its windows are then written and acknowledged as at a normal end.
STOP = threading.Event()
#: Set once a live stream's Beam pipeline has connected to its events (Beam is imported and
#: running): the continuous loop starts its cycles after this.
STARTED = threading.Event()

Poll = tuple[list[tuple[Any, float]], float | None]
#: Most bytes of values in one batch of ``window_batches``, and of encoded elements in one
#: TestStream event: Beam's event channel is a gRPC stream whose messages may not pass 4 MiB.
BATCH_BYTES = 1 << 20
EVENT_BYTES = 3 << 20


@dataclass(frozen=True, slots=True)
class Encoded:
    """A value already encoded with the stream's coder (a poll read in another process): the
    TestStream's event carries ``data`` as it is."""

    data: bytes


def window_batches(
    polls: Iterator[Poll],
    window_seconds: float,
    size: Callable[[Any], int] = lambda value: 0,
    max_bytes: int = BATCH_BYTES,
) -> Iterator[Poll]:
    """``polls`` with each poll's elements grouped by fixed event-time window (as Beam's
    ``FixedWindows(window_seconds)`` assigns them): one element per window, the list of its
    values, stamped with their earliest event time; the watermarks unchanged. Beam then handles
    a poll's hundreds of records as a few elements (``beamline.stream_batches``). A window's
    values are cut into several lists where their ``size`` adds up to more than ``max_bytes``."""
    width = round(window_seconds * 1_000_000)
    for elements, watermark in polls:
        groups: dict[int, list[tuple[list[Any], float, int]]] = {}
        for value, when in elements:
            key = int(when * 1_000_000) // width  # the micros the TestStream stamps
            chunks = groups.setdefault(key, [])
            nbytes = size(value)
            if not chunks or (chunks[-1][2] + nbytes > max_bytes and chunks[-1][0]):
                chunks.append(([], when, 0))
            values, earliest, total = chunks[-1]
            values.append(value)
            chunks[-1] = (values, min(earliest, when), total + nbytes)
        batches = [
            (values, earliest) for chunks in groups.values() for values, earliest, _ in chunks
        ]
        yield batches, watermark


def _events(stamped: list[Any], payload: Any) -> Iterator[Any]:
    """``AddElements`` events of at most ``EVENT_BYTES`` each (gRPC refuses larger messages)."""
    start, total = 0, 0
    for i, element in enumerate(stamped):
        nbytes = len(element.encoded_element)
        if i > start and total + nbytes > EVENT_BYTES:
            yield payload.Event(element_event=payload.Event.AddElements(elements=stamped[start:i]))
            start, total = i, 0
        total += nbytes
    yield payload.Event(element_event=payload.Event.AddElements(elements=stamped[start:]))


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
        # An event that changes nothing (the TestStream's clock advanced by 0), sent for a poll
        # with no element and no watermark yet (a stream started or restarted with nothing to
        # read): Beam's 30 s event timeout would stop a quiet stream that has seen no message.
        keep_alive = payload.Event.AdvanceProcessingTime(advance_duration=0)
        with self._lock:  # one consumer: the pipeline's TestStream
            STARTED.set()
            try:
                for elements, watermark in self._polls:
                    if elements:
                        stamped = [
                            payload.TimestampedElement(
                                encoded_element=(
                                    value.data
                                    if isinstance(value, Encoded)
                                    else self._coder.encode(value)
                                ),
                                timestamp=int(when * 1_000_000),
                            )
                            for value, when in elements
                        ]
                        yield from _events(stamped, payload)
                    if watermark is None:  # nothing to advance yet: a keep-alive instead
                        if not elements:
                            yield payload.Event(processing_time_event=keep_alive)
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
