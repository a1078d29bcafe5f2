"""The ``speech_input`` input pipeline: clips of any length and their transcripts, for CTC.

Unlike ``audio_input`` (fixed-length clips, one label), a batch here holds clips of different
lengths, zero-padded, with their frame counts, and the transcript's token ids (padded with -1).
Training, evaluation and serving share one TensorFlow path, ``decode_mono`` then ``log_mel``:
WAV bytes -> mono float waveform -> log-mel frames standardised over the clip's own frames, the
frames past a clip's end set to zero. A clip's features therefore do not depend on what it is
batched with, and the exported model (raw WAV bytes in) computes exactly what training saw.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Literal

from beamline import Artifact, InputPipeline, ModelInputs, param
from beamline.errors import PipelineError
from beamline.examples import feature_of_modality, feature_spec

from .features import FrameGeometry
from .transcript_vocabulary import load_transcript_vocabulary

Augmentation = Literal["speed", "noise", "spec_mask"]
FRAMES_SUFFIX = "_frames"


@dataclass(frozen=True)
class SpeechSettings(FrameGeometry):
    """How WAV bytes become model features; stored with the model so serving does the same."""

    sample_rate: int
    window_ms: float = 25.0
    hop_ms: float = 10.0
    mel_bins: int = 40
    fmin: float = 20.0
    fmax: float = 0.0  # 0: the Nyquist frequency
    top_db: float = 60.0  # dynamic range kept below each clip's loudest bin (0: all)

    def frames(self, samples: int) -> int:
        """Frames of a clip of ``samples`` (windows that fit entirely; at least one)."""
        return 1 + max(0, samples - self.frame_length) // self.frame_step

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (stored in model.json through the model inputs)."""
        return asdict(self)


def decode_mono(encoded: Any, sample_rate: int) -> Any:
    """One WAV string tensor -> float32 ``[samples]`` in [-1, 1], channels averaged.

    Fails with a clear message when the file's sample rate is not ``sample_rate``."""
    import tensorflow as tf

    audio, rate = tf.audio.decode_wav(encoded)
    check = tf.debugging.assert_equal(
        rate,
        tf.constant(sample_rate, tf.int32),
        message=f"the WAV sample rate differs from the model's {sample_rate} Hz; resample it",
    )
    with tf.control_dependencies([check]):
        return tf.reduce_mean(audio, axis=1)


def log_mel(waves: Any, lengths: Any, s: SpeechSettings) -> tuple[Any, Any]:
    """Zero-padded waveforms ``[batch, samples]`` and their lengths -> ``(features, frames)``.

    ``features`` is ``[batch, frames, mel_bins]``: log-mel energies floored ``top_db`` below
    the clip's loudest, standardised per clip over its own frames (zero mean, unit variance),
    zero past each clip's ``frames``."""
    import tensorflow as tf

    short = tf.maximum(s.frame_length - tf.shape(waves)[1], 0)
    waves = tf.pad(waves, [[0, 0], [0, short]])
    stft = tf.signal.stft(
        waves,
        frame_length=s.frame_length,
        frame_step=s.frame_step,
        fft_length=s.fft_length,
        window_fn=tf.signal.hann_window,
        pad_end=False,
    )
    mel_matrix = tf.signal.linear_to_mel_weight_matrix(
        num_mel_bins=s.mel_bins,
        num_spectrogram_bins=s.fft_length // 2 + 1,
        sample_rate=s.sample_rate,
        lower_edge_hertz=s.fmin,
        upper_edge_hertz=s.fmax if s.fmax > 0 else s.sample_rate / 2.0,
    )
    features = tf.math.log(tf.tensordot(tf.math.square(tf.abs(stft)), mel_matrix, axes=1) + 1e-10)
    lengths = tf.cast(lengths, tf.int32)
    frames = 1 + tf.maximum(lengths - s.frame_length, 0) // s.frame_step
    mask = tf.sequence_mask(frames, tf.shape(features)[1], dtype=tf.float32)[..., tf.newaxis]
    if s.top_db > 0:  # digital silence and a quiet room both sit at the floor
        loudest = tf.reduce_max(features * mask - 1e9 * (1 - mask), axis=[1, 2], keepdims=True)
        features = tf.maximum(features, loudest - s.top_db * math.log(10.0) / 10.0)
    count = tf.reduce_sum(mask, axis=[1, 2], keepdims=True) * s.mel_bins
    mean = tf.reduce_sum(features * mask, axis=[1, 2], keepdims=True) / count
    variance = tf.reduce_sum(tf.square(features - mean) * mask, axis=[1, 2], keepdims=True) / count
    features = (features - mean) / tf.sqrt(variance + 1e-6) * mask
    return tf.ensure_shape(features, [None, None, s.mel_bins]), frames


