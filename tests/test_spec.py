"""Pipeline files: safe YAML, typed parameters, errors that name the file, line and key."""

from __future__ import annotations

from pathlib import Path

import pytest

import beamline
from beamline import SpecError

PIPELINE = """
name: numbers
plugins: [core_plugin]
steps:
  data:
    component: numbers
    count: 5
  train:
    component: fit
    examples: data
    model: {component: scale, factor: 3}
"""


def load(path, overrides=()):
    spec, _ = beamline.load(path, overrides)
    return spec


def test_valid_file_builds_typed_components(fixtures_plugin, write_pipeline):
    spec = load(write_pipeline(PIPELINE))
    assert spec.step_names == ["data", "train"]
    train = spec.step("train").component
    assert train.model.factor == 3.0 and isinstance(train.model.factor, float)
    assert spec.step("train").inputs == {"examples": "data"}
    assert spec.runner.name == "direct"


def test_misspelt_parameter_names_line_key_and_closest_name(fixtures_plugin, write_pipeline):
    path = write_pipeline(PIPELINE.replace("count: 5", "cuont: 5"))
    with pytest.raises(SpecError) as err:
        load(path)
    message = str(err.value)
    assert f"{path}:6" in message
    assert "steps.data.cuont" in message and "did you mean 'count'?" in message


def test_misspelt_component_offers_closest(fixtures_plugin, write_pipeline):
    with pytest.raises(
        SpecError,
        match=r"p.yaml:10: steps.train.model.component: unknown model 'scal'; did you mean 'scale'",
    ):
        load(write_pipeline(PIPELINE.replace("component: scale", "component: scal")))


def test_wrong_parameter_type_is_named(fixtures_plugin, write_pipeline):
    path = write_pipeline(PIPELINE.replace("count: 5", "count: five"))
    with pytest.raises(
        SpecError, match=r"p.yaml:6: steps.data.count: expected integer, got 'five'"
    ):
        load(path)


def test_booleans_are_not_integers(fixtures_plugin, write_pipeline):
    with pytest.raises(SpecError, match="expected integer, got True"):
        load(write_pipeline(PIPELINE.replace("count: 5", "count: true")))


def test_malformed_yaml_names_the_line(write_pipeline):
    path = write_pipeline("steps:\n  a: [1, 2\n  b: 3\n")
    with pytest.raises(SpecError, match=r"p.yaml:3: malformed YAML"):
        load(path)


def test_yaml_is_loaded_safely(write_pipeline):
    path = write_pipeline("steps: !!python/object/apply:os.system ['true']\n")
    with pytest.raises(SpecError, match="p.yaml:1: unsupported YAML tag"):
        load(path)


def test_duplicate_keys_are_an_error(write_pipeline):
    with pytest.raises(SpecError, match=r"p.yaml:3: duplicate key 'a'"):
        load(write_pipeline("steps:\n  a: 1\n  a: 2\n"))


def test_missing_file_is_named(tmp_path):
    with pytest.raises(SpecError, match="nope.yaml: no such file"):
        load(tmp_path / "nope.yaml")


def test_unknown_top_level_key_offers_closest(fixtures_plugin, write_pipeline):
    with pytest.raises(SpecError, match=r"p.yaml:3: unknown top-level key 'stepz'.*'steps'"):
        load(write_pipeline(PIPELINE.replace("steps:", "stepz: {}\nsteps:")))


def test_set_overrides_any_value_and_is_named_in_errors(fixtures_plugin, write_pipeline):
    path = write_pipeline(PIPELINE)
    spec = load(path, ["steps.train.model.factor=0.5", "steps.data.count=7"])
    assert spec.step("train").component.model.factor == 0.5
    assert spec.step("data").component.count == 7
    with pytest.raises(SpecError, match=r"--set steps.data.count=x: steps.data.count: expected"):
        load(path, ["steps.data.count=x"])


def test_set_can_replace_a_nested_component(fixtures_plugin, write_pipeline):
    spec = load(write_pipeline(PIPELINE), ["steps.train.model={component: scale}"])
    assert spec.step("train").component.model.factor == 2.0


