"""DCGAN model builders: ``dcgan_generator`` and ``dcgan_discriminator``.

The two builders follow their own contracts, not the classifier's ``beamline.Model``:

* ``beamline.GeneratorModel``: ``build(image_shape, latent_dim, num_classes=0)`` -> a
  ``keras.Model`` from ``{"noise": [batch, latent_dim]}`` (plus ``"label"``: int class indices
  when ``num_classes``) to images ``[batch, height, width, channels]`` in [0, 1], the range
  ``image_input`` decodes to;
* ``beamline.DiscriminatorModel``: ``build(image_shape, num_classes=0)`` -> a ``keras.Model``
  from ``{"image": ...}`` (plus ``"label"``) to one float32 logit per image (> 0: real).

With ``num_classes`` > 0 the models are conditional: the class index enters through an embedding.
Keras is imported inside ``build`` only.
"""

from __future__ import annotations

import functools
from typing import Any, Literal

from beamline import DiscriminatorModel, GeneratorModel, param
from beamline.errors import PipelineError

NOISE = "noise"
LABEL = "label"
IMAGE = "image"


def start_size(image_shape: list[int], blocks: int, model: str) -> tuple[int, int]:
    """The feature-map size before ``blocks`` 2x upsamplings that end at ``image_shape``."""
    height, width = int(image_shape[0]), int(image_shape[1])
    factor = 2**blocks
    if height % factor or width % factor:
        raise PipelineError(
            f"{model}: {blocks} upsampling blocks need an image size divisible by {factor}, got "
            f"{height}x{width}; use fewer 'filters' or resize the images (image_input image_size)"
        )
    return height // factor, width // factor


class DcganGenerator(GeneratorModel):
    """DCGAN generator: latent vector -> dense -> reshape -> upsampling blocks -> image in [0, 1].

    The dense layer makes a map of ``filters[0]`` channels; each entry of ``filters`` is then one
    block that doubles the height and width into that many channels: nearest upsampling then a
    convolution (or a strided Conv2DTranspose), batch normalisation and ReLU. On the 8x8 digits
    nearest upsampling learnt every class where Conv2DTranspose collapsed to a few.
    The last convolution has a tanh output rescaled to [0, 1]. The starting map is the image
    size divided by 2 per block (8x8 with two blocks starts at 2x2)."""

    name = "dcgan_generator"

    filters: list[int] = param(
        [128, 64], help="filters of each upsampling block (one per 2x)", ge=1, min_items=1
    )
    kernel_size: int = param(3, help="kernel side of the block convolutions", ge=1)
    upsampling: Literal["nearest", "transpose"] = param(
        "nearest", help="nearest (2x nearest upsampling + Conv2D) or transpose (Conv2DTranspose)"
    )
    batch_norm: bool = param(True, help="batch normalisation after the dense layer and each block")
    embedding_dim: int = param(16, help="size of the class embedding (conditional GANs only)", ge=1)

    def build(self, image_shape: list[int], latent_dim: int, num_classes: int = 0) -> Any:
        """Return the generator for images of ``image_shape`` ([h, w, c])."""
        import keras

        height, width = start_size(image_shape, len(self.filters), self.name)
        channels = int(image_shape[2])
        noise = keras.Input(shape=(latent_dim,), name=NOISE)
        inputs = {NOISE: noise}
        x = noise
        if num_classes:
            label = keras.Input(shape=(), dtype="int32", name=LABEL)
            inputs[LABEL] = label
            embedded = keras.layers.Embedding(num_classes, self.embedding_dim)(label)
            x = keras.layers.Concatenate()([noise, embedded])
        x = keras.layers.Dense(height * width * self.filters[0], use_bias=not self.batch_norm)(x)
        x = self._normalise(x)
        x = keras.layers.Reshape((height, width, self.filters[0]))(x)
        for filters in self.filters:
            if self.upsampling == "transpose":
                x = keras.layers.Conv2DTranspose(
                    filters, self.kernel_size, strides=2, padding="same", use_bias=False
                )(x)
            else:
                x = keras.layers.UpSampling2D(2, interpolation="nearest")(x)
                x = keras.layers.Conv2D(filters, self.kernel_size, padding="same", use_bias=False)(
                    x
                )
            x = self._normalise(x)
        x = keras.layers.Conv2D(channels, 3, padding="same", activation="tanh", dtype="float32")(x)
        image = keras.layers.Rescaling(0.5, offset=0.5, dtype="float32", name=IMAGE)(x)
        return keras.Model(inputs, image, name=self.name)

    def _normalise(self, x: Any) -> Any:
        import keras

        if self.batch_norm:
            x = keras.layers.BatchNormalization()(x)
        return keras.layers.ReLU()(x)


