"""``redis_stream``: read a Redis Stream through a consumer group, acknowledging stored windows.

The stream is polled with ``XREADGROUP`` (this consumer's own pending entries first, so a
restart redelivers what an earlier process read and did not acknowledge; then entries other
consumers left pending for ``claim_idle`` seconds, taken over with ``XAUTOCLAIM``; then new ones,
blocking up to ``poll_interval``, and draining up to ``reads_per_poll`` full reads of a
backlog). Each poll goes to Beam through the core's live TestStream (``beamline.live_stream``)
as one batch per event-time window (``beamline.stream_batches``: decoded, transformed and
committed in bulk, not message by message), and the watermark follows: ``max_delay``
seconds behind the newest event time seen, moving on with the clock while no message arrives,
so windows close on time. A message whose event time is already behind the watermark is
rejected as late (with the reason), never dropped. Windows are committed to a durable store
(``beamline.window_store``) and only then acknowledged (``XACK``).
"""

from __future__ import annotations

import math
import secrets
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from beamline import PipelineError, StepContext, param
from beamline.ingest import Reject
from beamline.live_stream import STOP
from beamline.records import rejected
from beamline_plugins.tfdv_tools.window_checks import CheckedStream

from .messages import decode, entry_time, event_time

MODALITIES = {"image": "image", "audio": "audio", "text": "text"}
#: A poll stops draining full reads once it holds this many bytes (memory, Beam's events).
POLL_BYTES = 16 << 20


@dataclass(frozen=True)
class Until:
    """When the stream ends (0 turns a condition off; all off: when interrupted)."""

    max_duration: float = 0.0
    max_messages: int = 0
    idle_timeout: float = 0.0

    def reason(self, started: float, last_new: float, taken: int, now: float) -> str | None:
        """Why the stream ends now, or None to go on."""
        if self.max_messages and taken >= self.max_messages:
            return f"took max_messages={self.max_messages}"
        if self.max_duration and now - started >= self.max_duration:
            return f"ran max_duration={self.max_duration:g}s"
        if self.idle_timeout and now - last_new >= self.idle_timeout:
            return f"no message for idle_timeout={self.idle_timeout:g}s"
        return None