def test_input_must_name_a_step(fixtures_plugin, write_pipeline):
    with pytest.raises(SpecError, match="no step named 'dat'.*did you mean 'data'"):
        load(write_pipeline(PIPELINE.replace("examples: data", "examples: dat")))


def test_steps_run_after_the_steps_they_read(fixtures_plugin, write_pipeline):
    text = PIPELINE.replace("  data:\n    component: numbers\n    count: 5\n", "")
    text += "  data:\n    component: numbers\n"
    assert load(write_pipeline(text)).step_names == ["data", "train"]


def test_a_step_reading_itself_is_a_cycle(fixtures_plugin, write_pipeline):
    with pytest.raises(SpecError, match="steps read each other: train -> train"):
        load(write_pipeline(PIPELINE.replace("examples: data", "examples: train")))


def test_non_step_component_cannot_be_a_step(fixtures_plugin, write_pipeline):
    with pytest.raises(SpecError, match="'scale' is a model component and cannot be a step"):
        load(
            write_pipeline(PIPELINE.replace("component: numbers\n    count: 5", "component: scale"))
        )


def test_runner_from_file_or_option(fixtures_plugin, write_pipeline):
    path = write_pipeline(PIPELINE.replace("steps:", "runner: {name: local, workers: 2}\nsteps:"))
    assert load(path).runner.name == "local"
    spec, _ = beamline.load(path, runner="direct")
    assert spec.runner.name == "direct" and spec.runner.workers == 2
    with pytest.raises(SpecError, match="expected one of .*got 'lokal'; did you mean 'local'"):
        load(write_pipeline(PIPELINE.replace("steps:", "runner: lokal\nsteps:")))


SCORED = (
    PIPELINE
    + """
  score:
    component: score
    model: train
    examples: data
"""
)


def test_typed_inputs_accept_steps_writing_the_artifact_they_read(fixtures_plugin, write_pipeline):
    spec = load(write_pipeline(SCORED))
    assert spec.step("score").inputs == {"model": "train", "examples": "data"}


def test_input_wired_to_a_step_of_the_wrong_kind_fails_at_load_with_line_and_fits(
    fixtures_plugin, write_pipeline
):
    path = write_pipeline(SCORED.replace("    model: train", "    model: data"))
    with pytest.raises(SpecError) as err:
        load(path)
    assert str(err.value) == (
        f"{path}:14: steps.score.model: 'data' is a source step writing examples; "
        "expected a step writing model: train"
    )


def test_optional_typed_input_is_checked_too(fixtures_plugin, write_pipeline):
    with pytest.raises(
        SpecError,
        match=r"p.yaml:15: steps.score.examples: 'train' is a trainer step writing model; "
        r"expected a step writing examples: data$",
    ):
        load(write_pipeline(SCORED[: SCORED.rindex("examples: data")] + "examples: train\n"))


def test_parameter_limit_is_checked_at_load_with_line_and_key(fixtures_plugin, write_pipeline):
    path = write_pipeline(PIPELINE.replace("factor: 3", "factor: 0"))
    with pytest.raises(SpecError) as err:
        load(path)
    assert str(err.value) == f"{path}:10: steps.train.model.factor: must be > 0, got 0.0"


def test_limit_set_on_the_command_line_names_the_set(fixtures_plugin, write_pipeline):
    with pytest.raises(SpecError, match=r"^--set steps.data.shards=-1: steps.data.shards: must"):
        load(write_pipeline(PIPELINE), ["steps.data.shards=-1"])


def test_split_shares_must_sum_to_one_at_load(fixtures_plugin, write_pipeline):
    text = PIPELINE.replace("count: 5", "count: 5\n    split: {train: 0.9, eval: 0.1}")
    with pytest.raises(
        SpecError, match=r"p.yaml:7: steps.data.split: the shares .* sum to 1.1, not 1"
    ):
        load(write_pipeline(text))
    text = PIPELINE.replace("count: 5", "count: 5\n    split: {train: 0.9, eval: 0.1, test: 0}")
    assert load(write_pipeline(text)).step("data").component.split.train == 0.9


