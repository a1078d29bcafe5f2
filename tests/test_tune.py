"""The tune step's pipeline-file contract: search spaces checked at load with file:line errors,
``params_from`` wiring, and the best values applied to a train step (no training here)."""

from __future__ import annotations

import pytest
from data_paths import DIGITS

from beamline import SpecError
from beamline.plugins import load_plugins
from beamline.spec import load_spec
from beamline.tuning import apply_values, dimensions, parse_dimension

PIPELINE = f"""\
name: tuned
steps:
  ingest:
    component: image_folder
    root: {DIGITS}
  tune:
    component: optuna_tuner
    target: train
    space:
SPACE
    fixed: {{epochs: 2}}
    objective: {{metric: val_accuracy}}
  train:
    component: keras_trainer
    params_from: tune
    examples: ingest
    model: {{component: cnn, filters: [32, 64]}}
"""
SPACE = """\
      learning_rate: {log_uniform: [1.0e-4, 1.0e-2]}
      model.filters: {choice: [[16, 32], [32, 64]]}
      model.dropout: {uniform: [0, 0.5]}
      batch_size: {int: [16, 64]}
"""
SPACE_LINE = 10  # the first line under space:


@pytest.fixture(scope="module")
def plugins():
    return load_plugins(entry_points=False)


def _load(tmp_path, plugins, text=None, overrides=()):
    text = text or PIPELINE.replace("SPACE\n", SPACE)
    path = tmp_path / "tuned.yaml"
    path.write_text(text, encoding="utf-8")
    return path, load_spec(path, plugins, overrides)


def test_tune_step_reads_the_targets_inputs_and_train_reads_the_tune_step(tmp_path, plugins):
    _, spec = _load(tmp_path, plugins)
    assert spec.step_names == ["ingest", "tune", "train"]
    assert spec.step("tune").inputs == {"target.examples": "ingest"}
    assert spec.step("train").inputs == {"examples": "ingest", "params_from": "tune"}
    assert spec.step("tune").component.trial is spec.step("train").component
    keys = [d.key for d in dimensions(spec.step("tune").component.space)]
    assert keys == ["learning_rate", "model.filters", "model.dropout", "batch_size"]


@pytest.mark.parametrize(
    ("entry", "line", "message"),
    [
        (
            "model.filterz: {choice: [[8], [16]]}",
            SPACE_LINE,
            "steps.tune.space.model.filterz: 'filterz' is not a parameter of component 'cnn' "
            "(model); did you mean 'filters'?",
        ),
        (
            "epoch: {int: [1, 5]}",
            SPACE_LINE,
            "steps.tune.space.epoch: 'epoch' is not a parameter of component 'keras_trainer'",
        ),
        (
            "batch_size: {uniform: [16, 64]}",
            SPACE_LINE,
            "uniform draws numbers, but 'batch_size' is integer (use int or log_int)",
        ),
        (
            "model.filters: {uniform: [8, 64]}",
            SPACE_LINE,
            "uniform draws numbers, but 'model.filters' is list of integer (use choice)",
        ),
        (
            "model.dropout: {uniform: [0, 1.5]}",
            SPACE_LINE,
            "steps.tune.space.model.dropout.uniform[1]: 'model.dropout' must be in [0, 1), got 1.5",
        ),
        (
            "model.filters: {choice: [[16, 32], [x]]}",
            SPACE_LINE,
            "steps.tune.space.model.filters.choice[1][0]: expected integer, got 'x' (text)",
        ),
        (
            "learning_rate: {log_uniform: [0, 0.1]}",
            SPACE_LINE,
            "log_uniform: a log scale needs low > 0, got 0",
        ),
        (
            "learning_rate: {loguniform: [1.0e-4, 0.1]}",
            SPACE_LINE,
            "expected a range {uniform: [low, high]}",
        ),
        (
            "model: {choice: [cnn, mlp]}",
            SPACE_LINE,
            "'model' is a component: search its parameters (model.<parameter>)",
        ),
        (
            "examples: {choice: [ingest, tune]}",
            SPACE_LINE,
            "'examples' names an input step, which a search cannot change",
        ),
    ],
)
def test_bad_search_space_entry_is_rejected_at_its_line(tmp_path, plugins, entry, line, message):
    text = PIPELINE.replace("SPACE\n", f"      {entry}\n")
    path = tmp_path / "tuned.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SpecError) as caught:
        load_spec(path, plugins)
    assert str(caught.value).startswith(f"{path}:{line}: steps.tune.space.")
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            "    target: train\n",
            "    target: trian\n",
            "steps.tune.target: expected the step whose parameters to search, got 'trian'; did you "
            "mean 'train'?",
        ),
        (
            "    params_from: tune\n",
            "    params_from: ingest\n",
            "steps.train.params_from: step 'ingest' is a source step; params_from names a tune "
            "step whose target is 'train'",
        ),
        (
            "    params_from: tune\n",
            "    params_from: tuen\n",
            "steps.train.params_from: expected the name of a tune step of this pipeline, got "
            "'tuen'; did you mean 'tune'?",
        ),
        (
            "    fixed: {epochs: 2}\n",
            "    fixed: {epochs: 0}\n",
            "steps.tune.fixed.epochs: must be >= 1, got 0",
        ),
        (
            "    fixed: {epochs: 2}\n",
            "    fixed: {epochs: 2, batch_size: 8}\n",
            "steps.tune.fixed: batch_size: searched in space and fixed here",
        ),
    ],
)
def test_bad_tune_wiring_is_rejected_with_the_file_and_key(tmp_path, plugins, old, new, message):
    path = tmp_path / "tuned.yaml"
    path.write_text(PIPELINE.replace("SPACE\n", SPACE).replace(old, new, 1), encoding="utf-8")
    with pytest.raises(SpecError) as caught:
        load_spec(path, plugins)
    assert str(caught.value).startswith(f"{path}:")
    assert message in str(caught.value)


def test_set_writes_nested_space_keys_that_mean_the_same_as_dotted_ones(tmp_path, plugins):
    _, spec = _load(tmp_path, plugins, overrides=["steps.tune.space.model.l2={uniform: [0, 0.01]}"])
    keys = [d.key for d in dimensions(spec.step("tune").component.space)]
    assert "model.l2" in keys
    path = tmp_path / "tuned.yaml"
    with pytest.raises(SpecError, match=r"--set steps.tune.space.model.l2=.*must be >= 0"):
        load_spec(path, plugins, ["steps.tune.space.model.l2={uniform: [-1, 0.01]}"])


def test_best_values_apply_to_nested_components_with_their_types_and_limits(tmp_path, plugins):
    _, spec = _load(tmp_path, plugins)
    train = spec.step("train").component
    tuned = apply_values(train, {"learning_rate": 0.004, "model.filters": [16, 32], "epochs": 3})
    assert (tuned.learning_rate, tuned.model.filters, tuned.epochs) == (0.004, [16, 32], 3)
    assert (train.learning_rate, train.model.filters) == (0.001, [32, 64])  # a copy
    assert tuned.model.name == "cnn" and tuned.input == train.input
    with pytest.raises(SpecError, match="model.dropout: must be in"):
        apply_values(train, {"model.dropout": 1.5})


def test_range_forms_parse_to_dimensions():
    assert parse_dimension("lr", {"log_uniform": [1e-4, 1e-2]}).is_log
    assert parse_dimension("n", {"int": [1, 4]}).high == 4
    with pytest.raises(ValueError, match="low must be below high"):
        parse_dimension("n", {"int": [4, 1]})
    with pytest.raises(ValueError, match="at least 2 values"):
        parse_dimension("c", {"choice": [1]})
