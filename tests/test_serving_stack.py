"""The server's HTTP stack: uvloop + httptools where they import, else asyncio + h11.

Both choices are real uvicorn configurations that load (the fallback is what a machine without
uvicorn's ``standard`` extras runs)."""

from __future__ import annotations

import uvicorn

from beamline_plugins.serving import server


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
