"""The polyphase resampler the audio plugin used before soxr, for the ``libraries`` case.

A frozen copy (numpy only, windowed-sinc, rational ratios), kept so the benchmark can compare
soxr against it on speed and output. Resampling from ``rate_in`` to ``rate_out`` inserts
``up - 1`` zeros between samples, low-pass filters below the lower Nyquist frequency and keeps
every ``down``-th sample; the polyphase form computes only the kept outputs.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np


def lowpass(up: int, down: int, zero_crossings: int, rolloff: float, beta: float) -> np.ndarray:
    """The prototype filter at the upsampled rate: a Kaiser-windowed sinc with gain ``up``."""
    import numpy as np

    factor = max(up, down)
    half = zero_crossings * factor
    cutoff = rolloff * 0.5 / factor  # cycles per sample of the upsampled signal
    t = np.arange(-half, half + 1, dtype=np.float64)
    return 2.0 * cutoff * np.sinc(2.0 * cutoff * t) * np.kaiser(2 * half + 1, beta) * up


def resample(
    samples: np.ndarray,
    rate_in: int,
    rate_out: int,
    *,
    zero_crossings: int = 16,
    rolloff: float = 0.945,
    beta: float = 8.6,
) -> np.ndarray:
    """Resample ``samples`` ([n] or [n, channels]) from ``rate_in`` to ``rate_out`` Hz.

    Returns float32 of length ``ceil(n * rate_out / rate_in)``; equal rates return a copy."""
    import numpy as np

    x = np.asarray(samples, dtype=np.float64)
    if rate_in <= 0 or rate_out <= 0:
        raise ValueError(f"sample rates must be positive, got {rate_in} and {rate_out}")
    if rate_in == rate_out:
        return x.astype(np.float32)
    squeeze = x.ndim == 1
    if squeeze:
        x = x[:, None]
    g = math.gcd(int(rate_in), int(rate_out))
    up, down = rate_out // g, rate_in // g
    h = lowpass(up, down, zero_crossings, rolloff, beta)
    half = (len(h) - 1) // 2
    n = x.shape[0]
    n_out = -(-n * up // down)  # ceil
    m = np.arange(n_out, dtype=np.int64) * down  # output positions on the upsampled grid
    k_first = -((half - m) // up)  # ceil((m - half) / up): first input sample under the filter
    taps = 2 * half // up + 1
    y = np.zeros((n_out, x.shape[1]), dtype=np.float64)
    for j in range(taps):
        k = k_first + j
        index = m - k * up + half
        valid = (index >= 0) & (index <= 2 * half) & (k >= 0) & (k < n)
        if not valid.any():
            continue
        weights = np.where(valid, h[np.clip(index, 0, 2 * half)], 0.0)
        y += weights[:, None] * x[np.clip(k, 0, n - 1)]
    out = y.astype(np.float32)
    return out[:, 0] if squeeze else out
