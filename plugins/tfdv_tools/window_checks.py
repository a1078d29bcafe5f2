"""TFDV checks of a stream's windows: statistics per window, schema and drift alarms.

A library for the stream plugins (the folder watch, the broker streams): ``CheckedStream`` is a
``Stream`` base with the ``schema``, ``drift`` and ``fail_on_alarm`` parameters whose
``window_checks`` returns a ``TfdvWindowChecks``. The core's streaming engine calls it as each
window closes (``check_window``: ``statistics/<window>.pb``, alarms against a curated schema;
with ``live_drift``, drift against the window before it too) and once the stream ended
(``finish``: the schema inferred from the first window when none was curated, drift between
consecutive windows, ``alarms.jsonl``, ``schema.pbtxt``).

Drift compares a window with the one before it (TFDV's ``drift_comparator``): the L-infinity
distance of the value distributions for strings and categories (the label), the Jensen-Shannon
divergence of the histograms for numbers; a threshold per feature (``'*'``: all others).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from beamline import GateFailed, SpecError, StepContext, Stream, param
from beamline.atomic import atomic_write

LOG = logging.getLogger("beamline.streaming")
STATISTICS_DIR = "statistics"
SCHEMA_FILE = "schema.pbtxt"
ALARMS_FILE = "alarms.jsonl"


class CheckedStream(Stream):
    """A stream with TFDV statistics and alarms per window (a base class, not registered)."""

    schema: str = param(
        "",
        help="schema (TFDV text proto) the windows are checked against, relative to the "
        "pipeline file; default <pipeline file>.schema.pbtxt when it exists, else one inferred "
        "from the first window",
        path="file",
    )
    drift: dict[str, float] = param(
        {},
        help="alarm when a window drifts from the window before it: threshold per feature "
        "('*': all others); L-infinity for strings/categories, Jensen-Shannon for numbers",
    )
    fail_on_alarm: bool = param(False, help="fail the step (exit code 3) when a window alarms")
    statistics: bool = param(
        True, help="TFDV statistics, schema and drift alarms per window (false: none)"
    )
    #: Drift is computed as each window closes (a long-lived stream), not only at its end.
    live_drift = False

    def window_checks(self, ctx: StepContext) -> Any:
        """TFDV statistics per window, checked against the schema (None with ``statistics``
        off)."""
        from beamline.ingest_result import declared_features

        if not self.statistics:
            return None

        info = declared_features(self, ctx)
        schema_file = self.schema_file(ctx)
        if schema_file is not None:
            ctx.log(f"windows are checked against {schema_file}")
        checks = tfdv_checks(
            info["features"], info["label"], schema_file, self.drift, self.fail_on_alarm
        )
        checks.live_drift = self.live_drift
        return checks

    def schema_file(self, ctx: StepContext) -> Path | None:
        """The curated schema: ``schema``, else ``<pipeline file>.schema.pbtxt`` if present."""
        if self.schema:
            path = ctx.resolve(self.schema)
            if not path.is_file():
                raise SpecError(f"{self.name}: schema file not found: {path}")
            return path
        default = ctx.spec.path.with_suffix(".schema.pbtxt")
        return default if default.is_file() else None


@dataclass
class TfdvWindowChecks:
    """Per-window TFDV statistics checked against a schema; alarms (see the module docstring).

    ``stats_schema`` and ``check_schema`` are text protos (picklable): the schema statistics
    are computed with, and the curated one windows are checked against ('' = none)."""

    stats_schema: str
    check_schema: str = ""
    schema_file: Path | None = None
    features: dict[str, Any] = field(default_factory=dict)
    drift: dict[str, float] = field(default_factory=dict)
    fail_on_alarm: bool = False
    live_drift: bool = False

    def check_window(self, name: str, examples: list[bytes], out: str) -> list[dict[str, Any]]:
        """Write the window's statistics; alarms against the curated schema and, with
        ``live_drift``, against the window before it (logged live)."""
        from beamline_plugins.tfdv_tools import stats as S

        folder = Path(out) / STATISTICS_DIR
        before = sorted(p for p in folder.glob("*.pb") if p.stem < name)
        stats = S.statistics_in_memory(examples, _schema(self.stats_schema))
        S.write_statistics(stats, folder / f"{name}.pb")
        curated = _schema(self.check_schema)
        alarms = schema_alarms(stats, curated, name) if curated is not None else []
        if self.live_drift and self.drift and before:
            previous = S.load_statistics(before[-1])
            schema = curated or S.infer_schema(previous, {"features": self.features})
            alarms += _drift(stats, previous, schema, self.drift, name)
        for alarm in alarms:  # live: the window just closed
            LOG.warning("%s", alarm_line(alarm))
        return alarms

    def finish(
        self, ctx: StepContext, names: list[str], out: Path, alarms: list[dict[str, Any]]
    ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """Schema and drift alarms across windows; ``alarms.jsonl`` and ``schema.pbtxt``."""
        from beamline_plugins.tfdv_tools import stats as S

        stats = {n: S.load_statistics(out / STATISTICS_DIR / f"{n}.pb") for n in names}
        alarms = list(alarms)
        schema, note = _schema(self.check_schema), f"curated file {self.schema_file}"
        if schema is None and names:
            schema = S.infer_schema(stats[names[0]], {"features": self.features})
            note = f"inferred from the first window {names[0]}"
            for n in names[1:]:
                alarms += schema_alarms(stats[n], schema, n)
        if schema is not None:
            S.write_schema(schema, out / SCHEMA_FILE)
            if self.drift and not self.live_drift:
                for before, n in zip(names, names[1:], strict=False):
                    alarms += _drift(stats[n], stats[before], schema, self.drift, n)
        alarms.sort(key=lambda a: (a["window"], a["category"], a["feature"], a["type"]))
        lines = [json.dumps(a, sort_keys=True, ensure_ascii=False) + "\n" for a in alarms]
        atomic_write(out / ALARMS_FILE, "".join(lines))
        for alarm in alarms:
            ctx.log(alarm_line(alarm))
            ctx.logger.warning("%s: %s", ctx.step.name, alarm_line(alarm))
        return alarms, {"schema": note if names else None}

    def gate(self, alarms: list[dict[str, Any]], out: Path) -> None:
        """Fail the step (exit code 3) on alarms when ``fail_on_alarm`` is set."""
        if not (alarms and self.fail_on_alarm):
            return
        lines = "\n".join(f"  - {alarm_line(a)}" for a in alarms[:20])
        more = f"\n  ... and {len(alarms) - 20} more" if len(alarms) > 20 else ""
        raise GateFailed(
            f"{len(alarms)} alarm(s) in the stream (fail_on_alarm is set):\n{lines}{more}\n"
            f"  alarms: {out / ALARMS_FILE}"
        )


def tfdv_checks(
    features: dict[str, Any],
    label: str | None,
    schema_file: Path | None,
    drift: dict[str, float],
    fail_on_alarm: bool,
) -> TfdvWindowChecks:
    """The checks of a stream whose declared ``features``/``label`` are known, with an optional
    curated ``schema_file`` (TFDV text proto)."""
    from beamline_plugins.tfdv_tools import stats as S

    curated = None
    if schema_file is not None:
        try:
            curated = S.load_schema(schema_file)
        except ValueError as exc:
            raise SpecError(str(exc)) from None
    spec_like = {"features": features, "label": label, "classes": None}
    stats_schema = curated if curated is not None else S.seed_schema(spec_like)
    return TfdvWindowChecks(
        stats_schema=_text(stats_schema),
        check_schema=_text(curated),
        schema_file=schema_file,
        features=features,
        drift=dict(drift),
        fail_on_alarm=fail_on_alarm,
    )


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


def _drift(stats: Any, previous: Any, schema: Any, thresholds: dict[str, float], window: str):
    try:
        return drift_alarms(stats, previous, schema, thresholds, window)
    except KeyError as exc:
        raise SpecError(f"drift: {exc.args[0]}") from None


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


def _schema(text: str) -> Any:
    if not text:
        return None
    from google.protobuf import text_format
    from tensorflow_metadata.proto.v0 import schema_pb2

    return text_format.Parse(text, schema_pb2.Schema())


def _text(schema: Any) -> str:
    if schema is None:
        return ""
    from google.protobuf import text_format

    return text_format.MessageToString(schema)
