"""Beam's configuration, in one place: runner names, pipeline options, the streaming variant.

Every Beam pipeline of the framework gets its options here, through the step context
(``ctx.beam_options()``, ``ctx.beam_options(streaming=True)``) or, for a helper that holds an
artifact but no context, through ``run_options`` (the settings of the run the artifact belongs
to). The CLI's ``--runner`` choices and the pipeline file's ``runner.name`` are ``RUNNER_NAMES``.
Importing this module is cheap: Beam loads when options are built.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, Literal, get_args

from .artifacts import RUN_FILE
from .errors import SpecError

if TYPE_CHECKING:
    from apache_beam.options.pipeline_options import PipelineOptions

    from .spec import RunnerSettings

#: The runners a pipeline file (``runner.name``) and ``pipeline run --runner`` may name.
BeamRunnerName = Literal["direct", "local", "portable", "flink", "spark", "dataflow"]
RUNNER_NAMES: tuple[str, ...] = get_args(BeamRunnerName)
#: Runners a streaming step runs on: the watched folder's events are served from this process.
STREAMING_RUNNERS = ("direct", "local")
#: Beam's runner for streaming pipelines here (the FnApiRunner runs no streaming pipeline).
STREAMING_RUNNER = "BundleBasedDirectRunner"

_PASS_THROUGH_RUNNERS = {
    "flink": "FlinkRunner",
    "spark": "SparkRunner",
    "dataflow": "DataflowRunner",
}


def beam_args(settings: RunnerSettings) -> list[str]:
    """Command-line style Beam arguments for ``settings``.

    - ``direct``: in-process ``FnApiRunner`` (named explicitly: Beam 2.72's default
      ``DirectRunner`` first tries to download the Prism runner binary).
    - ``local``: ``FnApiRunner`` in multi-processing mode, ``workers`` processes (0 = all cores).
    - ``portable``: ``PortableRunner`` against a Beam job service at ``job_endpoint``; with
      ``environment_type: EXTERNAL`` and ``environment_config: HOST:PORT`` for a worker pool.
    - ``flink``, ``spark``, ``dataflow``: their runners; ``options`` passes anything else through.
    """
    name = settings.name
    args: list[str]
    if name == "direct":
        args = ["--runner=FnApiRunner", "--direct_num_workers=1"]
    elif name == "local":
        workers = settings.workers or os.cpu_count() or 1
        args = [
            "--runner=FnApiRunner",
            "--direct_running_mode=multi_processing",
            f"--direct_num_workers={workers}",
        ]
    elif name == "portable":
        if not settings.job_endpoint:
            raise SpecError(
                "runner 'portable' needs job_endpoint: HOST:PORT of a Beam job service "
                "(for example runner: {name: portable, job_endpoint: localhost:8099})"
            )
        args = ["--runner=PortableRunner", f"--job_endpoint={settings.job_endpoint}"]
    elif name in _PASS_THROUGH_RUNNERS:
        args = [f"--runner={_PASS_THROUGH_RUNNERS[name]}"]
        if settings.job_endpoint:
            args.append(f"--job_endpoint={settings.job_endpoint}")
    else:  # the spec's Literal type already rejects anything else
        raise SpecError(f"unknown Beam runner '{name}'")
    if settings.environment_type:
        args.append(f"--environment_type={settings.environment_type}")
    if settings.environment_config:
        args.append(f"--environment_config={settings.environment_config}")
    for key, value in settings.options.items():
        args.extend(_option_args(key, value))
    return args


def streaming_args(settings: RunnerSettings) -> list[str]:
    """Beam arguments of a streaming pipeline: ``BundleBasedDirectRunner`` with ``--streaming``.

    The ``direct`` and ``local`` runners of this framework use the ``FnApiRunner``, which runs
    no streaming pipeline; the bundle-based direct runner does (TestStream, event-time windows,
    watermarks). Other runners are refused. ``options`` pass through."""
    if settings.name not in STREAMING_RUNNERS:
        raise SpecError(
            f"streaming steps run on the {' or '.join(STREAMING_RUNNERS)} runner only (got "
            f"'{settings.name}'): the stream's events are served to Beam from this process"
        )
    args = [f"--runner={STREAMING_RUNNER}", "--streaming"]
    for key, value in settings.options.items():
        args.extend(_option_args(key, value))
    return args


def pipeline_options(
    settings: RunnerSettings, *, streaming: bool = False, **overrides: Any
) -> PipelineOptions:
    """Beam ``PipelineOptions`` for ``settings`` (the streaming variant with ``streaming``);
    ``overrides`` are set as extra options."""
    from apache_beam.options.pipeline_options import PipelineOptions

    args = streaming_args(settings) if streaming else beam_args(settings)
    for key, value in overrides.items():
        args.extend(_option_args(key, value))
    return PipelineOptions(args)


#: ``RunnerSettings`` defaults, for settings read back from a run's ``run.json``.
_SETTINGS_DEFAULTS: dict[str, Any] = {
    "name": "direct",
    "workers": 0,
    "job_endpoint": "",
    "environment_type": "",
    "environment_config": "",
    "options": {},
}


def run_options(path: str | Path, **overrides: Any) -> PipelineOptions:
    """Beam options of the run that ``path`` (an artifact or a run folder) belongs to.

    For code that holds an artifact but no step context (an input pipeline recomputing an asset
    while a trainer runs): the runner settings recorded in the run's ``run.json``, which are the
    pipeline file's with ``--runner`` applied; the ``direct`` runner outside a run."""
    data: dict[str, Any] = {}
    for folder in [Path(path), *Path(path).parents][:4]:
        run_file = folder / RUN_FILE
        if run_file.is_file():
            data = json.loads(run_file.read_text(encoding="utf-8")).get("runner") or {}
            break
    fields = {k: data.get(k, default) for k, default in _SETTINGS_DEFAULTS.items()}
    return pipeline_options(SimpleNamespace(**fields), **overrides)  # type: ignore[arg-type]


def _option_args(key: str, value: Any) -> list[str]:
    flag = "--" + key.lstrip("-")
    if value is True:
        return [flag]
    if value is False or value is None:
        return []
    if isinstance(value, list | tuple):
        return [f"{flag}={item}" for item in value]
    return [f"{flag}={value}"]