class RedisStream(CheckedStream):
    """Read records from a Redis Stream (consumer group), windowed, acknowledged once stored.

    Each message carries a raw record in its ``data`` field (``format``: image bytes, WAV
    bytes, UTF-8 text, or a table row as a JSON object), an optional ``label`` and an optional
    event ``time`` (epoch seconds; default: its arrival at the broker). A malformed message (no
    data, bad JSON, a bad time, an image that does not decode in ``decode_image``) is rejected
    with its reason. Windows are committed to a durable store (``store``; default
    ``<runs>/<pipeline>/.streams/<step>``) and acknowledged (``XACK``) only then, so after a
    kill the restart redelivers the rest and nothing is stored twice: every message is counted
    once, as an example or as rejected, across any number of restarts; the step's artifact is
    the whole store. Drift between consecutive windows is checked as each window closes
    (``drift``). Runs on Beam's BundleBasedDirectRunner (``--streaming``, runners ``direct`` and
    ``local``). Publish with ``pipeline publish``."""

    name = "redis_stream"

    url: str = param("redis://127.0.0.1:6379/0", help="the Redis server (redis://host:port/db)")
    stream: str = param(help="the stream's key")
    group: str = param("beamline", help="consumer group (created at the stream's start if new)")
    consumer: str = param("ingest", help="this reader's name in the group (keep it on restarts)")
    format: Literal["image", "audio", "text", "row"] = param(
        "image", help="what 'data' holds: image or WAV bytes, UTF-8 text, a JSON row"
    )
    feature: str = param("image", help="the feature holding 'data' (image, audio, text)")
    label: str = param("label", help="feature set from the message's 'label' ('' = none)")
    store_dir: str = param(
        "",
        help="folder of the durable window store (relative to the pipeline file); default "
        "<runs>/<pipeline>/.streams/<step>",
    )
    batch: int = param(500, help="messages read per call", ge=1)
    reads_per_poll: int = param(
        10, help="calls drained into one poll while they come back full (a backlog)", ge=1
    )
    poll_interval: float = param(1.0, help="longest wait for new messages (seconds)", gt=0, le=10)
    max_delay: float = param(
        2.0, help="the watermark trails the newest event time by this (seconds)", ge=0
    )
    claim_idle: float = param(
        60.0, help="take over other consumers' messages pending this long (seconds)", gt=0
    )
    max_duration: float = param(0.0, help="stop after this many seconds (0: no limit)", ge=0)
    max_messages: int = param(0, help="stop after this many messages (0: no limit)", ge=0)
    idle_timeout: float = param(0.0, help="stop after this long without a message (0: never)", ge=0)
    reader_process: bool = param(
        True,
        help="read and parse the stream in a second process (beamline_plugins.broker.reader), "
        "beside Beam's work on the windows: a second core's worth of throughput",
    )
    live_drift = True

    def __getstate__(self) -> dict[str, Any]:
        """Pickled into Beam workers without live connections."""
        return {k: v for k, v in self.__dict__.items() if not k.startswith("_live")}

    def location(self, ctx: StepContext) -> str:
        """The stream this source reads."""
        return f"{self.url} stream '{self.stream}' group '{self.group}'"

    def data_fingerprint(self, ctx: StepContext) -> str | None:
        """A fresh value each run: a live stream is never the same data twice."""
        return f"live:{secrets.token_hex(8)}"

    def feature_info(self, ctx: StepContext) -> dict[str, Any]:
        """The record feature of ``format`` and the label (a row's columns come from the data)."""
        features: dict[str, Any] = {}
        if self.format in MODALITIES:
            features[self.feature] = {"modality": MODALITIES[self.format]}
        if self.label:
            features[self.label] = {"modality": "label"}
        return {"features": features, "label": self.label or None, "warnings": []}

    def store(self, ctx: StepContext) -> Path:
        """The durable window store (``store_dir``, else beside the pipeline's runs)."""
        if self.store_dir:
            return ctx.resolve(self.store_dir)
        return ctx.run.path.parent / ".streams" / ctx.step.name

    def until(self) -> Until:
        """The stop rule."""
        return Until(self.max_duration, self.max_messages, self.idle_timeout)

    def read_batches(self, ctx: StepContext) -> Any:
        """Start polling the stream; each poll's messages of one window as one batch of
        records (``beamline.stream_batches``), stamped with an event time in that window."""
        import redis
        from apache_beam import coders

        from beamline.live_stream import live_stream, window_batches

        client = redis.Redis.from_url(self.url, socket_timeout=30 + self.poll_interval)
        try:
            client.ping()
        except redis.RedisError as exc:
            raise PipelineError(
                f"{self.name}: cannot reach the Redis server at {self.url}: {exc} (start one: "
                "`pipeline broker --port PORT`, or set url:)"
            ) from None
        ctx.log(f"reading {self.location(ctx)} as '{self.consumer}'")
        if self.reader_process:
            from .reader import ReaderProcess

            poller: Poller | ReaderProcess = ReaderProcess(self)
            polls = poller.polls()
        else:
            poller = Poller(self, client)
            polls = window_batches(poller.polls(), self.window_seconds, size=entry_size)
        live = live_stream(polls, coders.PickleCoder())
        self._live = (live, poller)
        if self.reader_process:  # its batches come decoded
            return _arrivals(live.transform, self.name)
        return _decoded(live.transform, self.format, self.feature, self.label, self.name)

    def read(self, ctx: StepContext) -> Any:
        """The batches of ``read_batches`` as timestamped records (the per-record path)."""
        from beamline.stream_batches import unbatched

        return unbatched(self.read_batches(ctx))

    def acknowledge(self, window: str, sources: list[str]) -> None:
        """``XACK`` the window's messages (called once they are stored)."""
        if not sources:
            return
        client = self.__dict__.get("_live_ack")
        if client is None:
            client = self._live_ack = _ack_client(self.url)
        prefix = f"{self.stream}/"
        ids = [s.removeprefix(prefix) for s in sources if s.startswith(prefix)]
        for start in range(0, len(ids), 1000):
            client(self.stream, self.group, ids[start : start + 1000])

    def close(self, ctx: StepContext) -> None:
        """Stop the event service; report why the stream ended (or failed)."""
        live = self.__dict__.pop("_live", None)
        if live is None:
            return
        stream, poller = live
        stream.stop()
        if hasattr(poller, "close"):  # a ReaderProcess: its child ends
            poller.close()
        if stream.reader.error is not None:
            raise PipelineError(f"{self.name}: reading the stream failed: {stream.reader.error}")
        if poller.stop_reason is None and STOP.is_set():
            # The loop ended while Beam was still between polls: the reader never got to say
            # so, but the stop was asked for; what was not committed stays pending (no XACK).
            poller.stop_reason = "asked to stop (the continuous loop ended)"
        if poller.stop_reason is None and sys.exc_info()[0] is None:  # not while failing
            raise PipelineError(
                f"{self.name}: Beam stopped taking the stream's polls before the stream ended "
                f"({poller.taken} messages delivered; what was not stored stays pending and is "
                "delivered again on the next run)"
            )
        ctx.log(f"stream ended: {poller.stop_reason}; {poller.taken} messages delivered")


