"""The ``audio_input`` input pipeline: an examples artifact -> batches of spectrograms.

It follows the input pipeline contract of ``beamline_plugins.training.image_input``
(``model_inputs`` / ``dataset`` / ``serving``), so ``keras_trainer``, ``classification_evaluator``
and ``saved_model_exporter`` use it unchanged. Training, evaluation and serving all go through
``beamline_plugins.audio.features``: ``waveform`` (WAV bytes -> fixed-length mono float waveform)
and ``spectrogram`` (waveforms -> log-mel or MFCC features). The exported signature therefore takes
raw WAV bytes. Augmentation (random time shift, additive noise) acts on the waveform, for training
only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from beamline import Artifact, InputPipeline, ModelInputs, param
from beamline.errors import PipelineError
from beamline.examples import feature_of_modality, feature_spec

from .features import SpectrogramSettings

Augmentation = Literal["speed", "shift", "noise"]


class AudioInput(InputPipeline):
    """Speech from an examples artifact: WAV bytes -> log-mel spectrogram (or MFCC) batches.

    Decodes the 16-bit PCM WAV of each example with ``tf.audio.decode_wav``, trims or pads it to
    the clip length of features.json (``fix_length``), and computes a log-mel spectrogram (Hann
    windows of ``window_ms`` every ``hop_ms``, ``mel_bins`` mel bands), optionally MFCCs, each
    standardised per example. Waveforms are cached after decoding; training data is shuffled
    (seeded) and optionally augmented before the spectrogram: speed perturbation (tempo and pitch
    together, up to ``speed`` faster or slower, then centred back to the clip length), a random
    time shift and additive Gaussian noise. The exported model runs the same TensorFlow
    function on raw WAV bytes."""

    name = "audio_input"
    feature: str = param("", help="audio feature to read; default: the feature of modality audio")
    features: Literal["log_mel", "mfcc"] = param("log_mel", help="log_mel spectrogram or mfcc")
    window_ms: float = param(25.0, help="analysis window length in milliseconds")
    hop_ms: float = param(10.0, help="step between windows in milliseconds")
    mel_bins: int = param(40, help="mel bands of the spectrogram")
    mfcc: int = param(13, help="MFCC coefficients kept (features: mfcc)")
    fmin: float = param(20.0, help="lowest frequency of the mel bands (Hz)")
    fmax: float = param(0.0, help="highest frequency of the mel bands (Hz; 0: Nyquist)")
    normalize: bool = param(True, help="standardise each example's features (zero mean, unit var)")
    seconds: float = param(0.0, help="clip length; default: from features.json (fix_length)")
    align: Literal["", "center", "left"] = param(
        "", help="how serving trims/pads raw clips; default: as fix_length did (else center)"
    )
    shuffle_buffer: int = param(10000, help="shuffle buffer of the training split (examples)")
    cache: bool = param(True, help="keep decoded waveforms in memory after the first epoch")
    augment: list[Augmentation] = param(
        [],
        help="training-only augmentation: speed (perturbation), shift (random time shift), "
        "noise (additive)",
    )
    speed: float = param(
        0.1, help="largest relative speed change (speed: 0.1 = 0.9-1.1x)", ge=0, lt=1
    )
    shift_ms: float = param(100.0, help="largest random time shift (milliseconds, either way)")
    noise: float = param(0.005, help="largest standard deviation of the additive noise")

    def audio_feature(self, examples: Artifact) -> str:
        """The name of the audio feature this pipeline reads."""
        return feature_of_modality(examples, "audio", self.feature, self.name)

    def settings(self, examples: Artifact) -> SpectrogramSettings:
        """The preprocessing settings for an examples artifact (rate and length from it)."""
        name = self.audio_feature(examples)
        details = feature_spec(examples)["features"][name]
        rate = details.get("sample_rate")
        if not isinstance(rate, int):
            raise PipelineError(
                f"audio_input: the clips of '{name}' in {examples.path} have different sample "
                f"rates ({details.get('sample_rate_range')}); add the 'resample' stage to ingest"
            )
        if self.seconds > 0:
            samples = round(self.seconds * rate)
        elif isinstance(details.get("samples"), int):
            samples = int(details["samples"])
        else:
            raise PipelineError(
                f"audio_input: the clips of '{name}' in {examples.path} have different lengths "
                f"({details.get('samples_range')} samples); add the 'fix_length' stage to ingest "
                "or set 'seconds:'"
            )
        align = self.align or str(details.get("align") or "center")
        settings = SpectrogramSettings(
            sample_rate=rate,
            samples=samples,
            kind=self.features,
            window_ms=self.window_ms,
            hop_ms=self.hop_ms,
            mel_bins=self.mel_bins,
            mfcc=self.mfcc,
            fmin=self.fmin,
            fmax=self.fmax,
            normalize=self.normalize,
            align=align,
        )
        if settings.frame_length > samples:
            raise PipelineError(
                f"audio_input: clips of {samples} samples are shorter than one window "
                f"({settings.frame_length} samples)"
            )
        return settings

    def model_inputs(self, examples: Artifact) -> ModelInputs:
        """``{audio feature: {"shape": [frames, bins, 1], ..., "preprocessing": settings}}``."""
        name = self.audio_feature(examples)
        s = self.settings(examples)
        return {
            name: {
                "shape": [s.frames, s.bins, 1],
                "dtype": "float32",
                "modality": "audio",
                "preprocessing": s.to_dict(),
            }
        }

    def dataset(
        self,
        examples: Artifact,
        split: str,
        *,
        inputs: ModelInputs | None = None,
        training: bool = False,
        batch_size: int = 32,
        seed: int = 0,
        with_ids: bool = False,
    ) -> Any:
        """Batches of ``(features, label index)`` (and ``ids`` when ``with_ids``) of ``split``.

        The order depends on ``seed`` only; training data is reshuffled every epoch."""
        import tensorflow as tf

        from beamline_plugins.training.records import (
            cached_and_shuffled,
            element_seeds,
            labelled_parser,
            read_records,
        )

        from .features import spectrogram, waveform

        inputs = inputs or self.model_inputs(examples)
        ((name, spec),) = inputs.items()
        s = SpectrogramSettings(**spec["preprocessing"])
        parse_labelled = labelled_parser(examples, name, with_ids=with_ids)

        def parse(serialized: Any) -> Any:
            encoded, index, ids = parse_labelled(serialized)
            return (waveform(encoded, s.sample_rate, s.samples, s.align), index, ids)

        ds = read_records(examples, split, parse, shuffle_files=training, seed=seed)
        ds = cached_and_shuffled(
            ds, cache=self.cache, training=training, buffer=self.shuffle_buffer, seed=seed
        )
        if training and self.augment:
            augment = _augmenter(self, s)
            ds = element_seeds(ds, seed).map(
                lambda key, e: (augment(e[0], key), *e[1:]),
                num_parallel_calls=tf.data.AUTOTUNE,
                deterministic=True,
            )
        ds = ds.batch(batch_size)

        def to_features(waves: Any, index: Any, id_values: Any) -> Any:
            out = ({name: spectrogram(waves, s)}, index)
            return out + (id_values,) if with_ids else out

        ds = ds.map(to_features, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        return ds.prefetch(tf.data.AUTOTUNE)

    def serving(
        self, inputs: ModelInputs
    ) -> tuple[dict[str, Any], Callable[[dict[str, Any]], dict[str, Any]]]:
        """The serving signature (a batch of WAV file bytes) and its preprocessing."""
        import tensorflow as tf

        from .features import spectrogram, waveform_batch

        ((name, spec),) = inputs.items()
        s = SpectrogramSettings(**spec["preprocessing"])
        signature = {name: tf.TensorSpec([None], tf.string, name=name)}

        def preprocess(raw: dict[str, Any]) -> dict[str, Any]:
            waves = waveform_batch(raw[name], s.sample_rate, s.samples, s.align)
            return {name: spectrogram(waves, s)}

        return signature, preprocess


def _augmenter(pipeline: AudioInput, s: SpectrogramSettings) -> Callable[[Any, Any], Any]:
    """A random time shift and noise of one clip, drawn statelessly from its seed (the same on
    every run, whatever order a parallel map's threads run in)."""
    import tensorflow as tf

    from .speech_input import change_speed

    max_shift = round(s.sample_rate * pipeline.shift_ms / 1000.0)
    kinds = set(pipeline.augment)

    def augment(wave: Any, seed: Any) -> Any:
        def draw(k: int) -> Any:
            return tf.random.experimental.stateless_fold_in(seed, k)

        if "speed" in kinds and pipeline.speed > 0:
            low, high = 1.0 - pipeline.speed, 1.0 + pipeline.speed
            changed = change_speed(wave, tf.random.stateless_uniform([], draw(3), low, high))
            n = tf.shape(changed)[0]
            excess, missing = tf.maximum(n - s.samples, 0), tf.maximum(s.samples - n, 0)
            changed = changed[excess // 2 : excess // 2 + s.samples]
            wave = tf.pad(changed, [[missing // 2, missing - missing // 2]])

        if "shift" in kinds and max_shift > 0:
            shift = tf.random.stateless_uniform(
                [], draw(0), -max_shift, max_shift + 1, dtype=tf.int32
            )
            padded = tf.pad(wave, [[max_shift, max_shift]])
            wave = padded[max_shift - shift : max_shift - shift + s.samples]
        if "noise" in kinds and pipeline.noise > 0:
            level = tf.random.stateless_uniform([], draw(1), 0.0, pipeline.noise)
            wave = wave + level * tf.random.stateless_normal([s.samples], draw(2))
        return tf.ensure_shape(wave, [s.samples])

    return augment
