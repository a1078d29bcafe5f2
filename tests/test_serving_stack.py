"""The server's HTTP stack: uvloop + httptools where they import, else asyncio + h11.

Both choices are real uvicorn configurations that load (the fallback is what a machine without
uvicorn's ``standard`` extras runs), and with either protocol an answer's head and body leave in
one write."""

from __future__ import annotations

import socket
import threading
import time

import pytest
import uvicorn
from uvicorn.config import HTTP_PROTOCOLS
from uvicorn.importer import import_from_string

from beamline_plugins.serving import server
from beamline_plugins.serving.one_write import one_write_protocol


async def _app(scope, receive, send):  # the smallest ASGI app uvicorn accepts
    return None


def test_uvloop_and_httptools_are_used_where_they_import():
    assert server.event_loop_and_parser() == {"loop": "uvloop", "http": "httptools"}


def test_without_them_the_server_falls_back_to_asyncio_and_h11(monkeypatch):
    monkeypatch.setattr(server, "_imports", lambda module: False)  # as if not installed
    chosen = server.event_loop_and_parser()
    assert chosen == {"loop": "asyncio", "http": "h11"}
    config = uvicorn.Config(_app, **chosen, lifespan="off")
    config.load()
    assert config.http_protocol_class.__name__ == "H11Protocol"


def test_a_missing_module_is_reported_as_not_importable():
    assert server._imports("uvloop") and not server._imports("no_such_module_here")


@pytest.mark.parametrize("http", ["httptools", "h11"])
def test_each_answer_goes_out_in_one_write_with_keep_alive_head_and_interim_answers(http):
    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        while (await receive()).get("more_body"):
            pass
        body = b"" if scope["method"] == "HEAD" else scope["path"].encode()
        headers = [(b"content-length", str(len(scope["path"])).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    protocol = one_write_protocol(import_from_string(HTTP_PROTOCOLS[http]))
    config = uvicorn.Config(app, loop="asyncio", http=protocol, lifespan="off", log_level="error")
    running = uvicorn.Server(config)
    sock = server.bind("127.0.0.1", 0)
    thread = threading.Thread(target=lambda: running.run(sockets=[sock]), daemon=True)
    thread.start()
    try:
        while not running.started:
            time.sleep(0.01)
        with socket.create_connection(sock.getsockname()[:2], timeout=5) as conn:
            conn.sendall(
                b"POST /a HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n"
            )
            assert conn.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"  # before the body
            conn.sendall(b"{}")
            answers = [_answer(conn)]
            for method, path in (("GET", "/bc"), ("HEAD", "/def")):
                conn.sendall(f"{method} {path} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
                answers.append(_answer(conn))
        assert [a.split(b"\r\n\r\n")[1] for a in answers] == [b"/a", b"/bc", b""]
        assert all(a.startswith(b"HTTP/1.1 200 OK\r\n") for a in answers)
    finally:
        running.should_exit = True
        thread.join(10)
        sock.close()


def _answer(conn: socket.socket) -> bytes:
    """One whole answer: a single recv, since the head and body come in one write."""
    data = conn.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
    assert len(body) in (0, length), data
    return data
