"""How a step runs: a source or a stream through its engine, every other kind by its ``run``.

Sources and streams only read records; the engine their kind names (``engine``: the ingest
engine ``beamline.ingest_engine``, the streaming engine ``beamline.stream_engine``) runs them as
steps. Steps of the other kinds implement ``run(ctx)`` themselves, and so may a source that
writes its examples artifact itself (prepared data).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .components import Component, StepResult
    from .context import StepContext


def engine_of(component: Component) -> str | None:
    """The module that runs ``component`` as a step, or None when it runs itself."""
    if callable(getattr(component, "run", None)):
        return None
    return getattr(component, "engine", None)


def run_step(component: Component, ctx: StepContext) -> StepResult | None:
    """Run one step's component, writing its artifact under ``ctx.output_dir``."""
    engine = engine_of(component)
    if engine is None:
        return component.run(ctx)  # type: ignore[attr-defined, no-any-return]
    return importlib.import_module(engine).run(component, ctx)  # type: ignore[no-any-return]
