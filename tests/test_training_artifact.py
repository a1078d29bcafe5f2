"""The trainer's model artifact: the input pipeline comes back from model.json, not the file."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from data_paths import DIGITS, TESTS_DIR

from beamline.errors import PipelineError
from beamline_plugins.audio.inputs import AudioInput
from beamline_plugins.keras.table_input import TableInput
from beamline_plugins.text.lm_input import LmInput
from beamline_plugins.training.artifact import input_pipeline_record, rebuild_input_pipeline
from beamline_plugins.training.image_input import ImageInput


def _written(tmp_path: Path, info: dict) -> tuple[dict, Path]:
    path = tmp_path / "model.json"
    path.write_text(json.dumps(info), encoding="utf-8")  # through JSON, as a trainer writes it
    return json.loads(path.read_text(encoding="utf-8")), path


@pytest.mark.parametrize(
    "pipeline",
    [
        ImageInput(image_size=[6, 6], channels=1, augment=["flip", "crop"], cache=False),
        TableInput(task="classification", categorical=["sex"], encoding="embedding"),
        LmInput(sequence_length=16, shuffle_buffer=10),
        AudioInput(features="mfcc", mfcc=12, window_ms=30.0, augment=["shift"]),
    ],
)
def test_the_recorded_input_pipeline_is_rebuilt_with_its_params(tmp_path, pipeline) -> None:
    info, path = _written(tmp_path, {"inputs": {}, **input_pipeline_record(pipeline)})

    rebuilt = rebuild_input_pipeline(info, path)

    assert type(rebuilt) is type(pipeline)
    assert rebuilt == pipeline


def test_a_model_json_without_the_class_finds_the_pipeline_by_its_registered_name(
    tmp_path,
) -> None:
    record = input_pipeline_record(ImageInput(channels=3))
    del record["input_pipeline_class"]
    info, path = _written(tmp_path, record)

    assert rebuild_input_pipeline(info, path) == ImageInput(channels=3)


def test_a_param_the_pipeline_no_longer_has_says_to_rerun_the_trainer(tmp_path) -> None:
    record = input_pipeline_record(ImageInput())
    record["input_pipeline"]["sharpen"] = True
    info, path = _written(tmp_path, record)

    with pytest.raises(PipelineError, match=r"model\.json.*sharpen.*--force"):
        rebuild_input_pipeline(info, path)


def test_an_input_pipeline_that_is_not_installed_is_named_with_what_to_do(tmp_path) -> None:
    info, path = _written(
        tmp_path,
        {"input_pipeline": {"component": "gone_input"}, "input_pipeline_class": "nowhere:Gone"},
    )

    with pytest.raises(PipelineError, match=r"'gone_input' \(nowhere:Gone\) is not installed"):
        rebuild_input_pipeline(info, path)


def test_a_model_saved_twice_is_byte_identical(tmp_path: Path) -> None:
    import keras

    from beamline_plugins.training.artifact import write_model

    inputs = keras.Input((4,), name="x")
    model = keras.Model(inputs, keras.layers.Dense(3, name="scores")(inputs))
    for name in ("first", "second"):
        (tmp_path / name).mkdir()
        write_model(tmp_path / name, model, {"inputs": {}})
        time.sleep(2.1)  # zip entry times count in 2-second steps
    first, second = (tmp_path / n / "model.keras" for n in ("first", "second"))
    assert first.read_bytes() == second.read_bytes()
    reloaded = keras.saving.load_model(str(first), compile=False)
    assert [w.shape for w in reloaded.weights] == [w.shape for w in model.weights]


@pytest.mark.slow
def test_two_exports_of_the_same_weights_are_byte_identical(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.syspath_prepend(str(TESTS_DIR))
    from keras_support import python_env, write_examples, write_pipeline

    write_examples(tmp_path / "examples", DIGITS, per_class=20)
    steps = """\
  train:
    component: keras_trainer
    examples: data
    model: {component: cnn, filters: [8], dense_units: [16], dropout: 0.2}
    epochs: 1
  export:
    component: saved_model_exporter
    model: train
"""
    path = write_pipeline(tmp_path, tmp_path / "examples", steps)
    runs = tmp_path / "runs"
    digests = []
    # The first run trains and exports in one process (other models were built there before the
    # export); the two after it rerun the export step alone, each in a process of its own.
    for _ in range(3):
        command = [sys.executable, "-m", "beamline", "run", str(path), "--runs-dir", str(runs)]
        done = subprocess.run(
            [*command, "--force-step", "export"],
            env=python_env(),
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        (export,) = sorted(runs.glob("kdigits/*/export"))[-1:]
        files = sorted(p for p in (export / "saved_model").rglob("*") if p.is_file())
        digests.append({str(p.relative_to(export)): _sha256(p) for p in files})
    assert digests[0] == digests[1] == digests[2]
    assert "saved_model/variables/variables.data-00000-of-00001" in digests[0]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
