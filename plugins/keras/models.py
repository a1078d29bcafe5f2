"""Model builders: ``build(inputs, num_classes) -> keras.Model``.

``inputs`` is what the input pipeline's ``model_inputs`` returned:
``{name: {"shape": [...], "dtype": ..., "modality": ...}}``. Every model takes a dict of named
inputs, so a text or speech model later receives its features the same way. The output layer
computes in float32 so that mixed precision keeps a stable softmax.

``num_classes > 0``: a classifier with a softmax over the classes. ``num_classes == 0``: a
regression with one linear output unit (the trainer scales it to the label's train mean and
standard deviation with ``with_target_scale``).

Table inputs (modality ``numeric`` and ``categorical``, from ``table_input``) enter through
``table_features``: numeric columns are concatenated and normalised by a
``keras.layers.Normalization`` layer holding the train mean and variance, categorical columns
go through a ``keras.layers.StringLookup`` holding the train vocabulary (one-hot, or an
embedding). The model therefore takes raw column values.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from beamline import Model, ModelInputs, param
from beamline.errors import PipelineError
from beamline_plugins.training.layers import class_scores, regularizer

Activation = Literal["relu", "sigmoid", "tanh"]


def _image_input(inputs: dict[str, dict[str, Any]], model: str) -> tuple[str, list[int]]:
    images = [(n, s["shape"]) for n, s in inputs.items() if s.get("modality") == "image"]
    if len(images) != 1:
        raise PipelineError(
            f"model '{model}' needs exactly one image input, got {list(inputs) or 'none'}"
        )
    return images[0]


TABLE_MODALITIES = ("numeric", "categorical")


def is_table(inputs: dict[str, dict[str, Any]]) -> bool:
    """Whether ``inputs`` are table columns (from ``table_input``)."""
    return bool(inputs) and all(s.get("modality") in TABLE_MODALITIES for s in inputs.values())


def table_features(inputs: dict[str, dict[str, Any]]) -> tuple[dict[str, Any], Any]:
    """Keras inputs for table columns and one float tensor ``[batch, features]`` built from them.

    Numeric columns: ``Normalization`` with the train mean and variance baked in. Categorical
    columns: ``StringLookup`` over the train vocabulary (one out-of-vocabulary slot), one-hot or
    a learned embedding."""
    import keras

    numeric = [(n, s) for n, s in inputs.items() if s.get("modality") == "numeric"]
    categorical = [(n, s) for n, s in inputs.items() if s.get("modality") == "categorical"]
    layers_in: dict[str, Any] = {}
    parts = []
    if numeric:
        for name, _ in numeric:
            layers_in[name] = keras.Input(shape=(1,), name=name, dtype="float32")
        columns = [layers_in[name] for name, _ in numeric]
        x = columns[0] if len(columns) == 1 else keras.layers.Concatenate(name="numeric")(columns)
        parts.append(
            keras.layers.Normalization(
                mean=[float(s["mean"]) for _, s in numeric],
                variance=[float(s["variance"]) for _, s in numeric],
                dtype="float32",
                name="normalize",
            )(x)
        )
    for name, spec in categorical:
        layers_in[name] = keras.Input(shape=(1,), name=name, dtype="string")
        vocabulary = list(spec["vocabulary"])
        if spec.get("encoding", "one_hot") == "embedding":
            index = keras.layers.StringLookup(vocabulary=vocabulary, name=f"{name}_lookup")(
                layers_in[name]
            )
            embedded = keras.layers.Embedding(
                len(vocabulary) + 1, int(spec.get("embedding_dim", 4)), name=f"{name}_embedding"
            )(index)
            parts.append(keras.layers.Flatten(name=f"{name}_flat")(embedded))
        else:
            one_hot = keras.layers.StringLookup(
                vocabulary=vocabulary, output_mode="one_hot", name=f"{name}_one_hot"
            )(layers_in[name])
            parts.append(keras.layers.Reshape((len(vocabulary) + 1,), name=f"{name}_flat")(one_hot))
    if not parts:
        raise PipelineError("a table model needs at least one numeric or categorical input")
    x = parts[0] if len(parts) == 1 else keras.layers.Concatenate(name="features")(parts)
    return layers_in, x


def _flat_input(inputs: dict[str, dict[str, Any]], model: str) -> tuple[dict[str, Any], Any]:
    """Keras inputs and a flat feature tensor: table columns, or one flattened image."""
    import keras

    if is_table(inputs):
        return table_features(inputs)
    name, shape = _image_input(inputs, model)
    image = keras.Input(shape=tuple(shape), name=name)
    return {name: image}, keras.layers.Flatten()(image)


def with_target_scale(model: Any, mean: float, variance: float) -> Any:
    """``model`` with its one output unit scaled to the label: ``output * std + mean``.

    A regression model then learns a standardised label (unit-scale weights, fast fitting)
    while it predicts in the label's own units; the train statistics travel inside it."""
    import keras

    std = math.sqrt(variance) if variance > 0 else 1.0
    scaled = keras.layers.Rescaling(std, offset=mean, dtype="float32", name="label_scale")(
        model.output
    )
    return keras.Model(model.input, scaled, name=model.name)


