"""The model artifact of a trainer step: what it writes and how the steps after it read it.

Layout (``keras_trainer`` and ``lm_trainer`` write it; evaluators and exporters read it)::

    model.keras    the trained model (Keras format)
    model.json     the model's inputs, task, classes, label feature, loss, the model params, and
                   the input pipeline: its component name and params (``input_pipeline``) and
                   the class that implements it (``input_pipeline_class``, ``module:QualName``)

``trained_model`` rebuilds the input pipeline from ``model.json``, not from the pipeline file as
it reads now: evaluation and export preprocess exactly as training did, even after the file was
edited, and an artifact of an earlier run can be read on its own.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

from beamline import InputPipeline, StepContext
from beamline.artifacts import Artifact, write_json_atomic
from beamline.errors import PipelineError, SpecError
from beamline.fingerprint import plain

MODEL_FILE = "model.keras"
MODEL_INFO = "model.json"
COMPONENT_KEY = "component"


def input_pipeline_record(pipeline: InputPipeline) -> dict[str, Any]:
    """What ``model.json`` records of the input pipeline, so that it can be rebuilt."""
    cls = type(pipeline)
    return {
        "input_pipeline": plain(pipeline),
        "input_pipeline_class": f"{cls.__module__}:{cls.__qualname__}",
    }


def write_model(output_dir: Path, model: Any, info: dict[str, Any]) -> None:
    """Save ``model`` as ``model.keras`` (byte-stable: equal weights, equal bytes) and ``info``
    as ``model.json`` into ``output_dir``."""
    from .stable_save import normalise_keras_file

    model.save(str(output_dir / MODEL_FILE))
    normalise_keras_file(output_dir / MODEL_FILE)
    write_json_atomic(output_dir / MODEL_INFO, info)


def trained_model(ctx: StepContext, name: str) -> tuple[Artifact, dict[str, Any], Any]:
    """The trainer artifact named by parameter ``name``, its ``model.json`` and input pipeline.

    The input pipeline is rebuilt from ``model.json`` (see the module docstring)."""
    artifact = ctx.input(name)
    info_path = artifact.file(MODEL_INFO)
    if not info_path.is_file() or not artifact.file(MODEL_FILE).is_file():
        raise PipelineError(
            f"step '{artifact.step}' is not a keras_trainer step (no {MODEL_INFO}/{MODEL_FILE})"
        )
    info = json.loads(info_path.read_text(encoding="utf-8"))
    pipeline = rebuild_input_pipeline(info, info_path)
    if not hasattr(pipeline, "serving"):
        raise PipelineError(
            f"step '{artifact.step}': input pipeline '{pipeline.name}' has no serving "
            "preprocessing this step can reuse"
        )
    return artifact, info, pipeline


def load_keras_model(artifact: Artifact) -> Any:
    """Load the trained ``model.keras`` of a trainer artifact (without its training config)."""
    import keras

    return keras.saving.load_model(str(artifact.file(MODEL_FILE)), compile=False)


def rebuild_input_pipeline(info: dict[str, Any], info_path: Path) -> InputPipeline:
    """The input pipeline recorded in a ``model.json`` (read from ``info_path``)."""
    record = info.get("input_pipeline")
    if not isinstance(record, dict) or not isinstance(record.get(COMPONENT_KEY), str):
        raise PipelineError(
            f"{info_path}: records no input pipeline ('input_pipeline'); rerun the trainer step "
            "with --force to write it"
        )
    cls = _pipeline_class(record[COMPONENT_KEY], info.get("input_pipeline_class"), info_path)
    params = {k: v for k, v in record.items() if k != COMPONENT_KEY}
    return _build(cls, params, info_path)


def _pipeline_class(name: str, location: Any, info_path: Path) -> type[InputPipeline]:
    """The class at ``module:QualName``; else the input pipeline registered as ``name``."""
    if isinstance(location, str) and ":" in location:
        module, _, qualname = location.partition(":")
        try:
            found: Any = importlib.import_module(module)
            for part in qualname.split("."):
                found = getattr(found, part)
        except (ImportError, AttributeError):
            found = None
        if isinstance(found, type) and issubclass(found, InputPipeline) and found.name == name:
            return found
    from beamline.plugins import load_plugins

    registry = load_plugins().registry
    info = registry.components.get(name)
    if info is None or not issubclass(info.cls, InputPipeline):
        raise PipelineError(
            f"{info_path}: input pipeline '{name}' ({location or 'class not recorded'}) is not "
            "installed; install its plugin, or rerun the trainer step with --force"
        )
    return info.cls


def _build(cls: type[InputPipeline], params: dict[str, Any], info_path: Path) -> InputPipeline:
    """An instance of ``cls`` from recorded params, checked as a pipeline file's would be."""
    from beamline.params import BuildContext, build_params
    from beamline.plugins import load_plugins
    from beamline.yamlfile import Document

    doc = Document(data={"input_pipeline": params}, source=str(info_path))
    context = BuildContext(doc, load_plugins().registry)  # for nested components
    try:
        return build_params(cls, params, ("input_pipeline",), context)
    except SpecError as exc:  # a param renamed or removed since the model was trained
        raise PipelineError(
            f"cannot rebuild input pipeline '{cls.name}' from {exc}; rerun the trainer step "
            "with --force"
        ) from exc
