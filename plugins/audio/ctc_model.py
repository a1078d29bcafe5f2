"""The ``ctc_speech`` model: convolutions over log-mel frames, a recurrent (or Transformer)
encoder, one logit per output class and time step for CTC.

``build(inputs, num_classes)`` takes what ``speech_input.model_inputs`` returned (``audio``
frames ``[time, bins]`` and ``audio_frames``, the valid frames of each clip) and returns a Keras
model with two outputs: ``logits`` ``[batch, time / stride, num_classes]`` (float32; the last
class is the CTC blank) and ``frames`` (the valid output steps). Padded frames are masked in the
recurrent layers and in attention, so an example's output does not depend on its batch. The
custom layers are registered with Keras by ``ctc_layers()``; call it before loading a saved
model (the trainer, evaluator and exporter do).
"""

from __future__ import annotations

import functools
from typing import Any, Literal

from beamline import Model, ModelInputs, ParamError, param
from beamline.errors import PipelineError

PACKAGE = "beamline_speech"


@functools.cache
def ctc_layers() -> dict[str, type]:
    """The custom Keras layers of the model, registered for loading (built once)."""
    import keras
    import tensorflow as tf

    @keras.saving.register_keras_serializable(package=PACKAGE)
    class FrameMask(keras.layers.Layer):
        """``(frames [batch], sequence [batch, time, ...])`` -> boolean mask ``[batch, time]``."""

        def call(self, frames: Any, sequence: Any) -> Any:
            return tf.sequence_mask(frames, tf.shape(sequence)[1])

    @keras.saving.register_keras_serializable(package=PACKAGE)
    class StridedFrames(keras.layers.Layer):
        """Valid steps after centred convolutions of total ``stride``: ceil(frames / stride)."""

        def __init__(self, stride: int = 1, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.stride = stride

        def call(self, frames: Any) -> Any:
            frames = tf.cast(frames, tf.int32)
            return (frames + self.stride - 1) // self.stride

        def get_config(self) -> dict[str, Any]:
            return {**super().get_config(), "stride": self.stride}

    @keras.saving.register_keras_serializable(package=PACKAGE)
    class ApplyMask(keras.layers.Layer):
        """Zero the steps past each example's end (so convolutions see zero padding)."""

        def call(self, sequence: Any, mask: Any) -> Any:
            return sequence * tf.cast(mask, sequence.dtype)[..., tf.newaxis]

    @keras.saving.register_keras_serializable(package=PACKAGE)
    class SinePositions(keras.layers.Layer):
        """Add sinusoidal position encodings (Vaswani et al. 2017) of the sequence's width."""

        def call(self, sequence: Any) -> Any:
            steps, width = tf.shape(sequence)[1], sequence.shape[-1]
            positions = tf.cast(tf.range(steps), tf.float32)[:, tf.newaxis]
            rates = tf.pow(10000.0, -tf.range(0, width, 2, dtype=tf.float32) / float(width))
            angles = positions * rates[tf.newaxis, :]
            encoding = tf.reshape(tf.stack([tf.sin(angles), tf.cos(angles)], axis=-1), [steps, -1])[
                :, :width
            ]
            return sequence + tf.cast(encoding, sequence.dtype)[tf.newaxis]

    return {
        "FrameMask": FrameMask,
        "StridedFrames": StridedFrames,
        "ApplyMask": ApplyMask,
        "SinePositions": SinePositions,
    }


def _speech_inputs(inputs: ModelInputs, model: str) -> tuple[str, int]:
    found = [(n, s) for n, s in inputs.items() if s.get("modality") == "audio"]
    if len(found) != 1 or len(found[0][1]["shape"]) != 2 or found[0][0] + "_frames" not in inputs:
        raise PipelineError(
            f"model '{model}' needs one audio input shaped [frames, bins] and its frame counts "
            f"(from speech_input), got {list(inputs) or 'none'}"
        )
    name, spec = found[0]
    return name, int(spec["shape"][1])


class CtcSpeech(Model):
    """A CTC speech model: convolutions over log-mel frames, a BiGRU/LSTM or Transformer encoder.

    Per output step it gives logits over the tokens plus the CTC blank (the last class).

    Each entry of ``conv_filters`` is a convolution over time (``kernel_size``, stride from
    ``conv_strides``: 2 halves the frame rate), layer normalisation and ReLU. Then
    ``rnn_layers`` recurrent layers of ``rnn_units`` per direction (``encoder: rnn``) or
    ``transformer_layers`` self-attention blocks (``encoder: transformer``: sinusoidal
    positions, ``heads`` heads, a feed-forward of ``ff_units``). Padding is masked throughout.
    ``blank_bias`` starts the blank's logit above the tokens' (3: the blank ~2/3 probable per
    step among 10 tokens), where CTC goes within its first steps anyway; from zero bias it gets
    there through large gradients that left some seeds on the all-blank plateau for longer."""

    name = "ctc_speech"
    conv_filters: list[int] = param([64, 64], help="filters of each convolution", ge=1)
    conv_strides: list[int] = param([2, 1], help="time stride of each convolution", ge=1)
    kernel_size: int = param(5, help="convolution length (frames)", ge=1)
    encoder: Literal["rnn", "transformer"] = param("rnn", help="recurrent or Transformer encoder")
    cell: Literal["gru", "lstm"] = param("gru", help="recurrent cell (encoder: rnn)")
    rnn_units: int = param(64, help="units per direction of each recurrent layer", ge=1)
    rnn_layers: int = param(2, help="recurrent layers", ge=1)
    bidirectional: bool = param(True, help="read both directions (offline transcription)")
    transformer_layers: int = param(2, help="encoder blocks (encoder: transformer)", ge=1)
    heads: int = param(4, help="attention heads (encoder: transformer)", ge=1)
    ff_units: int = param(128, help="feed-forward width (encoder: transformer)", ge=1)
    dropout: float = param(
        0.1, help="dropout after the convolutions and in the encoder", ge=0, lt=1
    )
    blank_bias: float = param(
        0.0, help="initial bias of the blank logit (0: Keras' zeros, as the other classes)"
    )

    def check(self) -> None:
        """One stride per convolution."""
        super().check()
        if len(self.conv_strides) != len(self.conv_filters):
            raise ParamError(
                "conv_strides",
                f"has {len(self.conv_strides)} entries; conv_filters has {len(self.conv_filters)}",
            )

    def build(self, inputs: ModelInputs, num_classes: int) -> Any:
        """Return the Keras model for ``inputs`` and ``num_classes`` classes (blank included)."""
        import math

        import keras

        layers = ctc_layers()
        name, bins = _speech_inputs(inputs, self.name)
        spec = keras.Input(shape=(None, bins), name=name)
        frames_in = keras.Input(shape=(), dtype="int32", name=name + "_frames")
        x = spec
        half = self.kernel_size // 2
        stride_so_far = 1
        for filters, stride in zip(self.conv_filters, self.conv_strides, strict=True):
            # Fixed padding, not "same": TensorFlow's "same" pads a strided convolution by an
            # amount that depends on the (batch's) length, which would shift a clip's frames.
            x = keras.layers.ZeroPadding1D((half, self.kernel_size - 1 - half))(x)
            x = keras.layers.Conv1D(filters, self.kernel_size, strides=stride)(x)
            x = keras.layers.LayerNormalization()(x)
            x = keras.layers.Activation("relu")(x)
            stride_so_far *= stride
            # zero the steps past each clip's end, as the next layer's padding is
            valid = layers["StridedFrames"](stride_so_far)(frames_in)
            x = layers["ApplyMask"]()(x, layers["FrameMask"]()(valid, x))
        frames = layers["StridedFrames"](math.prod(self.conv_strides), name="frames")(frames_in)
        mask = layers["FrameMask"]()(frames, x)
        if self.dropout:
            x = keras.layers.Dropout(self.dropout)(x)
        if self.encoder == "rnn":
            cell = keras.layers.GRU if self.cell == "gru" else keras.layers.LSTM
            for _ in range(self.rnn_layers):
                rnn = cell(self.rnn_units, return_sequences=True, dropout=self.dropout)
                if self.bidirectional:
                    rnn = keras.layers.Bidirectional(rnn)
                x = rnn(x, mask=mask)
        else:
            x = _transformer(x, mask, self, layers)
        head = keras.layers.Dense(num_classes, dtype="float32", name="logits")
        logits = head(x)
        if self.blank_bias:  # set, not an initializer: the saved config stays Keras' own
            head.bias.assign([0.0] * (num_classes - 1) + [self.blank_bias])
        return keras.Model(
            {name: spec, name + "_frames": frames_in},
            {"logits": logits, "frames": frames},
            name=self.name,
        )


def _transformer(x: Any, mask: Any, model: CtcSpeech, layers: dict[str, type]) -> Any:
    import keras

    width = int(x.shape[-1])
    x = layers["SinePositions"]()(x)
    for _ in range(model.transformer_layers):
        attended = keras.layers.MultiHeadAttention(
            model.heads, max(1, width // model.heads), dropout=model.dropout
        )(x, x, query_mask=mask, value_mask=mask)
        x = keras.layers.LayerNormalization()(x + attended)
        hidden = keras.layers.Dense(model.ff_units, activation="relu")(x)
        hidden = keras.layers.Dense(width)(keras.layers.Dropout(model.dropout)(hidden))
        x = keras.layers.LayerNormalization()(x + hidden)
    return x
