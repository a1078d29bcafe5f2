"""The ASGI application (Starlette): TF Serving's REST API, health and metrics.

- ``GET /v1/models/NAME[/versions/V]``: ``{"model_version_status": [...]}``
- ``GET /v1/models/NAME[/versions/V]/metadata``: ``{"model_spec", "metadata": {"signature_def"}}``
- ``POST /v1/models/NAME[/versions/V]:predict``: ``instances`` or ``inputs`` (``rest_codec``)
- ``GET /healthz``: 200 ``{"status": "ok", ...}`` once a version answers
- ``GET /metrics``: Prometheus text (``metrics``)

Every error is JSON ``{"error": message}``: 400 for a bad request (naming the field and the
form expected), 404 for an unknown model or version, 500 for a fault of the server, which
keeps serving. JSON is written by ``rest_codec.dumps`` (orjson when installed).
"""

from __future__ import annotations

import contextlib
import re
import time
from dataclasses import dataclass
from typing import Any

from .batcher import Batcher
from .loader import LoadedVersion, UnreadableInput
from .manager import ModelManager
from .metrics import CONTENT_TYPE, ServingMetrics
from .rest_codec import BadRequest, decode_request, dumps, encode_response

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
    inference_threads: int = 1  # threads running batches; 0: on the event loop


def create_app(
    manager: ModelManager, metrics: ServingMetrics, options: ServeOptions | None = None
) -> Any:
    """The Starlette application serving ``manager``'s model."""
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

    async def models(request: Request) -> Response:
        started = time.perf_counter()
        path = request.path_params["rest"]
        route = "predict" if ":" in path else "metadata" if path.endswith("/metadata") else "status"
        try:
            response = await _models(request)
        except BadRequest as exc:
            response = error(exc.status, exc.message)
        except Exception as exc:  # a fault of ours: answer, count, keep serving
            response = error(500, f"internal error: {type(exc).__name__}: {exc}")
        metrics.request(route, response.status_code, time.perf_counter() - started)
        return response

    async def _models(request: Request) -> Response:
        match = MODEL_PATH.match(request.path_params["rest"])
        if not match:
            raise BadRequest(
                f"path {request.url.path}: expected /v1/models/NAME[/versions/V] followed by "
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
        if tail.startswith(":"):
            if tail != ":predict":
                raise BadRequest(
                    f"{tail[1:]}: not supported; expected :predict (the REST predict API)",
                    400 if tail in (":classify", ":regress") else 404,
                )
            if request.method != "POST":
                raise BadRequest(":predict takes POST with a JSON body", 405)
            return await _predict(request, version)
        if request.method != "GET":
            raise BadRequest(f"{request.url.path} takes GET", 405)
        if tail == "/metadata":
            return json_response(_metadata(_loaded(version)))
        return json_response(_status(version))

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

    async def _predict(request: Request, version: int | None) -> Response:
        with batcher.arriving():  # a batch starting meanwhile waits for this request
            body = await _body(request, options.max_body_bytes)
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
        return json_response(encode_response(outputs, decoded.row_format))

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

    app = Starlette(
        routes=[
            Route("/healthz", health),
            Route("/metrics", prometheus),
            Route("/v1/models/{rest:path}", models, methods=["GET", "POST"]),
        ],
        exception_handlers={404: not_found},
        lifespan=lifespan,
    )
    return app


async def _body(request: Any, limit: int) -> bytes:
    """The request body, refused once it passes ``limit`` bytes (before reading it all)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise BadRequest(_too_large(int(declared), limit))
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BadRequest(_too_large(size, limit, at_least=True))
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(size: int, limit: int, at_least: bool = False) -> str:
    more = "more than " if at_least else ""
    return (
        f"request body: {more}{size} bytes; expected at most {limit} bytes (the server's "
        "--max-body-bytes): send fewer examples per request"
    )
