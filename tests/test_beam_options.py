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
