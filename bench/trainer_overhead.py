"""Rows of case ``input``: ``keras_trainer`` against plain Keras ``model.fit``, same model, same
``tf.data`` input, same steps.

The taxi job (``bench/pipelines/taxi.yaml``, wide and deep, batch 40) after one ingest of TFX's
sample. ``trainer``: ``pipeline run --only train`` (eval split off, so an epoch is training
only); its per-epoch seconds come from ``report/history.json``. ``keras``: the same
``table_input`` dataset and ``wide_deep`` model built in a fresh process, compiled with the same
optimiser and loss, ``model.fit`` with a callback timing each epoch. Throughput is train rows
per second over epochs 2 and later (the first holds tracing and the cache fill on both sides).
Each variant runs in its own process, interleaved, medians over repeats.

    python -m bench.trainer_overhead keras RUNS_DIR EPOCHS    # one measurement (JSON line)
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from .common import CACHE, ROOT, interleaved, median, row
from .taxi_data import taxi_table

PIPELINE = ROOT / "bench" / "pipelines" / "taxi.yaml"
RUNS = CACHE / "work" / "trainer-overhead"


def _settings(data: Path) -> list[str]:
    return [
        "--set",
        f"steps.ingest.path={data / 'all.csv'}",
        "--set",
        f"steps.validate.schema={RUNS / 'schema.pbtxt'}",
        "--set",
        "steps.train.eval_split=''",
    ]


def prepare(data: Path) -> Path:
    """Ingest the sample once into ``RUNS`` (the examples both variants read)."""
    if not list(RUNS.glob("taxi_bench/*/ingest/meta.json")):
        command = [sys.executable, "-m", "beamline", "--runs-dir", str(RUNS), "run",
                   str(PIPELINE), *_settings(data), "--until", "ingest"]  # fmt: skip
        subprocess.run(command, cwd=ROOT, check=True, capture_output=True, timeout=1800)
    return RUNS


def trainer(data: Path, epochs: int) -> dict[str, Any]:
    """``keras_trainer`` through ``pipeline run --only train``: seconds of each epoch."""
    command = [sys.executable, "-m", "beamline", "--runs-dir", str(RUNS), "run", str(PIPELINE),
               *_settings(data), "--set", f"steps.train.epochs={epochs}", "--only", "train",
               "--force"]  # fmt: skip
    subprocess.run(command, cwd=ROOT, check=True, capture_output=True, timeout=1800)
    history = sorted(RUNS.glob("taxi_bench/*/train/report/history.json"))[-1]
    return {"epoch_s": [e["seconds"] for e in json.loads(history.read_text())["epochs"]]}


def keras_fit(runs: Path, epochs: int, jit: bool = True) -> dict[str, Any]:
    """Plain ``model.fit`` on the same input pipeline and model (run in its own process);
    ``jit``: Keras' default ``jit_compile="auto"`` (XLA on CPU), else plain ``tf.function``."""
    import keras

    import beamline
    from beamline.artifacts import Artifact

    spec, _ = beamline.load(PIPELINE, _settings(taxi_table())[1::2])
    train = next(s for s in spec.steps if s.name == "train").component
    examples = Artifact.open(sorted(runs.glob("taxi_bench/*/ingest/meta.json"))[-1].parent)
    inputs = train.input.model_inputs(examples)
    ds = train.input.dataset(examples, "train", inputs=inputs, training=True, batch_size=40)
    keras.utils.set_random_seed(0)
    model = train.model.build(inputs, 2)
    model.compile(
        optimizer=keras.optimizers.Adam(train.learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
        jit_compile="auto" if jit else False,
    )
    times: list[float] = []

    class Timer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            times.append(time.perf_counter())

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            times[-1] = time.perf_counter() - times[-1]

    model.fit(ds, epochs=epochs, verbose=0, callbacks=[Timer()])
    return {"epoch_s": times}


def _measure(variant: str, data: Path, epochs: int) -> dict[str, Any]:
    if variant == "trainer":
        return trainer(data, epochs)
    out = subprocess.run(
        [sys.executable, "-m", "bench.trainer_overhead", variant, str(RUNS), str(epochs)],
        cwd=ROOT, check=True, capture_output=True, text=True, timeout=1800,
    )  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def run(smoke: bool = False) -> list[dict[str, Any]]:
    """Train rows per second (epochs 2+) of both, interleaved; the ratio trainer / keras."""
    if smoke:
        return []
    data = taxi_table()
    prepare(data)
    epochs, repeats = 8, 3
    rows_per_epoch = sum(1 for _ in (data / "train" / "data.csv").open()) - 1
    variants = {v: (lambda v=v: _measure(v, data, epochs)) for v in ("keras", "trainer")}
    samples = interleaved(variants, repeats)
    rate = {
        name: median(rows_per_epoch * (epochs - 1) / sum(s["epoch_s"][1:]) for s in values)
        for name, values in samples.items()
    }
    best = {  # the fastest epoch: less exposed to other jobs on a shared machine
        name: max(rows_per_epoch / min(s["epoch_s"][1:]) for s in values)
        for name, values in samples.items()
    }
    ratio = rate["trainer"] / rate["keras"]
    out = []
    for name in ("keras", "trainer"):
        steady = [statistics.fmean(s["epoch_s"][1:]) for s in samples[name]]
        extra = {
            "rows_per_s": round(rate[name]),
            "best_epoch_rows_per_s": round(best[name]),
            "best_ratio": round(best["trainer"] / best["keras"], 3),
            "epoch_s": [s["epoch_s"] for s in samples[name]],
        }
        is_trainer = name == "trainer"
        out.append(row("input", f"taxi wide_deep fit: {name}", median(steady), median(steady),
                       ratio if is_trainer else 1.0,
                       ">= 0.95x model.fit rows/s" if is_trainer else "",
                       ratio >= 0.95 if is_trainer else None, **extra))  # fmt: skip
    return out


if __name__ == "__main__":
    jit = sys.argv[1] != "keras_no_jit"
    print(json.dumps(keras_fit(Path(sys.argv[2]), int(sys.argv[3]), jit)), flush=True)
