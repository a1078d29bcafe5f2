"""A ``redis_stream``'s reads in a second process: ``XREADGROUP`` and its reply parsing beside
Beam's work on the first, so a backlog is read on one core while the other decodes, hashes,
encodes and commits the windows.

The parent starts ``python -m beamline_plugins.broker.reader`` (a plain subprocess, so nothing
of the parent's main module runs again), sends it the pickled stream on stdin and reads its
polls from stdout: each one the poll's batches, decoded (``decode_batch``: records and
rejected entries; for a stream without transforms each record's ``window_hash`` and framed
example too) and pickled as the TestStream's ``PickleCoder`` encodes them
(``beamline.live_stream.Encoded``),
its watermark and the count taken so far; then the reason the stream ended, or an error. Any
byte on the child's stdin asks it to stop after the poll it is reading (the continuous loop's
``STOP``). The child dies with
its parent (``PR_SET_PDEATHSIG``): after a kill -9 nothing keeps reading for a consumer that is
gone, and the restart redelivers what was read and not acknowledged, as with one process.
Acknowledgement stays in the parent, after the window is committed.
"""

from __future__ import annotations

import gc
import os
import pickle
import select
import signal
import struct
import subprocess
import sys
from collections.abc import Iterator
from typing import IO, Any

from beamline.live_stream import STOP, Encoded, Poll

_LENGTH = struct.Struct("<Q")
_PROTOCOL = pickle.HIGHEST_PROTOCOL


def _send(out: IO[bytes], message: Any) -> None:
    data = pickle.dumps(message, _PROTOCOL)
    out.write(_LENGTH.pack(len(data)) + data)
    out.flush()


def _read(source: IO[bytes], size: int) -> bytes:
    """``size`` bytes of an unbuffered pipe (fewer only at its end)."""
    parts, got = [], 0
    while got < size:
        part = source.read(size - got)
        if not part:
            break
        parts.append(part)
        got += len(part)
    return b"".join(parts)


def _receive(source: IO[bytes]) -> Any:
    """The next message, or None when the other side closed the pipe."""
    head = _read(source, _LENGTH.size)
    if len(head) < _LENGTH.size:
        return None
    (size,) = _LENGTH.unpack(head)
    return pickle.loads(_read(source, size))


class ReaderProcess:
    """The parent's side: ``polls()`` as ``Poller.polls`` yields them, read from the child;
    ``taken`` and ``stop_reason`` as the child reports them; ``close()`` ends the child."""

    def __init__(self, stream: Any) -> None:
        self.taken = 0
        self.stop_reason: str | None = None
        self._asked = False
        self.process = subprocess.Popen(
            [sys.executable, "-m", __name__, str(os.getpid())],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            bufsize=0,  # unbuffered: select() on it sees every byte not yet read
        )
        assert self.process.stdin is not None and self.process.stdout is not None
        _send(self.process.stdin, stream)

    def polls(self) -> Iterator[Poll]:
        """``(elements, watermark)`` per poll, elements already encoded, until the stream ends."""
        out = self.process.stdout
        assert out is not None
        while True:
            if STOP.is_set():
                self._ask_to_stop()
            if not self._asked and not select.select([out], [], [], 0.5)[0]:
                continue  # no poll yet: look at STOP again
            message = _receive(out)
            if message is None:
                code = self.process.wait()
                raise RuntimeError(f"the stream's reader process ended (exit code {code})")
            kind, *rest = message
            if kind == "poll":
                batches, watermark, self.taken = rest
                yield [(Encoded(data), when) for data, when in batches], watermark
            elif kind == "end":
                self.stop_reason, self.taken = rest
                return
            else:
                raise RuntimeError(f"the stream's reader process failed: {rest[0]}")

    def _ask_to_stop(self) -> None:
        if self._asked:
            return
        self._asked = True
        try:
            assert self.process.stdin is not None
            self.process.stdin.write(b"s")
            self.process.stdin.flush()
        except OSError:  # it ended already
            pass

    def close(self) -> None:
        """End the child (it has ended itself unless the stream failed)."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        for pipe in (self.process.stdin, self.process.stdout):
            if pipe is not None:
                try:
                    pipe.close()
                except OSError:
                    pass


def _die_with_parent() -> None:
    """SIGKILL this process when its parent dies (Linux; elsewhere the pipe's end stops it)."""
    import ctypes

    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    # The parent died before the line above? An orphan's new parent is pid 1 or a subreaper
    # (a container's init, a session manager): compare with the pid the parent passed.
    if len(sys.argv) > 1 and sys.argv[1].isdigit():
        orphaned = os.getppid() != int(sys.argv[1])
    else:
        orphaned = os.getppid() == 1
    if orphaned:
        os._exit(1)


def _decoded(entries: list[Any], fields: tuple[str, str, str], prepared: bool) -> Any:
    """``decode_batch`` of a window's entries; with ``prepared``, each record carries its
    ``window_hash`` (``DIGEST_KEY``) and its framed example (``attach_framed``), which the
    step would otherwise compute."""
    from beamline.stream_durable import attach_framed
    from beamline.window_hash import DIGEST_KEY, window_hash

    from .redis_stream import decode_batch

    batch = decode_batch(entries, *fields)
    if prepared:
        for record in batch[0]:
            record[DIGEST_KEY] = window_hash(record)
        attach_framed(batch[0])
    return batch


def main() -> None:
    """The child: read the stream's polls and write them to stdout (see the module)."""
    import redis

    from beamline.live_stream import window_batches

    from .redis_stream import Poller, entry_size
    from .resp import StreamConnection

    _die_with_parent()
    gc.freeze()  # the imports' objects out of the collector's view (see beamline.stream_engine)
    source = open(0, "rb", buffering=0, closefd=False)  # noqa: SIM115 - the process's stdin
    out = open(os.dup(1), "wb")  # noqa: SIM115 - the polls' pipe; stdout itself becomes stderr,
    os.dup2(2, 1)  # so that nothing a library prints can mix with the polls
    stream = _receive(source)
    fields = (stream.format, stream.feature, stream.label)
    prepared = not stream.transforms  # the records as read are the records stored
    try:
        timeout = 30 + stream.poll_interval
        client = redis.Redis.from_url(stream.url, socket_timeout=timeout)
        fast = (
            StreamConnection(stream.url, timeout)
            if StreamConnection.supported(stream.url)
            else None
        )
        poller = Poller(
            stream,
            client,
            stopped=lambda: bool(select.select([source], [], [], 0)[0]),
            read_new=None if fast is None else fast.read_new,
        )
        for elements, watermark in window_batches(
            poller.polls(), stream.window_seconds, entry_size
        ):
            batches = [
                (pickle.dumps(_decoded(value, fields, prepared), _PROTOCOL), when)
                for value, when in elements
            ]
            _send(out, ("poll", batches, watermark, poller.taken))
        _send(out, ("end", poller.stop_reason, poller.taken))
    except BrokenPipeError:  # the parent is gone
        return
    except Exception as exc:  # reported by the parent, which fails the step with it
        _send(out, ("error", f"{type(exc).__name__}: {exc}"))


if __name__ == "__main__":
    main()
