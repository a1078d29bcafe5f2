"""One socket write per answer: uvicorn's HTTP protocol with a response's head sent with its body.

uvicorn writes an answer's status line and headers (``http.response.start``) and then its body
(``http.response.body``) as two writes: two ``send`` calls, and on loopback two TCP segments,
each waking the client. Here the head is held until the body's write, which sends both at once;
a head with no body write in the same turn of the event loop (a streamed answer, an interim
``100 Continue``) is sent at the end of that turn, and before the connection closes. The
protocol's HTTP parsing and every other behaviour stay uvicorn's.
"""

from __future__ import annotations

import asyncio
from typing import Any


def one_write_protocol(protocol_class: type) -> type:
    """``protocol_class`` (uvicorn's httptools or h11 protocol) writing each answer at once."""

    class OneWriteProtocol(protocol_class):  # type: ignore[misc, valid-type]
        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(HeldHead(transport, self.loop))

    OneWriteProtocol.__name__ = f"OneWrite{protocol_class.__name__}"
    OneWriteProtocol.__qualname__ = OneWriteProtocol.__name__
    return OneWriteProtocol


class HeldHead:
    """A transport that holds a response head (``HTTP/...`` up to its blank line) until the next
    write or the end of the event loop's turn; everything else goes to ``transport``."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: bytes | None = None

    def write(self, data: bytes) -> None:
        """Send ``data``, after the held head if there is one; hold a head."""
        held = self._held
        if held is not None:
            self._held = None
            self._transport.write(held + data)
        elif data[:5] == b"HTTP/" and data[-4:] == b"\r\n\r\n":
            self._held = data
            self._loop.call_soon(self.flush)
        else:
            self._transport.write(data)

    def flush(self) -> None:
        """Send the held head now (nothing when none is held or the connection is closing)."""
        held, self._held = self._held, None
        if held is not None and not self._transport.is_closing():
            self._transport.write(held)

    def close(self) -> None:
        """Send what is held, then close."""
        self.flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)
