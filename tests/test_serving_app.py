"""The ASGI application without a server or TensorFlow: the lean ``/v1/models/`` path in front
of Starlette keeps every answer of the REST API (predict, status, 400/404/405, metrics).

The model is a small numpy function with a loaded version's interface, so these run in well
under a second; ``test_serving.py`` runs the same application on uvicorn with a real export.
"""

from __future__ import annotations

import asyncio

import httpx
import numpy as np

from beamline_plugins.serving.app import ServeOptions, create_app
from beamline_plugins.serving.loader import UnreadableInput
from beamline_plugins.serving.manager import VersionState
from beamline_plugins.serving.metrics import ServingMetrics
from beamline_plugins.serving.rest_codec import InputSpec


class Doubling:
    """Version 3 of a model that doubles ``x``; NaN is an example it cannot read."""

    version = 3
    signature_name = "serving_default"
    inputs = {"x": InputSpec("x", "float32")}
    signature_def = {"signature_def": {}}

    def predict(self, columns: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if np.isnan(columns["x"]).any():
            raise UnreadableInput("not a number")
        return {"y": columns["x"] * 2}

    def predict_rows(self, columns: dict[str, np.ndarray], rows: int) -> dict[str, np.ndarray]:
        try:
            return self.predict(columns)
        except UnreadableInput as exc:
            raise UnreadableInput(exc.reason, int(np.isnan(columns["x"]).argmax())) from None


class Manager:
    """The part of ``ModelManager`` the application reads."""

    name, path = "double", "models/double"
    current = Doubling()
    states = {3: VersionState("AVAILABLE")}

    def get(self, version: int | None) -> Doubling | None:
        return self.current if version in (None, 3) else None


def _answers(*requests: tuple[str, str, object]) -> list[httpx.Response]:
    metrics = ServingMetrics("double")
    app = create_app(Manager(), metrics, ServeOptions(max_body_bytes=200))

    async def send_all() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            out = []
            for method, path, body in requests:
                content = body if isinstance(body, bytes) else None
                json = None if isinstance(body, bytes) or body is None else body
                out.append(await client.request(method, path, content=content, json=json))
            out.append(await client.get("/metrics"))
            return out

    return asyncio.run(asyncio.wait_for(send_all(), 10))


def test_the_lean_path_answers_predict_status_and_every_error_as_before():
    answers = _answers(
        ("POST", "/v1/models/double:predict", {"instances": [1.0, 2.5]}),
        ("POST", "/v1/models/double/versions/3:predict", {"inputs": [4.0]}),
        ("GET", "/v1/models/double", None),
        ("POST", "/v1/models/double:predict", b'{"instances": [1.0, NaN]}'),
        ("POST", "/v1/models/double:predict", b'{"instances": [1.0], "x": 1}'),
        ("POST", "/v1/models/double:predict", b"[" + b"1.0," * 60 + b"1.0]"),
        ("GET", "/v1/models/double:predict", None),
        ("POST", "/v1/models/double/versions/9:predict", {"instances": [1.0]}),
        ("POST", "/v1/models/cats:predict", {"instances": [1.0]}),
        ("POST", "/v1/models/double:classify", {"examples": []}),
        ("PUT", "/v1/models/double", b"{}"),
        ("HEAD", "/v1/models/double/metadata", None),
        ("GET", "/nothing", None),
    )
    (
        ok,
        columns,
        status,
        nan,
        key,
        large,
        get,
        version,
        cats,
        classify,
        put,
        head,
        nothing,
        metrics,
    ) = [(a.status_code, a.headers.get("content-type"), a.text) for a in answers]
    assert ok == (200, "application/json", '{"predictions":[2.0,5.0]}')
    assert columns[0] == 200 and columns[2] == '{"outputs":[8.0]}'
    assert status[0] == 200 and '"version":"3","state":"AVAILABLE"' in status[2]
    assert nan[0] == 400 and "instances[1]: the model cannot read this value" in nan[2]
    assert key[0] == 400 and "request key 'x'" in key[2]
    assert large[0] == 400 and "expected at most 200 bytes" in large[2]
    assert get[0] == 405 and ":predict takes POST" in get[2]
    assert version[0] == 404 and "Specific(double, 9)" in version[2]
    assert cats[0] == 404 and "Latest(cats)" in cats[2]
    assert classify[0] == 400 and "classify: not supported" in classify[2]
    assert put[0] == 405  # Starlette's router, as before
    assert head[0] == 405 and head[2] == ""  # the answer's head only
    assert nothing[0] == 404 and "expected /v1/models/double" in nothing[2]
    assert 'route="predict",code="200"} 2' in metrics[2]
    assert 'route="predict",code="400"} 4' in metrics[2]
    assert 'route="predict",code="404"} 2' in metrics[2]
