"""The reader process's own connection for its hot call, ``XREADGROUP ... >`` of new entries.

redis-py parses every reply with its general pure-Python parser (about 10 us a message of
three fields, the bare client loop's whole cost). A new-entries reply has one fixed shape::

    *1  *2  $<stream>  *<n>  ( *2  $<id>  *<2k>  ($<field> $<value>){k} ){n}

so this connection writes the command in RESP2 and cuts the reply straight into
``[(id, {field: value})]`` (the same bytes objects redis-py returns), a few slices per field.
Anything else (a nil reply after ``BLOCK``, an error) is handled too; everything the reader
does besides (the group, its pending entries, ``XAUTOCLAIM``) stays on redis-py.
"""

from __future__ import annotations

import socket
from typing import Any
from urllib.parse import unquote, urlparse

Entries = list[tuple[bytes, dict[bytes, bytes] | None]]


class RespError(Exception):
    """An error reply of the server (``-ERR ...``) to a command of this connection; ``end`` is
    where the reply ends in the buffer (None for a reply this module cannot follow)."""

    def __init__(self, message: str, end: int | None = None) -> None:
        super().__init__(message)
        self.end = end


class _Short(Exception):
    """The buffer ends inside the reply: read more."""


def command(*args: bytes | str | int) -> bytes:
    """``args`` as one RESP2 command (an array of bulk strings)."""
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg if isinstance(arg, bytes) else str(arg).encode()
        parts += (b"$%d\r\n" % len(data), data, b"\r\n")
    return b"".join(parts)


class StreamConnection:
    """A plain TCP connection to the server at ``url`` (``redis://[:password@]host:port/db``;
    ``supported(url)`` says whether this connection can serve it)."""

    CHUNK = 1 << 20

    def __init__(self, url: str, timeout: float) -> None:
        parsed = urlparse(url)
        self.sock = socket.create_connection(
            (parsed.hostname or "127.0.0.1", parsed.port or 6379), timeout=timeout
        )
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._buf = b""
        if parsed.password:
            user = [unquote(parsed.username)] if parsed.username else []
            self.call(b"AUTH", *user, unquote(parsed.password))
        db = (parsed.path or "/").strip("/")
        if db and db != "0":
            self.call(b"SELECT", db)

    @staticmethod
    def supported(url: str) -> bool:
        """Plain ``redis://`` (no TLS, no socket file, no query options)."""
        parsed = urlparse(url)
        return parsed.scheme == "redis" and not parsed.query

    def close(self) -> None:
        """Close the socket."""
        self.sock.close()

    def call(self, *args: bytes | str | int) -> Any:
        """Send a command and return its simple reply (status, integer or bulk string)."""
        self.sock.sendall(command(*args))
        while True:
            try:
                value, end = _simple(self._buf, 0)
            except _Short:
                self._more()
                continue
            except RespError as exc:
                self._skip(exc)
                raise
            self._buf = self._buf[end:]
            return value

    def read_new(
        self, group: str, consumer: str, stream: str, count: int, block_ms: int | None
    ) -> Entries:
        """``XREADGROUP GROUP group consumer COUNT count [BLOCK ms] STREAMS stream >``: the
        entries (``[]`` when none came within ``block_ms``)."""
        args: list[bytes | str | int] = [b"XREADGROUP", b"GROUP", group, consumer]
        args += [b"COUNT", count]
        if block_ms is not None:
            args += [b"BLOCK", block_ms]
        self.sock.sendall(command(*args, b"STREAMS", stream, b">"))
        return self._entries_reply()

    def _more(self) -> None:
        chunk = self.sock.recv(self.CHUNK)
        if not chunk:
            raise ConnectionError("the Redis server closed the connection")
        self._buf += chunk

    def _skip(self, error: RespError) -> None:
        """Drop an error reply from the buffer; a reply out of step closes the connection."""
        if error.end is None:
            self._buf = b""
            self.close()
        else:
            self._buf = self._buf[error.end :]

    def _entries_reply(self) -> Entries:
        """Parse ``*1 *2 $stream *n`` and the ``n`` entries, reading as needed; the buffer is
        cut after each complete entry, so nothing is parsed twice."""
        while True:
            try:
                n, pos = _reply_head(self._buf)
                break
            except _Short:
                self._more()
            except RespError as exc:
                self._skip(exc)
                raise
        out: Entries = []
        buf = self._buf
        while len(out) < n:
            try:
                entry, pos = _entry(buf, pos)
            except _Short:
                buf = buf[pos:] + self.sock.recv(self.CHUNK)
                if len(buf) == 0:
                    raise ConnectionError("the Redis server closed the connection") from None
                pos = 0
                continue
            except RespError as exc:  # out of step: the connection cannot go on
                self._skip(exc)
                raise
            out.append(entry)
        self._buf = buf[pos:]
        return out


