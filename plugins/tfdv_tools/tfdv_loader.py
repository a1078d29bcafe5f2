"""Importing TFDV quietly (it is heavy: imported inside the functions that use it)."""

from __future__ import annotations

from typing import Any


def load_tfdv() -> Any:
    """Import TFDV, without the notice it writes to stderr when IPython (notebooks) is missing."""
    import contextlib
    import io
    import sys

    if "tensorflow_data_validation" not in sys.modules:
        with contextlib.redirect_stderr(io.StringIO()):
            import tensorflow_data_validation  # noqa: F401
    import tensorflow_data_validation as tfdv

    return tfdv
