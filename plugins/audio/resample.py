"""Band-limited resampling with soxr (libsoxr, the SoX resampler): any pair of integer rates.

Content above the new Nyquist frequency is filtered out instead of aliasing; the pass band is
flat. soxr replaced a hand-written numpy polyphase filter (windowed sinc, 16 zero crossings;
frozen in ``bench/reference/polyphase.py``). On the 960 spoken-digit clips, 8 -> 16 kHz (bench
``libraries`` case): 30 against 1,614 us per clip, the whole ingest step 1.35 against 3.08 s;
the outputs agree to 84.5 dB below 3 kHz and differ in the transition band near the old Nyquist
frequency (18.9 dB between 3 and 4 kHz), where soxr's filter is flat further and cuts sharper
(39.4 dB to the ideal band-limited interpolation against 37.0 dB for the old filter).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

#: soxr's quality recipes by the transform's ``quality`` (the filter length it used to name in
#: zero crossings each side): 2-4 low, 5-8 medium, 9-16 high (the default), 17-64 very high.
_RECIPES = ((4, "LQ"), (8, "MQ"), (16, "HQ"), (64, "VHQ"))


def recipe(quality: int) -> str:
    """The soxr quality recipe for a ``quality`` of 2..64 (higher: sharper, slower)."""
    return next((name for limit, name in _RECIPES if quality <= limit), "VHQ")


def resample(samples: np.ndarray, rate_in: int, rate_out: int, *, quality: int = 16) -> np.ndarray:
    """Resample ``samples`` ([n] or [n, channels]) from ``rate_in`` to ``rate_out`` Hz.

    Returns float32 of about ``n * rate_out / rate_in`` samples (exact for whole seconds);
    equal rates return a float32 copy."""
    import numpy as np
    import soxr

    if rate_in <= 0 or rate_out <= 0:
        raise ValueError(f"sample rates must be positive, got {rate_in} and {rate_out}")
    x = np.ascontiguousarray(samples, dtype=np.float32)
    if rate_in == rate_out:
        return x.copy()
    return soxr.resample(x, int(rate_in), int(rate_out), quality=recipe(quality))