def _line(buf: bytes, pos: int) -> tuple[bytes, int]:
    end = buf.find(b"\r\n", pos)
    if end < 0:
        raise _Short
    return buf[pos:end], end + 2


def _simple(buf: bytes, pos: int) -> tuple[Any, int]:
    """A status, error, integer, or bulk string reply at ``pos``."""
    line, pos = _line(buf, pos)
    kind, rest = line[:1], line[1:]
    if kind == b"-":
        raise RespError(rest.decode("utf-8", "replace"), pos)
    if kind == b"+":
        return rest, pos
    if kind == b":":
        return int(rest), pos
    if kind == b"$":
        size = int(rest)
        if size < 0:
            return None, pos
        if len(buf) < pos + size + 2:
            raise _Short
        return buf[pos : pos + size], pos + size + 2
    raise RespError(f"unexpected reply {line[:40]!r}")


def _reply_head(buf: bytes) -> tuple[int, int]:
    """The number of entries of an ``XREADGROUP`` reply of one stream and where they start."""
    line, pos = _line(buf, 0)
    if line == b"*-1" or line == b"*0":  # BLOCK timed out, or nothing new
        return 0, pos
    if line[:1] == b"-":
        raise RespError(line[1:].decode("utf-8", "replace"), pos)
    if line != b"*1":
        raise RespError(f"unexpected XREADGROUP reply {line[:40]!r}")
    line, pos = _line(buf, pos)
    if line != b"*2":
        raise RespError(f"unexpected XREADGROUP reply {line[:40]!r}")
    _, pos = _simple(buf, pos)  # the stream's name
    line, pos = _line(buf, pos)
    return int(line[1:]), pos


def _entry(buf: bytes, pos: int) -> tuple[tuple[bytes, dict[bytes, bytes] | None], int]:
    """One ``*2 $id *2k ...`` entry at ``pos`` (its fields None when the entry was deleted)."""
    find = buf.find
    end = find(b"\r\n", pos)
    if end < 0 or buf[pos:end] != b"*2":
        if end < 0:
            raise _Short
        raise RespError(f"unexpected stream entry {buf[pos : pos + 40]!r}")
    pos = end + 2
    end = find(b"\r\n", pos)
    if end < 0:
        raise _Short
    start = end + 2
    pos = start + int(buf[pos + 1 : end])
    entry_id = buf[start:pos]
    pos += 2
    end = find(b"\r\n", pos)
    if end < 0:
        raise _Short
    count = int(buf[pos + 1 : end])
    pos = end + 2
    if count < 0:
        return (entry_id, None), pos
    values = []
    for _ in range(count):
        end = find(b"\r\n", pos)
        if end < 0:
            raise _Short
        start = end + 2
        pos = start + int(buf[pos + 1 : end])
        values.append(buf[start:pos])
        pos += 2
    if pos > len(buf):
        raise _Short
    return (entry_id, dict(zip(values[::2], values[1::2], strict=True))), pos
