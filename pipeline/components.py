"""The component vocabulary in one import: kinds, ``param``, artifact types and contract checks.

Plugins, notebooks and the core import these names from here (or from ``beamline``); each lives
in the module of its job:

- ``beamline.component_base``: ``Component``, ``StepComponent``, ``param``, ``ParamError``,
  ``StepResult``: what every component is made of;
- ``beamline.artifact_types``: ``ArtifactType`` and its kinds (``Examples``, ``Statistics``,
  ``TrainedModel``, ``Evaluation``, ``ExportedModel``, ``Tuning``) and ``Input[...]``;
- ``beamline.kinds``: one abstract base class per kind (``Source``, ``Stream``, ``Transform``,
  ``Trainer``, ...) whose abstract methods are its contract, ``Split``, and the tables
  ``KIND_BASES`` and ``KIND_HOOKS``;
- ``beamline.contracts``: ``check_component_class`` and ``kind_of``, which registration uses to
  refuse a class that leaves a method of its contract out.
"""

from __future__ import annotations

# Re-exports (``X as X``): the names this module exists to offer.
from .artifact_types import ArtifactType as ArtifactType
from .artifact_types import Evaluation as Evaluation
from .artifact_types import Examples as Examples
from .artifact_types import ExportedModel as ExportedModel
from .artifact_types import Input as Input
from .artifact_types import Statistics as Statistics
from .artifact_types import TrainedModel as TrainedModel
from .artifact_types import Tuning as Tuning
from .component_base import Component as Component
from .component_base import ParamError as ParamError
from .component_base import PathKind as PathKind
from .component_base import StepComponent as StepComponent
from .component_base import StepResult as StepResult
from .component_base import param as param
from .contracts import check_component_class as check_component_class
from .contracts import contract_methods as contract_methods
from .contracts import kind_of as kind_of
from .kinds import KIND_BASES as KIND_BASES
from .kinds import KIND_HOOKS as KIND_HOOKS
from .kinds import DiscriminatorModel as DiscriminatorModel
from .kinds import Evaluator as Evaluator
from .kinds import Exporter as Exporter
from .kinds import GeneratorModel as GeneratorModel
from .kinds import InputPipeline as InputPipeline
from .kinds import Model as Model
from .kinds import ModelInputs as ModelInputs
from .kinds import Source as Source
from .kinds import Split as Split
from .kinds import Stream as Stream
from .kinds import Trainer as Trainer
from .kinds import Transform as Transform
from .kinds import Tuner as Tuner
from .kinds import Validator as Validator
