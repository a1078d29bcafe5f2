"""Quiet by default: silence the start-up and log noise of TensorFlow, Beam and Google clients.

Applied when beamline runs a pipeline (the CLI's ``main`` and ``beamline.run``) unless verbose.
What it hides, and how:

- TensorFlow's C++ log lines (oneDNN notice, CUDA/cuDNN/cuFFT/cuBLAS factory registration,
  TensorRT, ``OUT_OF_RANGE`` rendezvous): ``TF_CPP_MIN_LOG_LEVEL=3``, read when TensorFlow
  loads, so this must run first. An environment variable: Beam's worker processes inherit it.
- absl, TensorFlow and Beam Python loggers: below ERROR.
- Beam's ``crcmod package not found`` warning (crcmod only speeds up a checksum): that one line.
- google-api-core's Python 3.11 end-of-support ``FutureWarning``: in this process and, through
  ``PYTHONWARNINGS``, in worker processes.
- Beam worker processes of the ``local`` runner (``No semi_persistent_directory found`` and their
  INFO lines): through ``PYTHONPATH``, a ``sitecustomize`` that only acts in a Beam SDK worker
  started with ``BEAMLINE_QUIET=1`` (see ``beamline/_worker_site``).

A value the user already set in the environment is kept. Verbose changes nothing, so every line
shows as the libraries print it.
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path

QUIET_ENV = "BEAMLINE_QUIET"
WORKER_SITE = Path(__file__).with_name("_worker_site")
GOOGLE_WARNING = "ignore::FutureWarning:google.api_core._python_version_support"
QUIET_LOGGERS = ("absl", "tensorflow", "apache_beam", "tensorflow_data_validation", "tfx_bsl")


class _DropMessage(logging.Filter):
    """Drop records whose message starts with ``prefix``."""

    def __init__(self, prefix: str) -> None:
        super().__init__()
        self.prefix = prefix

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.prefix)


_CRCMOD = _DropMessage("crcmod package not found")


def quiet(verbose: bool = False) -> None:
    """Silence library noise for the rest of this process and the processes it starts.

    Call before TensorFlow is imported (its C++ log level is read when it loads). Calling it
    again is harmless; ``verbose=True`` leaves everything as it is."""
    if verbose:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ[QUIET_ENV] = "1"
    _append_env("PYTHONWARNINGS", GOOGLE_WARNING, ",")
    _append_env("PYTHONPATH", str(WORKER_SITE), os.pathsep)
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"google\..*")
    root = logging.getLogger()
    if _CRCMOD not in root.filters:
        root.addFilter(_CRCMOD)
    for name in QUIET_LOGGERS:
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET:  # a level the user chose stays
            logger.setLevel(logging.ERROR)


def _append_env(name: str, value: str, separator: str) -> None:
    current = os.environ.get(name, "")
    if value not in current.split(separator):
        os.environ[name] = f"{current}{separator}{value}" if current else value
