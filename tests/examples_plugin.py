"""A test plugin: ``prepared_examples``, a source step that copies a prepared examples artifact.

Pipeline files in the tests load it through ``plugins: [examples_plugin]`` to put trainers,
validators or exporters behind examples written directly (``keras_support.write_examples``,
``validation_support.write_examples``) instead of behind a Beam ingest.
"""

from __future__ import annotations

import json
import shutil
from typing import Any

from beamline import Source, StepContext, StepResult, hookimpl, param
from beamline.examples import FEATURES_FILE
from beamline.fingerprint import files_digest


class PreparedExamples(Source):
    """Copies a prepared examples folder into this step's artifact (tests only)."""

    name = "prepared_examples"

    folder: str = param(help="an examples artifact folder to copy")

    def data_fingerprint(self, ctx: StepContext) -> str | None:
        """The folder's files, so that new data reruns the step."""
        root = ctx.resolve(self.folder)
        return files_digest([p for p in root.rglob("*") if p.is_file()], root)

    def run(self, ctx: StepContext) -> StepResult | None:
        """Copy the folder; report how many examples it holds."""
        root = ctx.resolve(self.folder)
        shutil.copytree(root, ctx.output_dir, dirs_exist_ok=True)
        splits = json.loads((root / FEATURES_FILE).read_text(encoding="utf-8"))["splits"]
        total = sum(splits.values())
        return StepResult(counts={"read": total, "written": total, "rejected": 0})


@hookimpl
def register_sources(register: Any) -> None:
    """Register the test source."""
    register(PreparedExamples)