def _head(x: Any, num_classes: int, l2: float) -> Any:
    """The output layer: a softmax over ``num_classes``, or one linear unit when it is 0."""
    import keras

    if num_classes == 0:
        return keras.layers.Dense(
            1, kernel_regularizer=regularizer(l2), dtype="float32", name="prediction"
        )(x)
    return class_scores(x, num_classes, l2)


class LogisticRegression(Model):
    """Multinomial logistic regression on the flattened image or the normalised table columns.

    One softmax layer."""

    name = "logistic_regression"

    l2: float = param(0.0, help="L2 weight penalty", ge=0)

    def build(self, inputs: ModelInputs, num_classes: int) -> Any:
        """Return the Keras model for ``inputs`` and ``num_classes`` classes."""
        import keras

        if num_classes == 0:
            raise PipelineError(
                "logistic_regression is a classifier; for a regression use linear_regression"
            )
        layers_in, x = _flat_input(inputs, self.name)
        return keras.Model(layers_in, _head(x, num_classes, self.l2), name=self.name)


class LinearRegression(Model):
    """Linear regression: one linear unit on the normalised table columns (or flattened image).

    With ``table_input`` the model holds the train mean and variance of each column and of the
    label, so it takes raw values and predicts in the label's units."""

    name = "linear_regression"

    l2: float = param(0.0, help="L2 weight penalty (ridge regression)", ge=0)

    def build(self, inputs: ModelInputs, num_classes: int) -> Any:
        """Return the Keras model for ``inputs``; ``num_classes`` must be 0 (a regression)."""
        import keras

        if num_classes:
            raise PipelineError(
                "linear_regression predicts a number; the input pipeline asks for "
                f"{num_classes} classes (use logistic_regression, or task: regression)"
            )
        layers_in, x = _flat_input(inputs, self.name)
        return keras.Model(layers_in, _head(x, 0, self.l2), name=self.name)


class Mlp(Model):
    """A multi-layer perceptron: dense layers with dropout, then softmax (or one linear unit).

    Takes a flattened image or the normalised table columns; for a regression (``table_input``
    with ``task: regression``) its output is one linear unit."""

    name = "mlp"

    units: list[int] = param([128], help="units of each hidden layer (one entry per layer)", ge=1)
    activation: Activation = param("relu", help="activation of the hidden layers")
    dropout: float = param(0.0, help="dropout rate after each hidden layer", ge=0, lt=1)
    l2: float = param(0.0, help="L2 weight penalty", ge=0)

    def build(self, inputs: ModelInputs, num_classes: int) -> Any:
        """Return the Keras model for ``inputs`` and ``num_classes`` classes (0: a regression)."""
        import keras

        layers_in, x = _flat_input(inputs, self.name)
        for units in self.units:
            x = keras.layers.Dense(
                units, activation=self.activation, kernel_regularizer=regularizer(self.l2)
            )(x)
            if self.dropout > 0:
                x = keras.layers.Dropout(self.dropout)(x)
        return keras.Model(layers_in, _head(x, num_classes, self.l2), name=self.name)


