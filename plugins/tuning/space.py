"""A search space's dimensions as Optuna distributions, and trial values back as parameters.

Optuna's categorical choices must be plain scalars; a choice among lists (``model.filters:
{choice: [[16, 32], [32, 64]]}``) is offered as the JSON text of each option and decoded back.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from beamline.tuning import Dimension

_SCALARS = (type(None), bool, int, float, str)


def _as_json(dim: Dimension) -> bool:
    return any(not isinstance(choice, _SCALARS) for choice in dim.choices)


def distributions(dims: list[Dimension]) -> dict[str, Any]:
    """``{dotted key: optuna distribution}`` for ``study.ask``."""
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    out: dict[str, Any] = {}
    for dim in dims:
        if dim.kind == "choice":
            choices = [json.dumps(c) for c in dim.choices] if _as_json(dim) else dim.choices
            out[dim.key] = CategoricalDistribution(list(choices))
        elif dim.kind in ("uniform", "log_uniform"):
            out[dim.key] = FloatDistribution(dim.low, dim.high, log=dim.is_log)
        else:
            out[dim.key] = IntDistribution(int(dim.low), int(dim.high), log=dim.is_log)
    return out


def to_values(dims: list[Dimension], params: Mapping[str, Any]) -> dict[str, Any]:
    """A trial's Optuna params as the parameter values they stand for."""
    out = {}
    for dim in dims:
        raw = params[dim.key]
        out[dim.key] = json.loads(raw) if dim.kind == "choice" and _as_json(dim) else raw
    return out


def to_params(dims: list[Dimension], values: Mapping[str, Any]) -> dict[str, Any]:
    """Parameter values (a ``start_with`` entry) as Optuna params, for ``enqueue_trial``."""
    by_key = {d.key: d for d in dims}
    return {
        key: json.dumps(value) if _as_json(by_key[key]) else value for key, value in values.items()
    }