def change_speed(wave: Any, factor: Any) -> Any:
    """``wave`` played ``factor`` times faster (tempo and pitch together, as speed perturbation
    for speech recognition does, Ko et al. 2015): resampled by linear interpolation."""
    import tensorflow as tf

    n = tf.shape(wave)[0]
    target = tf.maximum(tf.cast(tf.round(tf.cast(n, tf.float32) / factor), tf.int32), 1)
    image = tf.reshape(wave, [1, n, 1, 1])
    return tf.reshape(tf.image.resize(image, [target, 1], method="bilinear"), [target])


class SpeechInput(InputPipeline):
    """Speech clips of any length with their transcripts, for CTC: log-mel frames, token ids.

    Reads the WAV feature (PCM 16-bit, one sample rate: put ``decode_audio`` and ``resample``
    in ingest) and the transcript, tokenised with the ``transcript_vocabulary`` asset of the
    examples (tokens outside it are dropped from targets). Features are log-mel energies (Hann
    windows of ``window_ms`` every ``hop_ms``), floored ``top_db`` below the clip's loudest and
    standardised per clip; the model also gets each clip's frame count (input
    ``<feature>_frames``). Training data is shuffled (seeded) and optionally augmented:
    ``speed`` plays a clip up to ``speed`` faster or slower, ``noise`` adds Gaussian noise to
    the waveform, ``spec_mask`` masks a band of mel bins and ``time_masks`` spans of frames
    (SpecAugment). Each epoch's order and augmentation follow from ``seed`` alone. Serving takes
    raw WAV bytes and runs the same TensorFlow functions."""

    name = "speech_input"
    feature: str = param("", help="audio feature to read; default: the feature of modality audio")
    text_feature: str = param("text", help="the transcript feature")
    window_ms: float = param(25.0, help="analysis window length in milliseconds", gt=0)
    hop_ms: float = param(10.0, help="step between windows in milliseconds", gt=0)
    mel_bins: int = param(40, help="mel bands", ge=1)
    fmin: float = param(20.0, help="lowest frequency of the mel bands (Hz)", ge=0)
    fmax: float = param(0.0, help="highest frequency of the mel bands (Hz; 0: Nyquist)", ge=0)
    top_db: float = param(
        60.0, help="dynamic range kept below each clip's loudest mel energy (dB; 0: all)", ge=0
    )
    shuffle_buffer: int = param(10000, help="shuffle buffer of the training split (examples)")
    augment: list[Augmentation] = param(
        [],
        help="training-only augmentation: speed (perturbation), noise (additive), spec_mask "
        "(SpecAugment masks)",
    )
    speed: float = param(
        0.1, help="largest relative speed change (speed: 0.1 = 0.9-1.1x)", ge=0, lt=1
    )
    noise: float = param(0.005, help="largest standard deviation of the additive noise", ge=0)
    freq_mask: int = param(6, help="widest band of masked mel bins (spec_mask)", ge=0)
    time_mask: int = param(6, help="longest span of masked frames (spec_mask)", ge=0)
    time_masks: int = param(2, help="spans of masked frames per clip (spec_mask)", ge=0)

    def audio_feature(self, examples: Artifact) -> str:
        """The name of the audio feature this pipeline reads."""
        return feature_of_modality(examples, "audio", self.feature, self.name)

    def settings(self, examples: Artifact) -> SpeechSettings:
        """The feature settings for an examples artifact (its one sample rate)."""
        name = self.audio_feature(examples)
        details = feature_spec(examples)["features"][name]
        rate = details.get("sample_rate")
        if not isinstance(rate, int):
            raise PipelineError(
                f"speech_input: the clips of '{name}' in {examples.path} have no single sample "
                f"rate ({details.get('sample_rate_range', 'not recorded')}); add "
                "'decode_audio' and 'resample' to the ingest transforms"
            )
        return SpeechSettings(
            sample_rate=rate,
            window_ms=self.window_ms,
            hop_ms=self.hop_ms,
            mel_bins=self.mel_bins,
            fmin=self.fmin,
            fmax=self.fmax,
            top_db=self.top_db,
        )

    def model_inputs(self, examples: Artifact) -> ModelInputs:
        """``{audio: [frames, mel_bins] + settings and vocabulary, audio_frames: []}``."""
        name = self.audio_feature(examples)
        vocabulary = load_transcript_vocabulary(examples, self.text_feature)
        return {
            name: {
                "shape": [None, self.mel_bins],
                "dtype": "float32",
                "modality": "audio",
                "preprocessing": self.settings(examples).to_dict(),
                "vocabulary": vocabulary["tokens"],
                "level": vocabulary["level"],
                "lowercase": vocabulary["lowercase"],
                "blank": vocabulary["blank"],
                "text_feature": self.text_feature,
            },
            name + FRAMES_SUFFIX: {"shape": [], "dtype": "int32", "modality": "length"},
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
        """Batches of ``(features, labels)`` (and ids, the normalised transcript among them).

        ``features`` is ``{audio: [batch, frames, bins], audio_frames: [batch]}``, ``labels``
        the token ids ``[batch, longest]`` padded with -1. The order depends on ``seed`` only."""
        import tensorflow as tf

        from beamline_plugins.training.records import id_features, read_records

        inputs = inputs or self.model_inputs(examples)
        name, spec = _audio_entry(inputs)
        s = SpeechSettings(**spec["preprocessing"])
        text_feature = spec["text_feature"]
        ids, ids_spec = id_features(examples) if with_ids else ([], {})
        parse_spec = {
            name: tf.io.FixedLenFeature([], tf.string),
            text_feature: tf.io.FixedLenFeature([], tf.string),
            **ids_spec,
        }
        tokenize = _tokenizer(spec)

        def parse(serialized: Any) -> Any:
            record = tf.io.parse_single_example(serialized, parse_spec)
            wave = decode_mono(record[name], s.sample_rate)
            text, labels = tokenize(record[text_feature])
            extra = {n: record[n] for n in ids}
            extra[text_feature] = text
            return wave, tf.shape(wave)[0], labels, extra

        ds = read_records(examples, split, parse, shuffle_files=training, seed=seed)
        if training:  # CTC cannot learn from an empty target (every token unknown)
            ds = ds.filter(lambda wave, n, labels, extra: tf.size(labels) > 0)
            ds = ds.shuffle(self.shuffle_buffer, seed=seed, reshuffle_each_iteration=False)
        generator = tf.random.Generator.from_seed(seed) if training and self.augment else None
        if generator is not None and "speed" in self.augment and self.speed > 0:

            def perturb(wave: Any, n: Any, labels: Any, extra: Any) -> Any:
                factor = generator.uniform([], 1.0 - self.speed, 1.0 + self.speed)
                wave = change_speed(wave, factor)
                return wave, tf.shape(wave)[0], labels, extra

            ds = ds.map(perturb)
        if generator is not None and "noise" in self.augment and self.noise > 0:

            def add_noise(wave: Any, n: Any, labels: Any, extra: Any) -> Any:
                level = generator.uniform([], 0.0, self.noise)
                return wave + level * generator.normal(tf.shape(wave)), n, labels, extra

            ds = ds.map(add_noise)
        ds = ds.padded_batch(batch_size, padding_values=(0.0, 0, tf.constant(-1, tf.int32), None))
        masking = generator is not None and "spec_mask" in self.augment

        def to_features(waves: Any, lengths: Any, labels: Any, extra: Any) -> Any:
            features, frames = log_mel(waves, lengths, s)
            if masking:
                features = _spec_mask(features, generator, self)
            out = ({name: features, name + FRAMES_SUFFIX: frames}, labels)
            return out + (extra,) if with_ids else out

        ds = ds.map(to_features)
        return ds.prefetch(tf.data.AUTOTUNE)

    def serving(
        self, inputs: ModelInputs
    ) -> tuple[dict[str, Any], Callable[[dict[str, Any]], dict[str, Any]]]:
        """The serving signature (a batch of WAV file bytes) and its preprocessing."""
        import tensorflow as tf

        name, spec = _audio_entry(inputs)
        s = SpeechSettings(**spec["preprocessing"])
        signature = {name: tf.TensorSpec([None], tf.string, name=name)}

        def preprocess(raw: dict[str, Any]) -> dict[str, Any]:
            waves = tf.map_fn(
                lambda one: decode_mono(one, s.sample_rate),
                raw[name],
                fn_output_signature=tf.RaggedTensorSpec([None], tf.float32),
            )
            features, frames = log_mel(waves.to_tensor(), waves.row_lengths(), s)
            return {name: features, name + FRAMES_SUFFIX: frames}

        return signature, preprocess


def _audio_entry(inputs: ModelInputs) -> tuple[str, dict[str, Any]]:
    found = [(n, s) for n, s in inputs.items() if s.get("modality") == "audio"]
    if len(found) != 1 or "vocabulary" not in found[0][1]:
        raise PipelineError(
            f"speech_input: expected one audio input with a vocabulary, got {inputs}"
        )
    return found[0]


def _tokenizer(spec: dict[str, Any]) -> Callable[[Any], tuple[Any, Any]]:
    """A function from a transcript to ``(normalised text, token ids)`` (unknown tokens dropped),
    the TensorFlow twin of ``transcript_vocabulary.transcript_tokens``."""
    import tensorflow as tf

    table = tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(
            tf.constant(spec["vocabulary"]), tf.range(len(spec["vocabulary"]), dtype=tf.int32)
        ),
        default_value=-1,
    )
    word_level, lowercase = spec["level"] == "word", bool(spec["lowercase"])

    def tokenize(text: Any) -> tuple[Any, Any]:
        text = tf.strings.strip(tf.strings.regex_replace(text, r"\s+", " "))
        if lowercase:
            text = tf.strings.lower(text, encoding="utf-8")
        pieces = (
            tf.strings.split(text, " ") if word_level else tf.strings.unicode_split(text, "UTF-8")
        )
        ids = table.lookup(pieces)
        return text, tf.boolean_mask(ids, ids >= 0)

    return tokenize


