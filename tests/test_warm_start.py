"""keras_trainer's warm start: a fit begins from an earlier model's weights (a step, a trainer
folder or an export), freezes the layers asked, and says which layer does not fit."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from data_paths import DIGITS, TESTS_DIR
from keras_support import write_examples, write_pipeline

import beamline
from beamline.errors import SpecError

CNN = "{component: cnn, filters: [8, 16], dense_units: [16]}"
STEPS = f"""\
  pretrain:
    component: keras_trainer
    examples: data
    model: {CNN}
    epochs: 2
    learning_rate: 0.003
  export_pretrained:
    component: saved_model_exporter
    model: pretrain
  train:
    component: keras_trainer
    examples: data
    model: {CNN}
    epochs: 1
    learning_rate: 0.000000001
    warm_start: {{from: pretrain, freeze: ["conv2d*"]}}
"""


@pytest.fixture(autouse=True)
def _importable_support(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(TESTS_DIR))


@pytest.fixture(scope="module")
def examples(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small examples artifact of the digits (30 per class)."""
    folder = tmp_path_factory.mktemp("examples")
    write_examples(folder, DIGITS, per_class=30)
    return folder


@pytest.fixture(scope="module")
def warm_run(tmp_path_factory: pytest.TempPathFactory, examples: Path) -> beamline.Run:
    """data -> pretrain -> train warm-started from pretrain (a learning rate of 1e-9: the
    weights stay where they started)."""
    folder = tmp_path_factory.mktemp("pipeline")
    path = write_pipeline(folder, examples, STEPS)
    return beamline.run(path, runs_dir=folder / "runs").run


def _by_position(artifact: beamline.Artifact) -> list[np.ndarray]:
    import keras

    model = keras.saving.load_model(str(artifact.file("model.keras")), compile=False)
    return [w.numpy() for w in model.weights]


def test_a_warm_started_fit_begins_from_the_parent_weights_and_records_it(warm_run) -> None:
    parent, child = warm_run.artifact("pretrain"), warm_run.artifact("train")
    # the child starts from the parent's weights, layer names aside (conv2d_2 here)
    for mine, theirs in zip(_by_position(child), _by_position(parent), strict=True):
        np.testing.assert_allclose(mine, theirs, atol=1e-6)
    info = json.loads(child.file("model.json").read_text())["warm_start"]
    assert info["from"] == "pretrain" and info["format"] == "keras"
    assert len(info["loaded_layers"]) == 4 and not info["skipped_layers"]
    assert len(info["frozen_layers"]) == 2
    assert all(name.startswith("conv2d") for name in info["frozen_layers"])
    history = json.loads(child.file("report", "history.json").read_text())
    assert history["warm_start"]["loaded_layers"] == info["loaded_layers"]
    assert child.meta["inputs"]["warm_start.from"]["step"] == "pretrain"


def test_frozen_layers_keep_the_parent_weights_while_the_others_learn(
    tmp_path: Path, warm_run: beamline.Run, examples: Path
) -> None:
    export_free = STEPS.replace("learning_rate: 0.000000001", "learning_rate: 0.01")
    path = write_pipeline(tmp_path, examples, export_free)
    run = beamline.run(path, runs_dir=tmp_path / "runs").run
    parent, child = _by_position(run.artifact("pretrain")), _by_position(run.artifact("train"))
    conv = [0, 1, 2, 3]  # conv2d kernel, bias, conv2d_1 kernel, bias
    for index in conv:
        np.testing.assert_array_equal(child[index], parent[index])
    assert any(not np.array_equal(child[i], parent[i]) for i in range(4, len(child)))


def test_an_export_given_by_path_is_a_parent_and_enters_the_fingerprint(
    tmp_path: Path, warm_run, examples
) -> None:
    parent_dir = warm_run.artifact("export_pretrained").path
    steps = f"""\
  train:
    component: keras_trainer
    examples: data
    model: {CNN}
    epochs: 1
    warm_start: {{from: {parent_dir}, strict: true}}
"""
    path = write_pipeline(tmp_path, examples, steps)
    first = beamline.run(path, runs_dir=tmp_path / "runs")
    again = beamline.run(path, runs_dir=tmp_path / "runs")
    assert [r.status for r in again.records] == ["reused", "reused"]
    other = write_pipeline(
        tmp_path, examples, steps.replace(str(parent_dir), str(warm_run.artifact("train").path))
    )
    changed = beamline.run(other, runs_dir=tmp_path / "runs")
    assert [r.status for r in changed.records] == ["reused", "ran"]
    parts = first.run.artifact("train").meta["fingerprint_parts"]
    assert parts["data"] is not None
    info = json.loads(first.run.artifact("train").file("model.json").read_text())["warm_start"]
    assert info["format"] == "saved_model" and len(info["loaded_layers"]) == 4


def test_a_model_of_another_shape_is_refused_naming_the_layer(
    tmp_path: Path, warm_run, examples
) -> None:
    parent_dir = warm_run.artifact("pretrain").path
    steps = f"""\
  train:
    component: keras_trainer
    examples: data
    model: {{component: cnn, filters: [8, 16], dense_units: [32]}}
    epochs: 1
    warm_start: {{from: {parent_dir}}}
"""
    path = write_pipeline(tmp_path, examples, steps)
    with pytest.raises(
        beamline.PipelineError, match=r"layer 'dense\w*': dense\w*/\w+ has shape .*32.* here but"
    ):
        beamline.run(path, runs_dir=tmp_path / "runs")
    relaxed_steps = steps.replace(f"{parent_dir}}}", f"{parent_dir}, strict: false}}")
    relaxed = write_pipeline(tmp_path, examples, relaxed_steps)
    run = beamline.run(relaxed, runs_dir=tmp_path / "runs").run
    info = json.loads(run.artifact("train").file("model.json").read_text())["warm_start"]
    assert len(info["loaded_layers"]) == 2  # the two conv layers
    assert [s["layer"].split("_")[0] for s in info["skipped_layers"]] == ["dense", "scores"]


def test_an_unknown_warm_start_key_is_a_file_error(tmp_path: Path, examples: Path) -> None:
    steps = STEPS.replace("freeze:", "freze:")
    path = write_pipeline(tmp_path, examples, steps)
    with pytest.raises(SpecError, match=r"kdigits.yaml:\d+.*warm_start.freze.*unknown key"):
        beamline.load(path)
