"""Runner settings become Beam pipeline options in one place."""

from __future__ import annotations

import os

import pytest

from beamline.beam_options import beam_args, pipeline_options
from beamline.errors import SpecError
from beamline.spec import RunnerSettings


def test_direct_names_the_in_process_fn_api_runner():
    assert beam_args(RunnerSettings()) == ["--runner=FnApiRunner", "--direct_num_workers=1"]


def test_local_uses_multi_processing_over_all_cores_by_default():
    args = beam_args(RunnerSettings(name="local"))
    assert "--direct_running_mode=multi_processing" in args
    assert f"--direct_num_workers={os.cpu_count()}" in args
    assert "--direct_num_workers=2" in beam_args(RunnerSettings(name="local", workers=2))


def test_portable_needs_an_endpoint_and_passes_the_environment():
    with pytest.raises(SpecError, match="job_endpoint"):
        beam_args(RunnerSettings(name="portable"))
    args = beam_args(
        RunnerSettings(
            name="portable",
            job_endpoint="localhost:8099",
            environment_type="EXTERNAL",
            environment_config="127.0.0.1:50000",
        )
    )
    assert args == [
        "--runner=PortableRunner",
        "--job_endpoint=localhost:8099",
        "--environment_type=EXTERNAL",
        "--environment_config=127.0.0.1:50000",
    ]


@pytest.mark.parametrize(
    ("name", "runner"),
    [("flink", "FlinkRunner"), ("spark", "SparkRunner"), ("dataflow", "DataflowRunner")],
)
def test_other_runners_pass_options_through(name, runner):
    settings = RunnerSettings(
        name=name,
        options={
            "flink_master": "host:8081",
            "streaming": True,
            "experiments": ["a", "b"],
            "off": False,
        },
    )
    assert beam_args(settings) == [
        f"--runner={runner}",
        "--flink_master=host:8081",
        "--streaming",
        "--experiments=a",
        "--experiments=b",
    ]


def test_direct_options_run_a_real_beam_pipeline_without_downloading_anything():
    import apache_beam as beam
    from apache_beam.options.pipeline_options import StandardOptions
    from apache_beam.testing.util import assert_that, equal_to

    options = pipeline_options(RunnerSettings())
    assert options.view_as(StandardOptions).runner == "FnApiRunner"
    with beam.Pipeline(options=options) as p:
        squares = p | beam.Create([1, 2, 3]) | beam.Map(lambda x: x * x)
        assert_that(squares, equal_to([1, 4, 9]))


def test_runner_names_are_one_list_for_the_file_and_the_cli():
    import typing

    from beamline import cli_run, spec
    from beamline.beam_options import RUNNER_NAMES

    assert typing.get_args(spec.BeamRunnerName) == RUNNER_NAMES
    runner = next(p for p in cli_run.run.params if p.name == "runner")
    assert tuple(runner.type.choices) == RUNNER_NAMES


def test_streaming_variant_is_the_bundle_based_direct_runner_with_one_runner_flag():
    from apache_beam.options.pipeline_options import StandardOptions

    from beamline.beam_options import streaming_args

    args = streaming_args(RunnerSettings(name="local", workers=4, options={"max_bundle_size": 5}))
    assert args == ["--runner=BundleBasedDirectRunner", "--streaming", "--max_bundle_size=5"]
    assert sum(a.startswith("--runner") for a in args) == 1
    options = pipeline_options(RunnerSettings(), streaming=True)
    assert options.view_as(StandardOptions).runner == "BundleBasedDirectRunner"
    assert options.view_as(StandardOptions).streaming


def test_streaming_on_a_runner_that_cannot_serve_the_stream_is_refused_by_name():
    from beamline.beam_options import streaming_args

    with pytest.raises(
        SpecError, match="streaming steps run on the direct or local runner only.*'flink'"
    ):
        streaming_args(RunnerSettings(name="flink"))


def test_run_options_follow_the_run_that_holds_an_artifact(tmp_path):
    import json

    from apache_beam.options.pipeline_options import DirectOptions, StandardOptions

    from beamline.beam_options import run_options

    run = tmp_path / "run"
    (run / "ingest").mkdir(parents=True)
    (run / "run.json").write_text(json.dumps({"runner": {"name": "local", "workers": 3}}))
    options = run_options(run / "ingest")
    assert options.view_as(DirectOptions).direct_running_mode == "multi_processing"
    assert options.view_as(DirectOptions).direct_num_workers == 3
    outside = run_options(tmp_path / "elsewhere")
    assert outside.view_as(StandardOptions).runner == "FnApiRunner"
    assert outside.view_as(DirectOptions).direct_num_workers == 1
