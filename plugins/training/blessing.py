"""The blessing an evaluator step writes and an exporter step checks (``blessing.json``).

``write_blessing`` writes ``{"blessed", "reasons", "thresholds"}`` and logs the verdict;
``require_blessing`` stops an export the named evaluator step did not bless.
"""

from __future__ import annotations

import json
from typing import Any

from beamline import StepContext
from beamline.artifacts import write_json_atomic
from beamline.errors import GateFailed

BLESSING_FILE = "blessing.json"


def write_blessing(ctx: StepContext, reasons: list[str], thresholds: dict[str, Any]) -> str:
    """Write ``blessing.json`` (blessed when ``reasons``, the failed gates, is empty) to the
    step's output and log the verdict; return it (``blessed`` or ``not blessed: REASONS``)."""
    blessing = {"blessed": not reasons, "reasons": reasons, "thresholds": thresholds}
    write_json_atomic(ctx.output_dir / BLESSING_FILE, blessing)
    verdict = "blessed" if not reasons else "not blessed: " + "; ".join(reasons)
    ctx.log(verdict)
    return verdict


def require_blessing(ctx: StepContext, blessing: str | None) -> None:
    """Raise ``GateFailed`` (with the evaluator's reasons) unless the step ``blessing`` wrote
    ``blessing.json`` with ``blessed: true``; no check when ``blessing`` is empty.

    The step's input must be named ``blessing``."""
    if not blessing:
        return
    verdict = json.loads(ctx.input("blessing").file(BLESSING_FILE).read_text())
    if not verdict.get("blessed"):
        raise GateFailed(
            f"step '{blessing}' did not bless the model: " + "; ".join(verdict.get("reasons", []))
        )
