"""Quiet the Beam SDK worker processes of a quiet beamline run (see ``beamline.quiet``).

``beamline.quiet`` puts this folder on ``PYTHONPATH``; Python imports ``sitecustomize`` when it
starts. It acts only in a Beam SDK worker (``CONTROL_API_SERVICE_DESCRIPTOR`` is set by Beam) of
a run with ``BEAMLINE_QUIET=1``: its stderr shows errors only, which hides the worker's INFO
lines, ``No semi_persistent_directory found`` and ``crcmod package not found``. Then any other
``sitecustomize`` this one shadows is run as usual.
"""

import importlib.machinery
import importlib.util
import logging
import os
import sys

if os.environ.get("BEAMLINE_QUIET") == "1" and "CONTROL_API_SERVICE_DESCRIPTOR" in os.environ:
    _handler = logging.StreamHandler()
    _handler.setLevel(logging.ERROR)
    logging.getLogger().addHandler(_handler)  # a root handler: Beam's basicConfig does nothing


def _run_shadowed_sitecustomize() -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    others = [p for p in sys.path if os.path.abspath(p or ".") != here]
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", others)
    if spec is not None and spec.loader is not None:
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)


_run_shadowed_sitecustomize()
