"""Errors a user can act on, each with the exit code the CLI returns for it.

Exit codes: 0 success; 1 a step failed; 2 bad input (pipeline file, parameters, plugins,
command-line usage); 3 the validation gate stopped the run.
"""

from __future__ import annotations


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
