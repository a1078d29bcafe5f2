"""Attributions of raw inputs (encoded images, WAV bytes, strings) for a trained classifier.

``Explainer`` preprocesses raw input with the input pipeline's serving function (the very
function the exported SavedModel's signature runs, rebuilt from the trainer's ``model.json``),
so the attributions refer to the raw input: the pixels after decoding, the bins of the
spectrogram, the tokens of the text. It then runs ``gradients`` on the trained Keras model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .gradients import (
    DEFAULT_STEPS,
    Attribution,
    integrated_gradients,
    saliency,
    token_integrated_gradients,
    token_saliency,
)

METHODS = ("integrated_gradients", "saliency")
MODALITIES = ("image", "audio", "text")


@dataclass
class Explained:
    """One raw input explained: what the model saw, its scores and the attributions."""

    modality: str
    features: Any  # the model input: pixels [h, w, c], spectrogram [frames, bins, 1], ids
    tokens: list[str]  # text: one token per attribution ([] otherwise)
    scores: list[float]
    attribution: Attribution


class Explainer:
    """Attributions for one trained classifier (``model``: Keras; ``info``: its model.json)."""

    def __init__(self, model: Any, pipeline: Any, info: dict[str, Any]) -> None:
        inputs = info["inputs"]
        if len(inputs) != 1:
            raise ValueError(f"attributions need a model with one input, not {list(inputs)}")
        ((self.name, self.spec),) = inputs.items()
        self.modality = str(self.spec.get("modality", ""))
        if self.modality not in MODALITIES:
            raise ValueError(
                f"attributions cover image, audio and text models; input '{self.name}' has "
                f"modality '{self.modality}'"
            )
        self.model = model
        self.classes = list(info.get("classes") or [])
        _, self.preprocess = pipeline.serving(inputs)

    def features(self, raw: list[bytes]) -> Any:
        """The model inputs of a batch of raw inputs (the export's preprocessing)."""
        import tensorflow as tf

        return self.preprocess({self.name: tf.constant(raw)})[self.name].numpy()

    def scores(self, features: Any) -> Any:
        """The model's class scores for a batch of model inputs."""
        import numpy as np

        return np.asarray(self.model({self.name: features}, training=False), dtype=np.float64)

    def explain(
        self,
        raw: bytes,
        target: int | None = None,
        method: str = "integrated_gradients",
        steps: int = DEFAULT_STEPS,
    ) -> Explained:
        """The attributions of one raw input for ``target`` (default: the predicted class)."""
        features = self.features([raw])
        scores = self.scores(features)[0]
        target = int(scores.argmax()) if target is None else int(target)
        x = features[0]
        if self.modality == "text":
            size = int(self.spec["vocab_size"])
            if method == "saliency":
                result = token_saliency(self.model, self.name, x, target, size)
            else:
                result = token_integrated_gradients(self.model, self.name, x, target, size, steps)
            vocabulary = self.spec["vocabulary"]
            keep = x != 0
            tokens = [vocabulary[int(i)] for i in x[keep]]
            result.values = result.values[keep]
            return Explained(self.modality, x[keep], tokens, scores.tolist(), result)
        if method == "saliency":
            result = saliency(self.model, self.name, x, target)
        else:
            result = integrated_gradients(self.model, self.name, x, target, steps)
        return Explained(self.modality, x, [], scores.tolist(), result)

    def class_index(self, target: str | int | None) -> int | None:
        """The index of a class given by name (or index); ``None`` stays ``None``."""
        if target is None:
            return None
        if str(target) in self.classes:
            return self.classes.index(str(target))
        if isinstance(target, int) or str(target).isdigit():
            index = int(target)
            if 0 <= index < max(len(self.classes), 1):
                return index
        raise ValueError(f"unknown class {target!r} (classes: {', '.join(self.classes)})")


def heat(explained: Explained) -> Any:
    """The attribution map to draw: pixels summed over channels ``[h, w]``, spectrogram bins
    ``[bins, frames]`` (time across), tokens ``[tokens]``."""
    values = explained.attribution.values
    if explained.modality == "image":
        return values.sum(axis=-1)
    if explained.modality == "audio":
        return values.reshape(values.shape[0], -1).T
    return values