def test_component_check_reports_the_key_it_names(write_pipeline, tmp_path):
    (tmp_path / "clips").mkdir()
    path = write_pipeline(
        "steps:\n  ingest:\n    component: audio_folder\n    root: clips\n"
        "    group_pattern: 'no-group'\n"
    )
    with pytest.raises(
        SpecError, match=r"p.yaml:5: steps.ingest.group_pattern: needs a \(capturing group\)"
    ):
        load(path)


MISSING_FOLDER = """
steps:
  ingest:
    component: image_folder
    root: photos
"""


def test_missing_data_folder_fails_at_load_with_line_key_and_path(write_pipeline, tmp_path):
    path = write_pipeline(MISSING_FOLDER)
    with pytest.raises(SpecError) as err:
        beamline.run(path, runs_dir=tmp_path / "runs")
    assert str(err.value) == (
        f"{path}:4: steps.ingest.root: folder not found: {tmp_path / 'photos'}"
    )
    assert err.value.exit_code == 2
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").rglob("*"))


def test_data_paths_resolve_from_the_pipeline_file_and_from_their_folder(write_pipeline, tmp_path):
    (tmp_path / "photos").mkdir()
    assert load(write_pipeline(MISSING_FOLDER)).step("ingest").component.root == "photos"
    with_manifest = MISSING_FOLDER + "    manifest: list.csv\n"
    with pytest.raises(
        SpecError,
        match=r"p.yaml:5: steps.ingest.manifest: file not found: .*/photos/list.csv$",
    ):
        load(write_pipeline(with_manifest))
    (tmp_path / "photos" / "list.csv").write_text("path,label\n")
    assert load(write_pipeline(with_manifest)).step("ingest").component.manifest == "list.csv"


def test_glob_data_path_must_match_a_file(write_pipeline, tmp_path):
    text = "steps:\n  ingest: {component: csv_table, path: 'data/*.csv'}\n"
    with pytest.raises(SpecError, match=r"p.yaml:2: steps.ingest.path: no file matches: "):
        load(write_pipeline(text))
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "a.csv").write_text("x\n1\n")
    assert load(write_pipeline(text)).step("ingest").component.path == "data/*.csv"


def test_every_shipped_pipeline_file_loads():
    files = sorted((Path(__file__).parent.parent / "pipelines").glob("*.yaml"))
    assert len(files) >= 9
    for path in files:
        spec, plugins = beamline.load(path)
        assert spec.steps, path
        assert not plugins.failed, plugins.failed


def test_a_classifier_model_given_as_a_gan_generator_is_refused_naming_the_fits(
    write_pipeline, tmp_path
):
    (tmp_path / "photos").mkdir()
    path = write_pipeline(
        MISSING_FOLDER + "  gan:\n    component: gan_trainer\n    examples: ingest\n"
        "    generator: {component: cnn}\n"
    )
    with pytest.raises(
        SpecError,
        match=r"p.yaml:8: steps.gan.generator.component: 'cnn' is a model component, expected a "
        r"generator model \(dcgan_generator\)",
    ):
        load(path)


SUBTYPE_PLUGIN = '''
from beamline import Trainer, TrainedModel, Input, Examples, StepResult, hookimpl, param


class SavedKerasModel(TrainedModel):
    """A trained model saved by Keras."""

    name = "keras_model"


class KerasFit(Trainer):
    """Writes a Keras model."""

    name = "keras_fit"
    produces = (SavedKerasModel,)
    examples: Input[Examples] = param(help="the examples")

    def run(self, ctx):
        return StepResult()


@hookimpl
def register_trainers(register):
    register(KerasFit)
'''


def test_an_input_accepts_a_step_writing_a_subtype_of_its_artifact(
    fixtures_plugin, write_pipeline, tmp_path, monkeypatch
):
    (tmp_path / "subtype_plugin.py").write_text(SUBTYPE_PLUGIN, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    text = SCORED.replace("plugins: [core_plugin]", "plugins: [core_plugin, subtype_plugin]")
    text = text.replace("    component: fit\n", "    component: keras_fit\n")
    text = text.replace("    model: {component: scale, factor: 3}\n", "")
    assert load(write_pipeline(text)).step("score").inputs["model"] == "train"