class Cnn(Model):
    """A convolutional network: conv blocks with pooling, dense layers with dropout, softmax.

    Each entry of ``filters`` is one block: a same-padded convolution (plus batch normalisation
    on request), the activation, and 2x2 pooling while the feature map is larger than 1x1.
    ``rotation``, ``zoom`` and ``translate`` transform the training images at random first."""

    name = "cnn"

    filters: list[int] = param([32, 64], help="filters of each convolution block", ge=1)
    kernel_size: int = param(3, help="side of the square convolution kernels", ge=1)
    pooling: Literal["max", "average"] = param("max", help="pooling after each block")
    dense_units: list[int] = param([128], help="units of the dense layers after the blocks", ge=1)
    activation: Activation = param("relu", help="activation of conv and dense layers")
    dropout: float = param(0.25, help="dropout rate before each dense layer", ge=0, lt=1)
    batch_norm: bool = param(False, help="batch normalisation after each convolution")
    global_pool: bool = param(
        False, help="average each feature map over the image instead of flattening the last"
    )
    batch_norm_momentum: float = param(
        0.99,
        help="momentum of the batch-norm moving statistics (lower: they follow sooner)",
        gt=0,
        lt=1,
    )
    l2: float = param(0.0, help="L2 weight penalty", ge=0)
    rotation: float = param(
        0.0, help="training only: random rotation up to this share of a full turn", ge=0, lt=0.5
    )
    zoom: float = param(
        0.0, help="training only: random zoom in or out up to this share", ge=0, lt=1
    )
    translate: float = param(
        0.0, help="training only: random shift up to this share of the side", ge=0, lt=1
    )

    def build(self, inputs: ModelInputs, num_classes: int) -> Any:
        """Return the Keras model for ``inputs`` and ``num_classes`` classes."""
        import keras

        name, shape = _image_input(inputs, self.name)
        image = keras.Input(shape=tuple(shape), name=name)
        x = image
        # geometric augmentation: Keras layers that act in training and pass images through after
        if self.rotation > 0:
            x = keras.layers.RandomRotation(self.rotation, fill_mode="nearest")(x)
        if self.zoom > 0:
            x = keras.layers.RandomZoom(self.zoom, fill_mode="nearest")(x)
        if self.translate > 0:
            x = keras.layers.RandomTranslation(self.translate, self.translate, fill_mode="nearest")(
                x
            )
        size = min(shape[0], shape[1])
        pool = keras.layers.MaxPooling2D if self.pooling == "max" else keras.layers.AveragePooling2D
        for filters in self.filters:
            x = keras.layers.Conv2D(
                filters,
                self.kernel_size,
                padding="same",
                use_bias=not self.batch_norm,
                kernel_regularizer=regularizer(self.l2),
            )(x)
            if self.batch_norm:
                x = keras.layers.BatchNormalization(momentum=self.batch_norm_momentum)(x)
            x = keras.layers.Activation(self.activation)(x)
            if size >= 2:
                x = pool(2)(x)
                size //= 2
        if self.global_pool:
            x = keras.layers.GlobalAveragePooling2D()(x)
        else:
            x = keras.layers.Flatten()(x)
        for units in self.dense_units:
            if self.dropout > 0:
                x = keras.layers.Dropout(self.dropout)(x)
            x = keras.layers.Dense(
                units, activation=self.activation, kernel_regularizer=regularizer(self.l2)
            )(x)
        if self.dropout > 0:
            x = keras.layers.Dropout(self.dropout)(x)
        return keras.Model({name: image}, _head(x, num_classes, self.l2), name=self.name)
