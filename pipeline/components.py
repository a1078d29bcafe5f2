"""The component vocabulary in one import: kinds, ``param``, artifact types and contract checks.

Plugins, notebooks and the core import these names from here (or from ``beamline``); each lives
in the module of its job:

- ``beamline.component_base``: ``Component``, ``StepComponent``, ``param``, ``ParamError``,
  ``StepResult``: what every component is made of;
- ``beamline.artifact_types``: ``ArtifactType`` and its kinds (``Examples``, ``Statistics``,
  ``TrainedModel``, ``Evaluation``, ``ExportedModel``) and ``Input[...]``;
- ``beamline.kinds``: one abstract base class per kind (``Source``, ``Stream``, ``Transform``,
  ``Trainer``, ...) whose abstract methods are its contract, ``Split``, and the tables
  ``KIND_BASES`` and ``KIND_HOOKS``;
- ``beamline.contracts``: ``check_component_class`` and ``kind_of``, which registration uses to
  refuse a class that leaves a method of its contract out.
"""

from __future__ import annotations

from .artifact_types import (
    ArtifactType,
    Evaluation,
    Examples,
    ExportedModel,
    Input,
    Statistics,
    TrainedModel,
)
from .component_base import (
    Component,
    ParamError,
    PathKind,
    StepComponent,
    StepResult,
    param,
)
from .contracts import check_component_class, contract_methods, kind_of
from .kinds import (
    KIND_BASES,
    KIND_HOOKS,
    DiscriminatorModel,
    Evaluator,
    Exporter,
    GeneratorModel,
    InputPipeline,
    Model,
    ModelInputs,
    Source,
    Split,
    Stream,
    Trainer,
    Transform,
    Validator,
)

__all__ = [
    "KIND_BASES",
    "KIND_HOOKS",
    "ArtifactType",
    "Component",
    "DiscriminatorModel",
    "Evaluation",
    "Evaluator",
    "Examples",
    "ExportedModel",
    "Exporter",
    "GeneratorModel",
    "Input",
    "InputPipeline",
    "Model",
    "ModelInputs",
    "ParamError",
    "PathKind",
    "Source",
    "Split",
    "StepComponent",
    "StepResult",
    "Statistics",
    "Stream",
    "TrainedModel",
    "Trainer",
    "Transform",
    "Validator",
    "check_component_class",
    "contract_methods",
    "kind_of",
    "param",
]
