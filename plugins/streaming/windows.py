"""Alarms of a streaming ingest: TFDV anomalies of a window's statistics, as log lines.

Window names and the feature summaries of windows are the core's (``beamline.windows``).
"""

from __future__ import annotations

from typing import Any

from beamline.windows import window_name as window_name  # re-exported for tests and scripts

ALARMS_FILE = "alarms.jsonl"


def schema_alarms(stats: Any, schema: Any, window: str) -> list[dict[str, str]]:
    """The alarms of one window's statistics checked against ``schema`` (TFDV anomalies)."""
    from beamline_plugins.tfdv_tools import stats as S

    anomalies = S.validate(stats, S.without_comparators(schema))
    return [_alarm(p, window) for p in S.problems(anomalies, window, "schema")]


def drift_alarms(
    stats: Any, previous: Any, schema: Any, thresholds: dict[str, float], window: str
) -> list[dict[str, str]]:
    """Alarms where ``window`` drifted from the window before it beyond ``thresholds``."""
    from beamline_plugins.tfdv_tools import stats as S

    drift_schema = S.with_comparators(schema, "drift", thresholds, measure_all=False)
    anomalies = S.validate(stats, drift_schema, previous=previous)
    return [_alarm(p, window) for p in S.problems(anomalies, window, "drift")]


def _alarm(problem: Any, window: str) -> dict[str, str]:
    return {
        "window": window,
        "feature": problem.feature,
        "category": problem.category,
        "type": problem.type,
        "reason": problem.description,
    }


def alarm_line(alarm: dict[str, str], limit: int = 200) -> str:
    """``ALARM window-...: feature 'label': reason`` for logs."""
    reason = alarm["reason"]
    if len(reason) > limit:
        reason = reason[: limit - 1] + "…"
    return f"ALARM {alarm['window']}: feature '{alarm['feature']}' ({alarm['type']}): {reason}"
