"""A streaming data-pipeline plugin framework: Beam ingest, TFDV validation, Keras training.

The names below are the public API for plugins, notebooks and scripts. Importing this package is
cheap: TensorFlow, TFDV and Beam load only when a step runs.
"""

from __future__ import annotations

import pluggy

__version__ = "0.1.0"

hookimpl = pluggy.HookimplMarker("pipeline")

from .api import components, explain, load, open_run, run, runs  # noqa: E402
from .artifacts import Artifact, Run  # noqa: E402
from .components import (  # noqa: E402
    ArtifactType,
    Component,
    DiscriminatorModel,
    Evaluation,
    Evaluator,
    Examples,
    ExportedModel,
    Exporter,
    GeneratorModel,
    Input,
    InputPipeline,
    Model,
    ModelInputs,
    ParamError,
    Source,
    Statistics,
    StepResult,
    Stream,
    TrainedModel,
    Trainer,
    Transform,
    Tuner,
    Tuning,
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
    "ArtifactType",
    "Component",
    "DiscriminatorModel",
    "Evaluation",
    "Evaluator",
    "Examples",
    "ExportedModel",
    "Exporter",
    "GateFailed",
    "GeneratorModel",
    "Input",
    "InputPipeline",
    "Model",
    "ModelInputs",
    "ParamError",
    "PipelineError",
    "PluginError",
    "Run",
    "Source",
    "Stream",
    "SpecError",
    "Statistics",
    "StepContext",
    "StepFailed",
    "StepResult",
    "TrainedModel",
    "Trainer",
    "Transform",
    "Tuner",
    "Tuning",
    "Validator",
    "__version__",
    "components",
    "explain",
    "hookimpl",
    "load",
    "open_run",
    "param",
    "run",
    "runs",
]
