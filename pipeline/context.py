"""What a step's component receives when it runs: folders, inputs, runner options, progress."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .artifacts import Artifact, Run
from .errors import PipelineError

if TYPE_CHECKING:
    from apache_beam.options.pipeline_options import PipelineOptions

    from .progress import Reporter
    from .spec import PipelineSpec, Step


@dataclass
class StepContext:
    """The environment of one running step.

    ``output_dir`` is a fresh folder that becomes the step's artifact when ``run`` returns;
    ``inputs`` maps each ``Input`` parameter to the upstream step's artifact."""

    step: Step
    spec: PipelineSpec
    run: Run
    output_dir: Path
    inputs: dict[str, Artifact]
    reporter: Reporter
    previous: Artifact | None = None
    logger: logging.Logger = field(default_factory=lambda: logging.getLogger("beamline.step"))
    #: Called by a trainer after each epoch with its number and metrics (``val_loss``...);
    #: returning True asks the fit to stop there (a tuner's pruner). None: nobody listens.
    on_epoch: Callable[[int, dict[str, Any]], bool] | None = None

    @property
    def pipeline_dir(self) -> Path:
        """The folder of the pipeline file: relative paths in the file resolve from here."""
        return self.spec.directory

    def resolve(self, path: str | Path) -> Path:
        """Resolve a path written in the pipeline file (relative to that file's folder)."""
        path = Path(path).expanduser()
        return path if path.is_absolute() else (self.pipeline_dir / path)

    def input(self, name: str) -> Artifact:
        """The artifact of the upstream step named by parameter ``name``."""
        try:
            return self.inputs[name]
        except KeyError:
            raise PipelineError(
                f"step '{self.step.name}' has no input '{name}' (inputs: {', '.join(self.inputs)})"
            ) from None

    def beam_options(self, *, streaming: bool = False, **overrides: Any) -> PipelineOptions:
        """Beam pipeline options for this run's runner settings (``beamline.beam_options``);
        ``streaming=True`` gives the streaming variant; ``overrides`` are extra options."""
        from .beam_options import pipeline_options

        return pipeline_options(self.spec.runner, streaming=streaming, **overrides)

    def progress(self, completed: float, total: float | None = None, message: str = "") -> None:
        """Report progress of this step (for example epochs done of epochs planned)."""
        self.reporter.step_progress(self.step.name, completed, total, message)

    def epoch_done(self, epoch: int, record: dict[str, Any]) -> bool:
        """A trainer reports a finished epoch's metrics; True means: stop the fit here."""
        return bool(self.on_epoch(epoch, record)) if self.on_epoch is not None else False

    def log(self, message: str) -> None:
        """Tell the user something about this step."""
        self.reporter.step_message(self.step.name, message)