def _spec_mask(features: Any, generator: Any, pipeline: SpeechInput) -> Any:
    """SpecAugment: per clip, one band of up to ``freq_mask`` mel bins and ``time_masks`` spans
    of up to ``time_mask`` frames set to zero (the standardised mean)."""
    import tensorflow as tf

    shape = tf.shape(features)
    batch, frames, bins = shape[0], shape[1], shape[2]
    keep = tf.ones_like(features)

    def band(size: int, extent: Any, axis_len: Any, on_time: bool) -> Any:
        width = generator.uniform([batch, 1], 0, size + 1, dtype=tf.int32)
        room = tf.cast(tf.maximum(axis_len - width, 0) + 1, tf.float32)
        start = tf.cast(tf.floor(generator.uniform([batch, 1]) * room), tf.int32)
        positions = tf.range(extent)[tf.newaxis, :]
        inside = (positions >= start) & (positions < start + width)
        inside = tf.cast(~inside, features.dtype)
        return inside[:, :, tf.newaxis] if on_time else inside[:, tf.newaxis, :]

    if pipeline.freq_mask > 0:
        keep *= band(pipeline.freq_mask, bins, bins, False)
    for _ in range(pipeline.time_masks if pipeline.time_mask > 0 else 0):
        keep *= band(pipeline.time_mask, frames, frames, True)
    return features * keep
