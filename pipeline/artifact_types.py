"""Artifact types: what a step writes, and ``Input[...]``, the type of a parameter naming the
upstream step whose artifact a step reads.

``Input[Examples]`` accepts only a step whose kind ``produces`` examples; the pipeline file is
checked when it loads (``beamline.params``).
"""

from __future__ import annotations

import functools
from typing import Any, ClassVar


class ArtifactType:
    """A type of artifact a step writes; a step's inputs are typed by the artifact they read."""

    name: ClassVar[str] = ""


class Examples(ArtifactType):
    """Sharded GZIP TFRecords of ``tf.train.Example`` per split, ``features.json``, rejected."""

    name = "examples"


class Statistics(ArtifactType):
    """Statistics of an examples artifact, its schema, anomalies, skew and drift."""

    name = "statistics"


class TrainedModel(ArtifactType):
    """A trained model with its training history and the input pipeline it was trained with."""

    name = "model"


class Evaluation(ArtifactType):
    """Metrics of a trained model and whether it is blessed."""

    name = "evaluation"


class ExportedModel(ArtifactType):
    """A servable SavedModel whose signature takes raw input."""

    name = "export"


class Tuning(ArtifactType):
    """A parameter search: its trials, the best trial's parameters (``best.json``), a report."""

    name = "tuning"


class Input(str):
    """The type of a parameter that names an upstream step whose artifact this step reads.

    ``Input[Examples]`` accepts only a step that writes examples (a source); a bare ``Input``
    accepts any step. The pipeline file is checked when it loads."""

    expects: ClassVar[tuple[type[ArtifactType], ...]] = ()

    def __class_getitem__(cls, artifact: Any) -> type[Input]:
        types = artifact if isinstance(artifact, tuple) else (artifact,)
        if not all(isinstance(t, type) and issubclass(t, ArtifactType) for t in types):
            raise TypeError(f"Input[...] takes artifact types (beamline.Examples, ...): {artifact}")
        return _typed_input(types)


@functools.cache
def _typed_input(types: tuple[type[ArtifactType], ...]) -> type[Input]:
    label = ", ".join(t.__name__ for t in types)
    return type(f"Input[{label}]", (Input,), {"expects": types, "__module__": __name__})
