"""The TensorFlow preprocessing of speech, shared by training, evaluation and the exported model.

Two functions make the whole path from WAV bytes to model input:

* ``waveform(wav_bytes, ...)``: decode one WAV with ``tf.audio.decode_wav``, check its sample
  rate, average its channels, trim or zero-pad it to the model's length exactly as the Beam
  stage ``fix_length`` does (so a raw, untrimmed recording at the right rate is served as it was
  trained);
* ``spectrogram(waveforms, settings)``: a batch of waveforms -> log-mel spectrograms (or MFCCs)
  ``[batch, frames, bins, 1]``, standardised per example.

``audio_input`` calls them in its tf.data pipeline and in its serving function, so the
SavedModel's signature takes raw WAV bytes and applies the very same operations: no
train/serve skew. TensorFlow is imported inside the functions only.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


class FrameGeometry:
    """Window arithmetic of a short-time analysis, from ``sample_rate``, ``window_ms`` and
    ``hop_ms`` (fields of the settings class that mixes it in)."""

    sample_rate: int
    window_ms: float
    hop_ms: float

    @property
    def frame_length(self) -> int:
        """Samples per analysis window."""
        return max(2, round(self.sample_rate * self.window_ms / 1000.0))

    @property
    def frame_step(self) -> int:
        """Samples between window starts."""
        return max(1, round(self.sample_rate * self.hop_ms / 1000.0))

    @property
    def fft_length(self) -> int:
        """The FFT size: the smallest power of two holding a window."""
        return 1 << (self.frame_length - 1).bit_length()


@dataclass(frozen=True)
class SpectrogramSettings(FrameGeometry):
    """How waveforms become model features; stored with the model so serving uses the same."""

    sample_rate: int
    samples: int
    kind: str = "log_mel"  # log_mel | mfcc
    window_ms: float = 25.0
    hop_ms: float = 10.0
    mel_bins: int = 40
    mfcc: int = 13
    fmin: float = 20.0
    fmax: float = 0.0  # 0: the Nyquist frequency
    normalize: bool = True
    align: str = "center"

    @property
    def frames(self) -> int:
        """Frames per clip (windows that fit entirely)."""
        return 1 + max(0, self.samples - self.frame_length) // self.frame_step

    @property
    def bins(self) -> int:
        """Feature values per frame."""
        return self.mfcc if self.kind == "mfcc" else self.mel_bins

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (stored in model.json through the model inputs)."""
        return asdict(self)


def waveform(encoded: Any, sample_rate: int, samples: int, align: str = "center") -> Any:
    """Decode one WAV string tensor to float32 ``[samples]`` in [-1, 1] (mono, fixed length).

    Fails with a clear message when the file's sample rate is not ``sample_rate``."""
    import tensorflow as tf

    audio, rate = tf.audio.decode_wav(encoded)
    check = tf.debugging.assert_equal(
        rate,
        tf.constant(sample_rate, tf.int32),
        message=f"the WAV sample rate differs from the model's {sample_rate} Hz; resample it",
    )
    with tf.control_dependencies([check]):
        mono = tf.reduce_mean(audio, axis=1)
    n = tf.shape(mono)[0]
    excess = tf.maximum(n - samples, 0)
    missing = tf.maximum(samples - n, 0)
    if align == "center":
        start, before = excess // 2, missing // 2
    else:
        start, before = tf.constant(0), tf.constant(0)
    clip = mono[start : start + samples]
    clip = tf.pad(clip, [[before, missing - before]])
    return tf.ensure_shape(clip, [samples])


def waveform_batch(encoded: Any, sample_rate: int, samples: int, align: str = "center") -> Any:
    """``waveform`` over a batch of WAV byte strings (a 1-D string tensor)."""
    import tensorflow as tf

    return tf.map_fn(
        lambda one: waveform(one, sample_rate, samples, align),
        encoded,
        fn_output_signature=tf.TensorSpec([samples], tf.float32),
    )


def spectrogram(waveforms: Any, settings: SpectrogramSettings) -> Any:
    """Log-mel spectrograms (or MFCCs): ``[batch, samples]`` -> ``[batch, frames, bins, 1]``."""
    import tensorflow as tf

    s = settings
    stft = tf.signal.stft(
        waveforms,
        frame_length=s.frame_length,
        frame_step=s.frame_step,
        fft_length=s.fft_length,
        window_fn=tf.signal.hann_window,
        pad_end=False,
    )
    power = tf.math.square(tf.abs(stft))
    fmax = s.fmax if s.fmax > 0 else s.sample_rate / 2.0
    mel_matrix = tf.signal.linear_to_mel_weight_matrix(
        num_mel_bins=s.mel_bins,
        num_spectrogram_bins=s.fft_length // 2 + 1,
        sample_rate=s.sample_rate,
        lower_edge_hertz=s.fmin,
        upper_edge_hertz=fmax,
    )
    mel = tf.tensordot(power, mel_matrix, axes=1)
    features = tf.math.log(mel + 1e-6)
    if s.kind == "mfcc":
        features = tf.signal.mfccs_from_log_mel_spectrograms(features)[..., : s.mfcc]
    if s.normalize:
        mean, variance = tf.nn.moments(features, axes=[1, 2], keepdims=True)
        features = (features - mean) / tf.sqrt(variance + 1e-6)
    return tf.ensure_shape(features[..., tf.newaxis], [None, s.frames, s.bins, 1])
