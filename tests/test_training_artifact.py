"""The trainer's model artifact: the input pipeline comes back from model.json, not the file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

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
