"""``pipeline serve``: a real server on a free port, a real digits export, a TF Serving client.

One digits run (1 epoch) publishes version 1 into a model folder through the exporter's
``publish:``; a second run (2 epochs, a better model) is published as version 2 while clients
keep predicting. The client speaks TF Serving's REST format with httpx, as any existing client.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from data_paths import DIGITS, PROJECT_DIR

from beamline.model_folder import publish, versions

pytestmark = pytest.mark.slow

PNG = sorted((DIGITS / "3").glob("*.png"))[0].read_bytes()
OTHER = sorted((DIGITS / "7").glob("*.png"))[0].read_bytes()
FAST = ["--set", "steps.evaluate.thresholds.accuracy=0.1"]


def _b64(data: bytes) -> dict[str, str]:
    return {"b64": base64.b64encode(data).decode("ascii")}


def _pipeline(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run(
        [sys.executable, "-m", "beamline", *args],
        cwd=PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="session")
def digits_exports(tmp_path_factory):
    """Two digits runs: the first (1 epoch) published as version 1 of ``models/digits``, the
    second (2 epochs: a better model, which the evaluator blesses) only exported.
    Returns (runs dir, model root, second export)."""
    work = tmp_path_factory.mktemp("serving")
    runs, models = work / "runs", work / "models"
    first = _pipeline(
        "run", "pipelines/digits.yaml", "--runs-dir", str(runs), *FAST,
        "--set", "steps.train.epochs=1", "--set", f"steps.export.publish={models}", "--json",
    )  # fmt: skip
    assert first.returncode == 0, first.stderr[-3000:]
    second = _pipeline(
        "run", "pipelines/digits.yaml", "--runs-dir", str(runs), *FAST,
        "--set", "steps.train.epochs=2", "--json",
    )  # fmt: skip
    assert second.returncode == 0, second.stderr[-3000:]
    run = json.loads(second.stdout)
    return runs, models, Path(run["run"]) / "export"


class Server:
    """``pipeline serve`` in a subprocess; ``url`` once it printed its ready line."""

    def __init__(self, *args: str) -> None:
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "beamline", "serve", *args, "--port", "0"],
            cwd=PROJECT_DIR,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        ready: list[str] = []
        reader = threading.Thread(target=lambda: ready.append(self.process.stdout.readline()))
        reader.start()
        reader.join(timeout=120)
        line = ready[0] if ready else ""
        if not line.startswith("serving "):
            self.stop()
            raise AssertionError(f"server did not start: {line!r} {self.process.stderr.read()}")
        self.line = line.strip()
        self.url = line.split(" at ")[1].split("/v1/")[0]
        self.client = httpx.Client(base_url=self.url, timeout=30)

    def predict(self, body: object, path: str = "/v1/models/digits:predict") -> httpx.Response:
        """POST a predict request (a JSON value, or raw bytes as they are)."""
        if isinstance(body, bytes):
            return self.client.post(path, content=body)
        return self.client.post(path, json=body)

    def stop(self) -> None:
        """Stop the server (SIGTERM) and wait for it."""
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()


@pytest.fixture(scope="module")
def server(digits_exports):
    """A server on the latest digits run (named by its pipeline), with a 64 KiB body limit."""
    runs, _, _ = digits_exports
    started = Server("digits", "--runs-dir", str(runs), "--max-body-bytes", "65536")
    yield started
    started.stop()


def test_the_exporter_publishes_a_version_tf_serving_loads(digits_exports):
    _, models, _ = digits_exports
    assert versions(models / "digits") == [1]
    version = models / "digits" / "1"
    assert (version / "saved_model.pb").is_file() and (version / "variables").is_dir()
    assert json.loads((version / "export.json").read_text())["signature"] == "serving_default"
    assert json.loads((version / "published.json").read_text())["source"].startswith("digits/")


def test_status_and_metadata_answer_like_tf_serving(server):
    assert "serving digits version 1 at http://127.0.0.1:" in server.line
    status = server.client.get("/v1/models/digits").json()
    assert status == {
        "model_version_status": [
            {
                "version": "1",
                "state": "AVAILABLE",
                "status": {"error_code": "OK", "error_message": ""},
            }
        ]
    }
    meta = server.client.get("/v1/models/digits/metadata").json()
    assert meta["model_spec"] == {"name": "digits", "signature_name": "", "version": "1"}
    signature = meta["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert signature["inputs"]["image"]["dtype"] == "DT_STRING"
    assert signature["outputs"]["scores"]["tensor_shape"]["dim"][1]["size"] == "10"
    assert signature["method_name"] == "tensorflow/serving/predict"
    assert server.client.get("/healthz").json() == {"status": "ok", "model": "digits", "version": 1}


def test_row_and_columnar_predictions_agree_and_name_the_outputs(server):
    rows = server.predict({"instances": [_b64(PNG), _b64(OTHER)]})
    assert rows.status_code == 200, rows.text
    predictions = rows.json()["predictions"]
    assert [set(p) for p in predictions] == [{"label", "scores"}] * 2
    assert [p["label"] for p in predictions] == ["3", "7"]
    assert len(predictions[0]["scores"]) == 10 and abs(sum(predictions[0]["scores"]) - 1) < 1e-4
    columns = server.predict(
        {"signature_name": "serving_default", "inputs": {"image": [_b64(PNG), _b64(OTHER)]}}
    )
    assert columns.status_code == 200, columns.text
    outputs = columns.json()["outputs"]
    assert outputs["label"] == ["3", "7"]
    for got, want in zip(outputs["scores"], [p["scores"] for p in predictions], strict=True):
        assert got == pytest.approx(want, abs=1e-6)
    named = server.predict(
        {"instances": [{"image": _b64(PNG)}]}, "/v1/models/digits/versions/1:predict"
    )
    assert named.json()["predictions"][0]["label"] == "3"


def test_concurrent_requests_are_batched_and_each_gets_its_own_rows(server):
    images = [PNG, OTHER] * 24
    results: dict[int, str] = {}

    def call(i: int) -> None:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            answer = client.post("/v1/models/digits:predict", json={"instances": [_b64(images[i])]})
            results[i] = answer.json()["predictions"][0]["label"]

    threads = [threading.Thread(target=call, args=(i,)) for i in range(len(images))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [results[i] for i in range(len(images))] == ["3", "7"] * 24
    metrics = server.client.get("/metrics").text
    batches = _metric(metrics, 'beamline_serving_batch_size_count{model="digits"}')
    examples = _metric(metrics, 'beamline_serving_batch_size_sum{model="digits"}')
    assert examples / batches > 1.0  # some batches held several requests


@pytest.mark.parametrize(
    ("body", "field", "expected"),
    [
        (b"{nope", "request body: not valid JSON", "expected an object"),
        (b"[1, 2]", "request body: a JSON list", '"instances" (row format)'),
        ({"instanses": [1]}, "request key 'instanses'", '"instances" (row format)'),
        ({"instances": [], "inputs": []}, "request: expected exactly one", "not both"),
        ({"instances": []}, "instances: a list", "non-empty list"),
        ({"instances": [{"b64": "@@"}]}, "instances[0].b64: not valid base64", '{"b64"'),
        ({"instances": [{"b64": 7}]}, "instances[0].b64: a number", "base64 text"),
        ({"instances": [{"pixels": [1]}]}, "instances[0].pixels: not an input", "inputs image"),
        ({"instances": [12]}, "instances[0]: a number", "an encoded image (PNG or JPEG)"),
        ({"inputs": {"image": "x"}}, "inputs.image: a string", "non-empty list"),
        ({"instances": [_b64(PNG)], "signature_name": "x"}, "signature_name: 'x'", "'serving_"),
        (
            {"instances": [_b64(PNG), _b64(b"GIF89a not really")]},
            "instances[1]: the model cannot read this value",
            "an encoded image (PNG or JPEG)",
        ),
        (
            {"instances": [_b64(PNG[: len(PNG) // 2])]},
            "instances[0]: the model cannot read this value",
            "an encoded image (PNG or JPEG)",
        ),
        ({"instances": [_b64(PNG)] * 400}, "request body:", "at most 65536 bytes"),
    ],
)  # fmt: skip
def test_a_bad_request_gets_400_naming_the_field_and_the_form_expected(
    server, body, field, expected
):
    answer = server.predict(body)
    assert answer.status_code == 400, answer.text
    message = answer.json()["error"]
    assert message.startswith(field) and expected in message, message


def test_unknown_models_versions_and_paths_are_404_and_the_server_keeps_serving(server):
    for path in ("/v1/models/cats:predict", "/v1/models/digits/versions/9:predict"):
        answer = server.predict({"instances": [_b64(PNG)]}, path)
        assert answer.status_code == 404 and "Servable not found" in answer.json()["error"]
    assert server.client.get("/v1/models/digits/versions/9").status_code == 404
    assert server.client.get("/nothing").status_code == 404
    # a body cut short on the wire, then a good request: the server is still there
    assert server.predict(b'{"instances": [{"b64": "iVBOR').status_code == 400
    assert server.predict({"instances": [_b64(PNG)]}).status_code == 200
    metrics = server.client.get("/metrics").text
    assert (
        _metric(
            metrics, 'beamline_serving_requests_total{model="digits",route="predict",code="404"}'
        )
        >= 2
    )
    assert 'beamline_serving_model_version{model="digits"} 1' in metrics
    assert "beamline_serving_request_seconds_bucket{" in metrics


def _wait_for_version(server: Server, version: str) -> list[dict]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status = server.client.get("/v1/models/digits").json()["model_version_status"]
        if status and status[0]["version"] == version and status[0]["state"] == "AVAILABLE":
            return status
        time.sleep(0.05)
    raise AssertionError(f"version {version} never became available: {status}")


def test_a_new_version_is_swapped_in_under_load_with_no_failed_request(digits_exports, tmp_path):
    _, models, second_export = digits_exports
    live = tmp_path / "live"  # a model folder nothing was published into yet
    served = Server(str(live / "digits"), "--poll-seconds", "0.2")
    try:
        assert "serving digits (no version yet) at" in served.line
        assert served.client.get("/healthz").status_code == 503
        waiting = served.predict({"instances": [_b64(PNG)]})
        assert waiting.status_code == 404 and "no version loaded yet" in waiting.json()["error"]
        assert publish(models / "digits" / "1", live, "digits").version == 1
        _wait_for_version(served, "1")
        before = served.predict({"instances": [_b64(PNG)]}).json()["predictions"][0]["scores"]
        failures: list[str] = []
        answered = [0, 0]  # before, after the swap
        swapped = threading.Event()
        stop = threading.Event()

        def client() -> None:
            with httpx.Client(base_url=served.url, timeout=30) as session:
                while not stop.is_set():
                    try:
                        answer = session.post(
                            "/v1/models/digits:predict", json={"instances": [_b64(PNG)]}
                        )
                        if answer.status_code != 200:
                            failures.append(f"{answer.status_code} {answer.text}")
                        answered[swapped.is_set()] += 1
                    except httpx.HTTPError as exc:
                        failures.append(repr(exc))

        threads = [threading.Thread(target=client) for _ in range(4)]
        for thread in threads:
            thread.start()
        time.sleep(1.0)
        assert publish(second_export, live, "digits").version == 2
        status = _wait_for_version(served, "2")
        swapped.set()
        time.sleep(1.0)
        stop.set()
        for thread in threads:
            thread.join()
        assert failures == []
        assert answered[0] > 10 and answered[1] > 10, answered
        assert [s["state"] for s in status] == ["AVAILABLE", "END"]
        after = served.predict({"instances": [_b64(PNG)]}).json()["predictions"][0]["scores"]
        pinned = served.predict({"instances": [_b64(PNG)]}, "/v1/models/digits/versions/2:predict")
        assert after == pinned.json()["predictions"][0]["scores"] and after != before
        metrics = served.client.get("/metrics").text
        assert 'beamline_serving_model_version{model="digits"} 2' in metrics
        assert 'beamline_serving_model_swaps_total{model="digits"} 1' in metrics
    finally:
        served.stop()


def test_serve_refuses_a_folder_without_a_saved_model(tmp_path):
    (tmp_path / "notes.txt").write_text("not a model")
    out = _pipeline("serve", str(tmp_path))
    assert out.returncode == 2
    assert "no SavedModel here" in out.stderr and "exporter step" in out.stderr


def _metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    raise AssertionError(f"no metric {name} in:\n{text}")