def _ack_client(url: str) -> Callable[[str, str, list[str]], Any]:
    """``XACK`` on a plain connection (``beamline_plugins.broker.resp``: packing a thousand ids
    costs a third of redis-py's), or through redis-py for a URL it does not serve."""
    from .resp import StreamConnection

    if StreamConnection.supported(url):
        import threading

        connection, lock = StreamConnection(url, timeout=60), threading.Lock()

        def xack(stream: str, group: str, ids: list[str]) -> Any:
            with lock:  # Beam's worker threads share the connection: one reply at a time
                return connection.call(b"XACK", stream, group, *ids)

        return xack
    import redis

    client = redis.Redis.from_url(url)
    return lambda stream, group, ids: client.xack(stream, group, *ids)


class Poller:
    """Polls a stream for a ``RedisStream`` (see the module docstring)."""

    def __init__(
        self,
        stream: RedisStream,
        client: Any,
        clock: Callable[[], float] = time.time,
        stopped: Callable[[], bool] = STOP.is_set,
        read_new: Callable[..., list[tuple[Any, Any]]] | None = None,
    ):
        self.s, self.client, self.clock, self.stopped = stream, client, clock, stopped
        self.read_new = read_new  # (group, consumer, stream, count, block_ms) -> entries
        self.taken = 0
        self.stop_reason: str | None = None
        self.watermark = -math.inf
        self._newest: float | None = None  # newest event time seen, and when it was seen
        self._seen_at = 0.0

    def ensure_group(self) -> None:
        """Create the consumer group (reading from the stream's start) unless it exists."""
        import redis

        try:
            self.client.xgroup_create(self.s.stream, self.s.group, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def backlog(self) -> list[tuple[str, Any]]:
        """This consumer's pending entries, then those other consumers left idle too long."""
        s, out, last = self.s, [], "0"
        while True:
            reply = self.client.xreadgroup(s.group, s.consumer, {s.stream: last}, count=s.batch)
            entries = reply[0][1] if reply else []
            if not entries:
                break
            out += entries
            last = _text(entries[-1][0])
        cursor = "0-0"
        while True:
            reply = self.client.xautoclaim(
                s.stream, s.group, s.consumer, int(s.claim_idle * 1000), cursor, count=s.batch
            )
            cursor, entries = _text(reply[0]), reply[1]
            out += entries
            if cursor == "0-0":
                break
        return out

    def fresh(self) -> list[tuple[str, Any]]:
        """New entries, waiting up to ``poll_interval`` for the first; while reads come back
        full, up to ``reads_per_poll`` of them or ``POLL_BYTES`` (a backlog goes to Beam in few
        large polls)."""
        s = self.s
        out: list[tuple[str, Any]] = []
        nbytes = 0
        for read in range(s.reads_per_poll):
            block = int(s.poll_interval * 1000) if read == 0 else None
            if self.read_new is not None:
                entries = self.read_new(s.group, s.consumer, s.stream, s.batch, block)
            else:
                wait = {} if block is None else {"block": block}
                reply = self.client.xreadgroup(
                    s.group, s.consumer, {s.stream: ">"}, count=s.batch, **wait
                )
                entries = reply[0][1] if reply else []
            out += entries
            nbytes += sum(entry_size((None, f, None)) for _, f in entries)
            if len(entries) < s.batch or self.full(len(out)) or nbytes >= POLL_BYTES:
                break
        return out

    def full(self, more: int) -> bool:
        """Whether ``more`` messages on top of those taken reach ``max_messages``."""
        return bool(self.s.max_messages) and self.taken + more >= self.s.max_messages

    def polls(self) -> Iterator[tuple[list[tuple[Any, float]], float | None]]:
        """``(elements, watermark)`` per poll until the stop rule says stop.

        Idleness is judged on a read that found nothing, never on time spent while Beam was
        busy elsewhere: messages waiting in the stream are always read before an idle stop."""
        self.ensure_group()
        started = last_new = self.clock()
        rule = self.s.until()
        entries = self.backlog()
        while True:
            now = self.clock()
            if entries:
                last_new = now
            self.taken += len(entries)
            elements = [self.element(_text(i), f) for i, f in entries]
            yield elements, self.advance(elements, now)
            if self.stopped():
                self.stop_reason = "asked to stop (the continuous loop ended)"
                return
            full = rule.max_messages and self.taken >= rule.max_messages
            timed_out = rule.max_duration and self.clock() - started >= rule.max_duration
            if full or timed_out:
                self.stop_reason = rule.reason(started, last_new, self.taken, self.clock())
                return
            entries = self.fresh()
            if not entries:
                self.stop_reason = rule.reason(started, last_new, self.taken, self.clock())
                if self.stop_reason:
                    return

    def element(self, entry_id: str, fields: Any) -> tuple[Any, float]:
        """``((source, fields, problem), event time)`` for one entry; problem is None if fine."""
        source = f"{self.s.stream}/{entry_id}"
        floor = self.watermark if math.isfinite(self.watermark) else 0.0
        if fields is None:  # trimmed or deleted from the stream while pending
            return (source, {}, "the entry was deleted from the stream before it was stored"), (
                max(floor, entry_time(entry_id))
            )
        when = event_time(entry_id, fields)
        if isinstance(when, str):
            return (source, fields, when), max(floor, entry_time(entry_id))
        if when < self.watermark:
            late = (
                f"late: event time {when:.3f} is behind the watermark {self.watermark:.3f} "
                f"(max_delay {self.s.max_delay:g}s)"
            )
            return (source, fields, late), self.watermark
        return (source, fields, None), when

    def advance(self, elements: list[tuple[Any, float]], now: float) -> float | None:
        """The watermark after a poll: ``max_delay`` behind the newest event time, moving on
        with the clock while nothing new arrives; never backwards (None before any message)."""
        times = [when for (_, _, problem), when in elements if problem is None]
        if times and (self._newest is None or max(times) > self._newest):
            self._newest, self._seen_at = max(times), now
        if self._newest is None:  # nothing seen yet: a backlog may still be on its way
            return None
        candidate = self._newest + (now - self._seen_at) - self.s.max_delay
        self.watermark = max(self.watermark, candidate)
        return self.watermark


def decode_batch(
    batch: list[tuple[str, Any, str | None]], fmt: str, feature: str, label: str
) -> tuple[list[dict[str, Any]], list[dict[str, str]], int]:
    """``(records, rejected entries, messages)`` of a batch of delivered entries
    (``(source, fields, problem)``; a problem or a malformed message is rejected with why)."""
    records, bad = [], []
    for source, fields, problem in batch:
        out = (
            Reject(problem, source)
            if problem is not None
            else decode(source, fields, fmt, feature, label)
        )
        if isinstance(out, Reject):
            bad.append(rejected(out.source or source, "read", out.reason))
        else:
            records.append(out)
    return records, bad, len(batch)


def _decoded(arrivals: Any, fmt: str, feature: str, label: str, name: str) -> Any:
    import apache_beam as beam

    @beam.ptransform_fn
    def _read(root: Any) -> Any:
        decoded = beam.Map(decode_batch, fmt, feature, label)
        return root | f"Messages ({name})" >> arrivals | "Decode (in bulk)" >> decoded

    return _read()


def _arrivals(arrivals: Any, name: str) -> Any:
    import apache_beam as beam

    @beam.ptransform_fn
    def _read(root: Any) -> Any:
        return root | f"Messages, decoded ({name})" >> arrivals

    return _read()


def entry_size(value: tuple[str, Any, str | None]) -> int:
    """About how many bytes a delivered entry carries (its fields' names and values)."""
    fields = value[1] or {}
    return sum(map(len, fields)) + sum(map(len, fields.values()))


def _text(value: Any) -> str:
    return value.decode("ascii") if isinstance(value, bytes) else str(value)
