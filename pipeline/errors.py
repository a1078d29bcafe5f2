"""Errors a user can act on, each with the exit code the CLI returns for it.

Exit codes: 0 success; 1 a step failed; 2 bad input (pipeline file, parameters, plugins,
command-line usage, a missing data folder, an unknown run, a bad ``--row``); 3 the validation
gate stopped the run. Bad input names the file, line and key where there is one, and the closest
valid name (``closest``).
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Iterable
from pathlib import Path
from typing import Any


class PipelineError(Exception):
    """Base of every error the framework reports to a user."""

    exit_code = 1


class SpecError(PipelineError):
    """A pipeline file, an override or a parameter is wrong."""

    exit_code = 2


class PluginError(PipelineError):
    """A plugin could not be loaded, or registered something invalid."""

    exit_code = 2


class StepFailed(PipelineError):
    """A step's component raised; the message names the step, plugin and run directory."""

    exit_code = 1


class GateFailed(PipelineError):
    """A validation gate found problems it is configured to treat as errors."""

    exit_code = 3


class AccountingError(PipelineError):
    """A step lost records: read != written + rejected."""

    exit_code = 1


class DataNotFound(SpecError):
    """A folder or file that a component's parameter names does not exist (bad input, exit 2).

    Raised where the path is checked, which knows the component and the parameter but not the
    pipeline file; the step executor adds those with ``located``."""

    def __init__(self, message: str, component: str = "", param: str = "") -> None:
        super().__init__(message)
        self.component = component
        self.param = param

    def located(self, pipeline_file: str | Path, step: str, step_component: Any) -> SpecError:
        """The same error naming the pipeline file and the key: ``steps.ingest.root``."""
        key = _key_of(step_component, self.component, self.param)
        key = key or (f".{self.param}" if self.param else "")
        return SpecError(f"{pipeline_file}: steps.{step}{key}: {self}")


def closest(word: str, choices: Iterable[str]) -> str:
    """Return ``"; did you mean 'x'?"`` for the closest of ``choices``, or an empty string."""
    match = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"; did you mean '{match[0]}'?" if match else ""


def _key_of(component: Any, name: str, param: str, prefix: str = "") -> str:
    """``.root`` or ``.source.root``: where, below a step, the component ``name`` sets ``param``."""
    if getattr(component, "name", None) == name or not name:
        return f"{prefix}.{param}" if param else prefix
    if dataclasses.is_dataclass(component):
        for f in dataclasses.fields(component):
            value = getattr(component, f.name)
            if dataclasses.is_dataclass(value) and not isinstance(value, type):
                found = _key_of(value, name, param, f"{prefix}.{f.name}")
                if found:
                    return found
    return ""
