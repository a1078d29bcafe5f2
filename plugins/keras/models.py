"""Model builders: ``build(inputs, num_classes) -> keras.Model`` with a softmax output.

``inputs`` is what the input pipeline's ``model_inputs`` returned:
``{name: {"shape": [...], "dtype": ..., "modality": ...}}``. Every model takes a dict of named
inputs, so a text or speech model later receives its features the same way. The output layer
computes in float32 so that mixed precision keeps a stable softmax.
"""

from __future__ import annotations

from typing import Any, Literal

from pipeline import Model, param
from pipeline.errors import PipelineError

Activation = Literal["relu", "sigmoid", "tanh"]


def _image_input(inputs: dict[str, dict[str, Any]], model: str) -> tuple[str, list[int]]:
    images = [(n, s["shape"]) for n, s in inputs.items() if s.get("modality") == "image"]
    if len(images) != 1:
        raise PipelineError(
            f"model '{model}' needs exactly one image input, got {list(inputs) or 'none'}"
        )
    return images[0]


def _regularizer(l2: float) -> Any:
    import keras

    return keras.regularizers.L2(l2) if l2 > 0 else None


def _head(x: Any, num_classes: int, l2: float) -> Any:
    import keras

    return keras.layers.Dense(
        num_classes,
        activation="softmax",
        kernel_regularizer=_regularizer(l2),
        dtype="float32",
        name="scores",
    )(x)


class LogisticRegression(Model):
    """Multinomial logistic regression on the flattened image: one softmax layer."""

    name = "logistic_regression"

    l2: float = param(0.0, help="L2 weight penalty")

    def build(self, inputs: dict[str, dict[str, Any]], num_classes: int) -> Any:
        """Return the Keras model for ``inputs`` and ``num_classes`` classes."""
        import keras

        name, shape = _image_input(inputs, self.name)
        image = keras.Input(shape=tuple(shape), name=name)
        x = keras.layers.Flatten()(image)
        return keras.Model({name: image}, _head(x, num_classes, self.l2), name=self.name)


class Mlp(Model):
    """A multi-layer perceptron on the flattened image: dense layers with dropout, then softmax."""

    name = "mlp"

    units: list[int] = param([128], help="units of each hidden layer (one entry per layer)")
    activation: Activation = param("relu", help="activation of the hidden layers")
    dropout: float = param(0.0, help="dropout rate after each hidden layer")
    l2: float = param(0.0, help="L2 weight penalty")

    def build(self, inputs: dict[str, dict[str, Any]], num_classes: int) -> Any:
        """Return the Keras model for ``inputs`` and ``num_classes`` classes."""
        import keras

        name, shape = _image_input(inputs, self.name)
        image = keras.Input(shape=tuple(shape), name=name)
        x = keras.layers.Flatten()(image)
        for units in self.units:
            x = keras.layers.Dense(
                units, activation=self.activation, kernel_regularizer=_regularizer(self.l2)
            )(x)
            if self.dropout > 0:
                x = keras.layers.Dropout(self.dropout)(x)
        return keras.Model({name: image}, _head(x, num_classes, self.l2), name=self.name)


class Cnn(Model):
    """A convolutional network: conv blocks with pooling, dense layers with dropout, softmax.

    Each entry of ``filters`` is one block: a same-padded convolution (plus batch normalisation
    on request), the activation, and 2x2 pooling while the feature map is larger than 1x1."""

    name = "cnn"

    filters: list[int] = param([32, 64], help="filters of each convolution block")
    kernel_size: int = param(3, help="side of the square convolution kernels")
    pooling: Literal["max", "average"] = param("max", help="pooling after each block")
    dense_units: list[int] = param([128], help="units of the dense layers after the blocks")
    activation: Activation = param("relu", help="activation of conv and dense layers")
    dropout: float = param(0.25, help="dropout rate before each dense layer")
    batch_norm: bool = param(False, help="batch normalisation after each convolution")
    l2: float = param(0.0, help="L2 weight penalty")

    def build(self, inputs: dict[str, dict[str, Any]], num_classes: int) -> Any:
        """Return the Keras model for ``inputs`` and ``num_classes`` classes."""
        import keras

        name, shape = _image_input(inputs, self.name)
        image = keras.Input(shape=tuple(shape), name=name)
        x = image
        size = min(shape[0], shape[1])
        pool = keras.layers.MaxPooling2D if self.pooling == "max" else keras.layers.AveragePooling2D
        for filters in self.filters:
            x = keras.layers.Conv2D(
                filters,
                self.kernel_size,
                padding="same",
                use_bias=not self.batch_norm,
                kernel_regularizer=_regularizer(self.l2),
            )(x)
            if self.batch_norm:
                x = keras.layers.BatchNormalization()(x)
            x = keras.layers.Activation(self.activation)(x)
            if size >= 2:
                x = pool(2)(x)
                size //= 2
        x = keras.layers.Flatten()(x)
        for units in self.dense_units:
            if self.dropout > 0:
                x = keras.layers.Dropout(self.dropout)(x)
            x = keras.layers.Dense(
                units, activation=self.activation, kernel_regularizer=_regularizer(self.l2)
            )(x)
        if self.dropout > 0:
            x = keras.layers.Dropout(self.dropout)(x)
        return keras.Model({name: image}, _head(x, num_classes, self.l2), name=self.name)
