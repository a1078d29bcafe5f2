"""Resumable training: the stable scratch folder of a step, its resume state and checkpoints.

A step writes into a fresh folder every run, so what lets an interrupted fit resume lives in a
scratch folder that outlives the run: ``runs/<pipeline>/.scratch/<step>-<digest>``, where the
digest covers the step's params and its examples' fingerprint (same work -> same folder).
After each completed epoch a trainer saves its checkpoint, then ``state.json`` (epoch, history,
early-stopping counters); a run killed at any moment resumes after its last completed epoch.
The trainer removes the folder once the step completes.

``EpochCheckpoints`` is the ``tf.train.Checkpoint`` variant of the custom loops (``keras_trainer``,
``gan_trainer``): every object that carries training state (models, optimizers, a random
generator) is saved per epoch and restored together.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from beamline import StepContext
from beamline.artifacts import Artifact, write_json_atomic
from beamline.errors import PipelineError
from beamline.fingerprint import plain

SCRATCH_DIR = ".scratch"
STATE_FILE = "state.json"
CHECKPOINTS_DIR = "checkpoints"


def scratch_dir(
    ctx: StepContext, component: Any, examples: Artifact, extra: str | None = None
) -> Path:
    """The stable checkpoint folder of this step: same params and inputs -> same folder.

    ``extra`` is what else the work depends on (a warm-start model's digest, say)."""
    inputs = {name: artifact.fingerprint for name, artifact in sorted(ctx.inputs.items())}
    payload = json.dumps(
        {
            "step": ctx.step.name,
            "params": plain(component),
            "examples": examples.fingerprint,
            "inputs": inputs,
            "extra": extra,
        },
        sort_keys=True,
        default=str,
    )
    digest = hashlib.sha256(payload.encode()).hexdigest()[:16]
    return ctx.run.path.parent / SCRATCH_DIR / f"{ctx.step.name}-{digest}"


def read_state(scratch: Path) -> dict[str, Any] | None:
    """The resume state saved in ``scratch`` (``state.json``); None when absent or unreadable."""
    try:
        return json.loads((scratch / STATE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def write_state(scratch: Path, state: dict[str, Any]) -> None:
    """Save the resume state (whole, then renamed over the last one)."""
    scratch.mkdir(parents=True, exist_ok=True)
    write_json_atomic(scratch / STATE_FILE, state)


@dataclass
class EpochCheckpoints:
    """A ``tf.train.Checkpoint`` of the training objects per completed epoch, beside the state.

    Build it with ``EpochCheckpoints.of(scratch, model=..., optimizer=...)`` once the objects
    exist (their variables built), ``resume`` before the first epoch, ``save`` after each."""

    scratch: Path
    checkpoint: Any
    manager: Any

    @classmethod
    def of(cls, scratch: Path, **objects: Any) -> EpochCheckpoints:
        """Checkpoints of ``objects`` (name -> trackable) in ``scratch/checkpoints``; two kept."""
        import tensorflow as tf

        checkpoint = tf.train.Checkpoint(**{k: _trackable(v) for k, v in objects.items()})
        directory = scratch / CHECKPOINTS_DIR
        manager = tf.train.CheckpointManager(checkpoint, str(directory), max_to_keep=2)
        return cls(scratch, checkpoint, manager)

    @staticmethod
    def completed(scratch: Path) -> int:
        """The epochs an interrupted fit in ``scratch`` completed (0: none, a new fit): what
        ``resume`` will continue after, known before the training objects exist."""
        state = read_state(scratch)
        if state is None:
            return 0
        epoch = int(state["epoch"])
        return epoch if (scratch / CHECKPOINTS_DIR / f"ckpt-{epoch}.index").exists() else 0

    def resume(self, fresh: dict[str, Any]) -> dict[str, Any]:
        """The saved state with its epoch's checkpoint restored, else ``fresh`` (a new fit).

        The state returned has ``resumed_from_epoch``: the epoch the fit continues after (0 for
        a new fit)."""
        state = read_state(self.scratch)
        if state is not None and self._saved(int(state["epoch"])):
            self._restore(int(state["epoch"]))
        else:
            state = fresh
        state["resumed_from_epoch"] = int(state["epoch"])
        return state

    def _saved(self, epoch: int) -> bool:
        return (self.scratch / CHECKPOINTS_DIR / f"ckpt-{epoch}.index").exists()

    def _restore(self, epoch: int) -> None:
        import tensorflow as tf

        try:
            prefix = self.scratch / CHECKPOINTS_DIR / f"ckpt-{epoch}"
            self.checkpoint.restore(str(prefix)).assert_existing_objects_matched()
        except (AssertionError, ValueError, tf.errors.OpError) as exc:
            raise PipelineError(
                f"cannot resume from {self.scratch}: {exc}; delete that folder to start over"
            ) from exc

    def save(self, state: dict[str, Any]) -> None:
        """Save the checkpoint of epoch ``state["epoch"]``, then the state that names it."""
        self.manager.save(checkpoint_number=state["epoch"])
        write_state(self.scratch, state)


def _trackable(obj: Any) -> Any:
    """What to checkpoint of ``obj``: a Keras model's every variable (TensorFlow tracks none of
    a Keras 3 model's own: a checkpoint of the model would miss the batch-norm statistics and
    the dropout layers' random-generator states), other trackables as they are."""
    import keras
    import tensorflow as tf

    if isinstance(obj, keras.Model):
        return tf.train.Checkpoint(**{f"v{i}": v.value for i, v in enumerate(obj.variables)})
    return obj
