"""Speech models: ``build(inputs, num_classes) -> keras.Model`` over a spectrogram input.

``inputs`` is what ``audio_input.model_inputs`` returned: one input of modality ``audio`` shaped
``[frames, bins, 1]``. The output layer computes in float32 so that mixed precision keeps a stable
softmax, as the models of ``beamline_plugins.keras.models`` do.
"""

from __future__ import annotations

from typing import Any, Literal

from beamline import Model, ModelInputs, param
from beamline.errors import PipelineError
from beamline_plugins.training.layers import TRAIN_LOGITS, regularizer


def _audio_input(inputs: dict[str, dict[str, Any]], model: str) -> tuple[str, list[int]]:
    found = [(n, s["shape"]) for n, s in inputs.items() if s.get("modality") == "audio"]
    if len(found) != 1 or len(found[0][1]) != 3:
        raise PipelineError(
            f"model '{model}' needs exactly one audio input shaped [frames, bins, 1] "
            f"(from audio_input), got {inputs or 'none'}"
        )
    return found[0]


class AudioCnn(Model):
    """A CNN over the spectrogram: conv blocks with batch norm and pooling, dense, softmax.

    ``mode: conv2d`` treats the spectrogram as an image (time x frequency); ``conv1d`` convolves
    over time with the frequency bins as channels. Each entry of ``filters`` is one block: a
    same-padded convolution, batch normalisation on request, ReLU and pooling by 2. After the
    blocks, ``head: flatten`` keeps where in time things happened; ``global`` averages over it.
    ``freq_dropout`` and ``time_dropout`` mask random mel bins or frames while training.
    ``members > 1`` builds that many towers (blocks, dense layers, softmax) over the one input
    and averages their probabilities: an ensemble inside one model file. ``test_shifts`` scores
    the clip also rolled in time by each of these many frames and averages the logits of all the
    views (test-time augmentation, inference only: the fit trains on the unshifted view, layer
    ``train_logits``, so training costs what it costs without)."""

    name = "audio_cnn"

    mode: Literal["conv2d", "conv1d"] = param("conv2d", help="2-D over time x frequency, or 1-D")
    filters: list[int] = param([16, 32, 64], help="filters of each convolution block", ge=1)
    kernel_size: int = param(3, help="kernel side (conv2d: square) or length (conv1d)", ge=1)
    batch_norm: bool = param(False, help="batch normalisation after each convolution")
    head: Literal["flatten", "global"] = param("flatten", help="flatten or global average pool")
    dense_units: list[int] = param([64], help="units of the dense layers after the blocks", ge=1)
    dropout: float = param(0.3, help="dropout rate before each dense layer", ge=0, lt=1)
    l2: float = param(0.0, help="L2 weight penalty", ge=0)
    freq_dropout: float = param(
        0.0, help="training only: share of mel bins zeroed for the whole clip", ge=0, lt=1
    )
    time_dropout: float = param(
        0.0, help="training only: share of frames zeroed across all bins", ge=0, lt=1
    )
    members: int = param(
        1, help="ensemble: convolution towers and softmax this many times, averaged", ge=1
    )
    test_shifts: list[int] = param(
        [],
        help="inference only: also score the clip rolled in time by these frames (e.g. [-3, 3]) "
        "and average the views' logits",
    )

    def build(self, inputs: ModelInputs, num_classes: int) -> Any:
        """Return the Keras model for ``inputs`` and ``num_classes`` classes."""
        import keras

        name, shape = _audio_input(inputs, self.name)
        frames, bins, _ = shape
        spec = keras.Input(shape=tuple(shape), name=name)
        x = spec
        # SpecAugment-like masking (Park et al. 2019) by dropout of whole bins or frames
        if self.freq_dropout > 0:
            x = keras.layers.Dropout(self.freq_dropout, noise_shape=(None, 1, bins, 1))(x)
        if self.time_dropout > 0:
            x = keras.layers.Dropout(self.time_dropout, noise_shape=(None, frames, 1, 1))(x)
        if self.test_shifts:
            scores = self._shift_averaged(x, frames, bins, num_classes)
        elif self.members == 1:
            scores = self._tower(x, frames, bins, num_classes, "scores")
        else:  # members differ by their initial weights and dropout masks
            towers = [
                self._tower(x, frames, bins, num_classes, f"scores_{i}")
                for i in range(self.members)
            ]
            scores = keras.layers.Average(dtype="float32", name="scores")(towers)
        return keras.Model({name: spec}, scores, name=self.name)

    def _shift_averaged(self, x: Any, frames: int, bins: int, num_classes: int) -> Any:
        """One tower's logits over ``x`` and over ``x`` rolled by each of ``test_shifts``
        frames, averaged into the softmax ``scores``; layer ``train_logits`` is the unshifted view's
        (what ``training_view`` trains on)."""
        import keras

        if self.members > 1:
            raise PipelineError(
                f"model '{self.name}': test_shifts and members > 1 do not combine; drop one"
            )
        shifts = [k % frames for k in self.test_shifts]
        if not all(shifts):
            raise PipelineError(
                f"model '{self.name}': test_shifts {self.test_shifts} holds a shift of 0 (or a "
                f"multiple of the {frames} frames); the unshifted view is always scored"
            )
        tower = self._tower_layers(frames, bins, num_classes, logits=True)
        centre = keras.layers.Identity(dtype="float32", name=TRAIN_LOGITS)(_apply(tower, x))
        views = [centre] + [_apply(tower, _rolled(x, k, frames)) for k in shifts]
        mean = keras.layers.Average(dtype="float32")(views)
        return keras.layers.Activation("softmax", dtype="float32", name="scores")(mean)

    def _tower(self, x: Any, frames: int, bins: int, num_classes: int, name: str) -> Any:
        """Convolution blocks, dense layers and a softmax named ``name`` over ``x``."""
        return _apply(self._tower_layers(frames, bins, num_classes, name=name), x)

    def _tower_layers(
        self,
        frames: int,
        bins: int,
        num_classes: int,
        logits: bool = False,
        name: str | None = None,
    ) -> list[Any]:
        """A tower's layers in order (convolution blocks, dense layers, then a float32 softmax
        named ``name``, or float32 logits when ``logits``), created once so that several inputs
        can share them."""
        import keras

        reg = regularizer(self.l2)
        layers: list[Any] = []
        if self.mode == "conv1d":
            layers.append(keras.layers.Reshape((frames, bins)))
            conv, pool, pool_global = (
                keras.layers.Conv1D,
                keras.layers.MaxPooling1D,
                keras.layers.GlobalAveragePooling1D,
            )
            sizes = [frames]
        else:
            conv, pool, pool_global = (
                keras.layers.Conv2D,
                keras.layers.MaxPooling2D,
                keras.layers.GlobalAveragePooling2D,
            )
            sizes = [frames, bins]
        for filters in self.filters:
            layers.append(
                conv(
                    filters,
                    self.kernel_size,
                    padding="same",
                    use_bias=not self.batch_norm,
                    kernel_regularizer=reg,
                )
            )
            if self.batch_norm:
                layers.append(keras.layers.BatchNormalization())
            layers.append(keras.layers.Activation("relu"))
            if min(sizes) >= 2:
                layers.append(pool(2, padding="same"))
                sizes = [-(-size // 2) for size in sizes]
        layers.append(keras.layers.Flatten() if self.head == "flatten" else pool_global())
        for units in self.dense_units:
            if self.dropout > 0:
                layers.append(keras.layers.Dropout(self.dropout))
            layers.append(keras.layers.Dense(units, activation="relu", kernel_regularizer=reg))
        if self.dropout > 0:
            layers.append(keras.layers.Dropout(self.dropout))
        layers.append(
            keras.layers.Dense(
                num_classes,
                activation=None if logits else "softmax",
                kernel_regularizer=reg,
                dtype="float32",
                name=name,
            )
        )
        return layers


def _apply(layers: list[Any], x: Any) -> Any:
    """``x`` through ``layers`` in turn."""
    for layer in layers:
        x = layer(x)
    return x


def _rolled(x: Any, shift: int, frames: int) -> Any:
    """``x`` ([batch, frames, bins, 1]) rolled ``shift`` frames later in time (0 < shift <
    ``frames``): the last ``shift`` frames come first. Built-in layers only, so that model.keras
    loads without custom objects; the clips are centred in silence, so the wrapped frames are
    silence too, as a shifted waveform's would be."""
    import keras

    tail = keras.layers.Cropping2D(((frames - shift, 0), (0, 0)))(x)
    head = keras.layers.Cropping2D(((0, shift), (0, 0)))(x)
    return keras.layers.Concatenate(axis=1)([tail, head])
