"""WAV samples decoded by soundfile (libsndfile), for the ``libraries`` case.

``decode_samples`` has the signature of ``beamline_plugins.audio.wav.decode_samples``, so a
benchmark worker can swap it in: the header is still checked by ``inspect_wav`` (libsndfile
reads a truncated data chunk without a word, and its errors do not say what is wrong), and
libsndfile decodes the samples instead of numpy.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

    from beamline_plugins.audio.wav import Layout


def decode_samples(data: bytes, layout: Layout) -> np.ndarray:
    """The samples of a checked file as float32 ``[frames, channels]``, read by libsndfile."""
    import soundfile

    samples, _ = soundfile.read(
        io.BytesIO(data), frames=layout.frames, dtype="float32", always_2d=True
    )
    return samples


def encode_pcm16(samples: np.ndarray, sample_rate: int) -> bytes:
    """WAV bytes (PCM 16-bit) written by libsndfile from the same rounded 16-bit integers."""
    import numpy as np
    import soundfile

    array = np.asarray(samples, dtype=np.float64)
    ints = np.clip(np.round(array * 32768.0), -32768, 32767).astype("<i2")
    out = io.BytesIO()
    soundfile.write(out, ints, int(sample_rate), subtype="PCM_16", format="WAV")
    return out.getvalue()
