"""A streaming data-pipeline plugin framework: Beam ingest, TFDV validation, Keras training.

The names below are the public API for plugins, notebooks and scripts. Importing this package is
cheap: TensorFlow, TFDV and Beam load only when a step runs.
"""

from __future__ import annotations

import pluggy

__version__ = "0.1.0"

hookimpl = pluggy.HookimplMarker("pipeline")

from .api import components, load, open_run, run, runs  # noqa: E402
from .artifacts import Artifact, Run  # noqa: E402
from .components import (  # noqa: E402
    Component,
    Evaluator,
    Exporter,
    Input,
    InputPipeline,
    Model,
    Source,
    StepResult,
    Trainer,
    Transform,
    Validator,
    param,
)
from .context import StepContext  # noqa: E402
from .errors import (  # noqa: E402
    GateFailed,
    PipelineError,
    PluginError,
    SpecError,
    StepFailed,
)

__all__ = [
    "Artifact",
    "Component",
    "Evaluator",
    "Exporter",
    "GateFailed",
    "Input",
    "InputPipeline",
    "Model",
    "PipelineError",
    "PluginError",
    "Run",
    "Source",
    "SpecError",
    "StepContext",
    "StepFailed",
    "StepResult",
    "Trainer",
    "Transform",
    "Validator",
    "__version__",
    "components",
    "hookimpl",
    "load",
    "open_run",
    "param",
    "run",
    "runs",
]