class DcganDiscriminator(DiscriminatorModel):
    """DCGAN discriminator: strided conv blocks with LeakyReLU and dropout -> one logit.

    Each entry of ``filters`` is one block: a 2-strided convolution (halving height and width
    while the map is larger than 1x1), LeakyReLU and dropout. The output is a float32 logit
    (> 0: the image looks real). With ``minibatch_stddev`` the last block's output gets one more
    channel, the mean over features of the standard deviation over the batch: a generator that
    makes the same image every time is then easy to tell apart. A conditional discriminator
    receives the class as an extra image channel made from an embedding."""

    name = "dcgan_discriminator"

    filters: list[int] = param([64, 128], help="filters of each convolution block", ge=1)
    kernel_size: int = param(3, help="kernel side of the convolutions", ge=1)
    leak: float = param(0.2, help="negative slope of LeakyReLU", ge=0)
    dropout: float = param(0.3, help="dropout rate after each block", ge=0, lt=1)
    minibatch_stddev: bool = param(
        True, help="add the batch's mean standard deviation as a channel (against mode collapse)"
    )

    def build(self, image_shape: list[int], num_classes: int = 0) -> Any:
        """Return the discriminator for images of ``image_shape`` ([h, w, c])."""
        import keras

        height, width = int(image_shape[0]), int(image_shape[1])
        image = keras.Input(shape=tuple(int(s) for s in image_shape), name=IMAGE)
        inputs = {IMAGE: image}
        x = keras.layers.Rescaling(2.0, offset=-1.0)(image)  # [0, 1] -> [-1, 1]
        if num_classes:
            label = keras.Input(shape=(), dtype="int32", name=LABEL)
            inputs[LABEL] = label
            plane = keras.layers.Embedding(num_classes, height * width)(label)
            plane = keras.layers.Reshape((height, width, 1))(plane)
            x = keras.layers.Concatenate()([x, plane])
        size = min(height, width)
        for filters in self.filters:
            stride = 2 if size >= 2 else 1
            size //= stride
            x = keras.layers.Conv2D(filters, self.kernel_size, strides=stride, padding="same")(x)
            x = keras.layers.LeakyReLU(negative_slope=self.leak)(x)
            if self.dropout > 0:
                x = keras.layers.Dropout(self.dropout)(x)
        if self.minibatch_stddev:
            x = minibatch_stddev_layer()(name="minibatch_stddev")(x)
        x = keras.layers.Flatten()(x)
        logit = keras.layers.Dense(1, dtype="float32", name="logit")(x)
        return keras.Model(inputs, logit, name=self.name)


@functools.cache
def minibatch_stddev_layer() -> type:
    """The Keras layer class ``MinibatchStddev`` (registered for loading ``.keras`` files).

    Defined on first use so that importing this module does not import Keras; call this before
    loading a saved discriminator."""
    import keras

    @keras.saving.register_keras_serializable(package="generative")
    class MinibatchStddev(keras.layers.Layer):
        """Appends the mean over features of the standard deviation over the batch as a channel."""

        def call(self, x: Any) -> Any:
            """``x`` with the spread channel appended."""
            ops = keras.ops
            spread = ops.mean(ops.sqrt(ops.var(x, axis=0) + 1e-8))
            plane = ops.ones_like(x[..., :1]) * ops.cast(spread, x.dtype)
            return ops.concatenate([x, plane], axis=-1)

        def compute_output_shape(self, input_shape: Any) -> Any:
            """One channel more than the input."""
            return (*input_shape[:-1], input_shape[-1] + 1)

    return MinibatchStddev
