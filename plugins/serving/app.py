"""The ASGI application (Starlette): TF Serving's REST API, health and metrics.

- ``GET /v1/models/NAME[/versions/V]``: ``{"model_version_status": [...]}``
- ``GET /v1/models/NAME[/versions/V]/metadata``: ``{"model_spec", "metadata": {"signature_def"}}``
- ``POST /v1/models/NAME[/versions/V]:predict``: ``instances`` or ``inputs`` (``rest_codec``)
- ``GET /healthz``: 200 ``{"status": "ok", ...}`` once a version answers
- ``GET /metrics``: Prometheus text (``metrics``)

Every error is JSON ``{"error": message}``: 400 for a bad request (naming the field and the
form expected), 404 for an unknown model or version, 500 for a fault of the server, which
keeps serving. JSON is written by ``rest_codec.dumps`` (orjson when installed).

``GET``, ``HEAD`` and ``POST`` under ``/v1/models/`` are answered by a plain ASGI function in
front of Starlette (no middleware stack, router or ``Request``/``Response`` objects per
request: the predict hot path); Starlette serves the rest (``/healthz``, ``/metrics``, the
404s and 405s) and the lifespan.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from .batcher import Batcher
from .loader import LoadedVersion, UnreadableInput
from .manager import ModelManager
from .metrics import CONTENT_TYPE, ServingMetrics
from .rest_codec import BadRequest, decode_request, dumps, encode_response

MODELS = "/v1/models/"
JSON_HEADERS = [(b"content-type", b"application/json")]
MODEL_PATH = re.compile(
    r"^(?P<name>[^/:]+)(?:/versions/(?P<version>[^/:]+))?(?P<tail>/metadata|:[A-Za-z]+)?$"
)


@dataclass
class ServeOptions:
    """Limits and batching of a server."""

    max_batch: int = 32
    batch_wait_ms: float = 5.0
    max_body_bytes: int = 16 * 1024 * 1024
    tf_threads: int | None = None  # TensorFlow's op threads; None: the cores but one, 0: TF's
    inference_threads: int = 0  # threads running batches; 0: on the event loop (less CPU)


def create_app(
    manager: ModelManager, metrics: ServingMetrics, options: ServeOptions | None = None
) -> Any:
    """The ASGI application serving ``manager``'s model (Starlette behind a lean
    ``/v1/models/`` path)."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    options = options or ServeOptions()
    batcher = Batcher(
        max_batch=options.max_batch,
        max_wait=options.batch_wait_ms / 1000,
        threads=options.inference_threads,
        on_batch=metrics.batch,
    )

    def json_response(value: Any, status: int = 200) -> Response:
        return Response(dumps(value), status_code=status, media_type="application/json")

    def error(status: int, message: str) -> Response:
        return json_response({"error": message}, status)

    async def health(request: Request) -> Response:
        current = manager.current
        if current is None:
            return json_response({"status": "unavailable", "model": manager.name}, 503)
        return json_response({"status": "ok", "model": manager.name, "version": current.version})

    async def prometheus(request: Request) -> Response:
        return Response(metrics.text(), media_type=CONTENT_TYPE)

    async def models(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        """``GET``, ``HEAD`` or ``POST`` under ``/v1/models/``: answered here, without
        Starlette."""
        started = time.perf_counter()
        rest = _route_path(scope)[len(MODELS) :]
        route = "predict" if ":" in rest else "metadata" if rest.endswith("/metadata") else "status"
        try:
            status, body = await _models(scope, receive, rest)
        except BadRequest as exc:
            status, body = exc.status, dumps({"error": exc.message})
        except _Disconnected:  # the client went away while sending: no one to answer
            return
        except Exception as exc:  # a fault of ours: answer, count, keep serving
            status = 500
            body = dumps({"error": f"internal error: {type(exc).__name__}: {exc}"})
        metrics.request(route, status, time.perf_counter() - started)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [*JSON_HEADERS, (b"content-length", b"%d" % len(body))],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def _models(scope: dict[str, Any], receive: Receive, rest: str) -> tuple[int, bytes]:
        match = MODEL_PATH.match(rest)
        if not match:
            raise BadRequest(
                f"path {scope['path']}: expected /v1/models/NAME[/versions/V] followed by "
                "nothing, /metadata or :predict",
                404,
            )
        name, version_text, tail = match["name"], match["version"], match["tail"] or ""
        if name != manager.name:
            raise BadRequest(
                f"no model {name!r} here (this server serves {manager.name!r}): "
                f"Servable not found for request: Latest({name})",
                404,
            )
        version = _version(version_text)
        method = scope["method"]
        if tail.startswith(":"):
            if tail != ":predict":
                raise BadRequest(
                    f"{tail[1:]}: not supported; expected :predict (the REST predict API)",
                    400 if tail in (":classify", ":regress") else 404,
                )
            if method != "POST":
                raise BadRequest(":predict takes POST with a JSON body", 405)
            return 200, await _predict(scope, receive, version)
        if method != "GET":
            raise BadRequest(f"{scope['path']} takes GET", 405)
        if tail == "/metadata":
            return 200, dumps(_metadata(_loaded(version)))
        return 200, dumps(_status(version))

    def _version(text: str | None) -> int | None:
        if text is None:
            return None
        if not text.isdigit():
            raise BadRequest(f"version {text!r}: expected a version number such as 1", 400)
        return int(text)

    def _loaded(version: int | None) -> LoadedVersion:
        model = manager.get(version)
        if model is None:
            current = manager.current
            if current is None:
                raise BadRequest(
                    f"model {manager.name!r} has no version loaded yet (waiting for "
                    f"{manager.path}/<version>/): Servable not found for request: "
                    f"Latest({manager.name})",
                    404,
                )
            raise BadRequest(
                f"model {manager.name!r} has no version {version} loaded (loaded: "
                f"{current.version}): Servable not found for request: "
                f"Specific({manager.name}, {version})",
                404,
            )
        return model

    async def _predict(scope: dict[str, Any], receive: Receive, version: int | None) -> bytes:
        with batcher.arriving():  # a batch starting meanwhile waits for this request
            body = await _body(scope, receive, options.max_body_bytes)
            model = _loaded(version)  # taken once: this request is answered by one version
            decoded = decode_request(body, model.inputs, model.signature_name)
        try:
            outputs = await batcher.predict(model, decoded.columns, decoded.rows)
        except UnreadableInput as exc:
            where = decoded.field_of(exc.row or 0, next(iter(model.inputs)))
            spec = next(iter(model.inputs.values()))
            raise BadRequest(
                f"{where}: the model cannot read this value ({exc.reason}); expected "
                f"{spec.expected}"
            ) from None
        return dumps(encode_response(outputs, decoded.row_format))

    def _metadata(model: LoadedVersion) -> dict[str, Any]:
        return {
            "model_spec": {
                "name": manager.name,
                "signature_name": "",
                "version": str(model.version),
            },
            "metadata": {"signature_def": model.signature_def},
        }

    def _status(version: int | None) -> dict[str, Any]:
        states = dict(manager.states)  # the watcher thread may add one meanwhile
        if version is not None:
            if version not in states:
                raise BadRequest(
                    f"model {manager.name!r} has no version {version} "
                    f"(known: {', '.join(map(str, sorted(states))) or 'none'})",
                    404,
                )
            states = {version: states[version]}
        return {
            "model_version_status": [
                {
                    "version": str(v),
                    "state": s.state,
                    "status": {
                        "error_code": "UNKNOWN" if s.error else "OK",
                        "error_message": s.error,
                    },
                }
                for v, s in sorted(states.items(), reverse=True)
            ]
        }

    async def not_found(request: Request, exc: Exception) -> Response:
        return error(404, f"{request.url.path}: not found; expected /v1/models/{manager.name}")

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> Any:
        yield
        batcher.close()

    rest_of_the_app = Starlette(
        routes=[
            Route("/healthz", health),
            Route("/metrics", prometheus),
            Route("/v1/models/{rest:path}", _other_methods, methods=["GET", "POST"]),
        ],
        exception_handlers={404: not_found},
        lifespan=lifespan,
    )

    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] in ("GET", "HEAD", "POST")  # Starlette's route took these
            and _route_path(scope).startswith(MODELS)
        ):
            await models(scope, receive, send)
        else:
            await rest_of_the_app(scope, receive, send)

    return app


Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


class _Disconnected(Exception):
    """The client closed the connection before its request body was complete."""


async def _other_methods(request: Any) -> None:
    raise AssertionError("GET, HEAD and POST under /v1/models/ are answered before Starlette")


def _route_path(scope: dict[str, Any]) -> str:
    """The request path without the ASGI ``root_path`` (as Starlette's router matches it)."""
    path, root = scope["path"], scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


async def _body(scope: dict[str, Any], receive: Receive, limit: int) -> bytes:
    """The request body, refused once it passes ``limit`` bytes (before reading it all)."""
    for name, value in scope["headers"]:
        if name == b"content-length" and value.isdigit() and int(value) > limit:
            raise BadRequest(_too_large(int(value), limit))
    chunks, size, more = [], 0, True
    while more:
        message = await receive()
        if message["type"] != "http.request":
            raise _Disconnected
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BadRequest(_too_large(size, limit, at_least=True))
        chunks.append(chunk)
        more = message.get("more_body", False)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _too_large(size: int, limit: int, at_least: bool = False) -> str:
    more = "more than " if at_least else ""
    return (
        f"request body: {more}{size} bytes; expected at most {limit} bytes (the server's "
        "--max-body-bytes): send fewer examples per request"
    )
