"""TFDV checks of a stream's windows: statistics per window, schema and drift alarms.

``TfdvWindowChecks`` is what ``watch_folder`` and ``replay_stream`` return from
``window_checks``; the core's streaming engine calls it as each window closes
(``check_window``: ``statistics/<window>.pb``, alarms against a curated schema) and once the
stream ended (``finish``: the schema inferred from the first window when none was curated,
drift between consecutive windows, ``alarms.jsonl``, ``schema.pbtxt``). A stream from a broker
can return one too.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from beamline import GateFailed, SpecError, StepContext
from beamline.atomic import atomic_write

from . import windows as W

LOG = logging.getLogger("beamline.streaming")
STATISTICS_DIR = "statistics"
SCHEMA_FILE = "schema.pbtxt"


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

    def check_window(self, name: str, examples: list[bytes], out: str) -> list[dict[str, Any]]:
        """Write the window's statistics; alarms against the curated schema (logged live)."""
        from beamline_plugins.tfdv_tools import stats as S

        stats = S.statistics_in_memory(examples, _schema(self.stats_schema))
        S.write_statistics(stats, Path(out) / STATISTICS_DIR / f"{name}.pb")
        alarms = (
            W.schema_alarms(stats, _schema(self.check_schema), name) if self.check_schema else []
        )
        for alarm in alarms:  # live: the window just closed
            LOG.warning("%s", W.alarm_line(alarm))
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
                alarms += W.schema_alarms(stats[n], schema, n)
        if schema is not None:
            S.write_schema(schema, out / SCHEMA_FILE)
            if self.drift:
                try:
                    for before, n in zip(names, names[1:], strict=False):
                        alarms += W.drift_alarms(stats[n], stats[before], schema, self.drift, n)
                except KeyError as exc:
                    raise SpecError(f"drift: {exc.args[0]}") from None
        alarms.sort(key=lambda a: (a["window"], a["category"], a["feature"], a["type"]))
        lines = [json.dumps(a, sort_keys=True, ensure_ascii=False) + "\n" for a in alarms]
        atomic_write(out / W.ALARMS_FILE, "".join(lines))
        for alarm in alarms:
            ctx.log(W.alarm_line(alarm))
            ctx.logger.warning("%s: %s", ctx.step.name, W.alarm_line(alarm))
        return alarms, {"schema": note if names else None}

    def gate(self, alarms: list[dict[str, Any]], out: Path) -> None:
        """Fail the step (exit code 3) on alarms when ``fail_on_alarm`` is set."""
        if not (alarms and self.fail_on_alarm):
            return
        lines = "\n".join(f"  - {W.alarm_line(a)}" for a in alarms[:20])
        more = f"\n  ... and {len(alarms) - 20} more" if len(alarms) > 20 else ""
        raise GateFailed(
            f"{len(alarms)} alarm(s) in the stream (fail_on_alarm is set):\n{lines}{more}\n"
            f"  alarms: {out / W.ALARMS_FILE}"
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
