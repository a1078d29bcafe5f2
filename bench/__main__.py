"""Run every benchmark case side by side, print a table and write JSON.

python -m bench                  # full sizes (about 30 minutes on 2 cores, TFX case included)
python -m bench --smoke          # tiny sizes: what the test suite runs so benchmarks never rot
python -m bench --case ingest    # one case (repeatable)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import (
    broker,
    cli_start,
    common,
    freshness,
    ingest,
    input_pipeline,
    libraries,
    scale,
    serving,
    taxi_scale,
    tfx_compare,
    tfx_taxi,
    validation,
)

CASES: dict[str, Callable[..., list[dict[str, Any]]]] = {
    "cli_start": cli_start.run,
    "ingest": ingest.run,
    "validation": validation.run,
    "input": input_pipeline.run,
    "scale": scale.run,
    "tfx": tfx_compare.run,
    "taxi": tfx_taxi.run,
    "taxi_scale": taxi_scale.run,
    "libraries": libraries.run,
    "serving": serving.run,
    "broker": broker.run,
    "freshness": freshness.run,
}


def _ratio(value: Any) -> str:
    return "" if value is None else f"{value:.2f}"


def table(rows: list[dict[str, Any]]) -> str:
    """The rows as a Markdown table."""
    lines = [
        "| case | variant | wall s | cpu s | ratio | peak MiB | target | status |",
        "| --- | --- | ---: | ---: | ---: | ---: | --- | --- |",
    ]
    for r in rows:
        met = "" if r.get("met") is None else ("met" if r["met"] else "MISSED")
        peak = r.get("peak_rss_mib")
        lines.append(
            f"| {r['case']} | {r['variant']} | {r['wall_s']:.3f} | {r['cpu_s']:.3f} | "
            f"{_ratio(r.get('ratio'))} | {'' if peak is None else f'{peak:.0f}'} | "
            f"{r.get('target', '')} | {met} |"
        )
    return "\n".join(lines)


def main() -> None:
    """Parse arguments, run the chosen cases, print and save the results."""
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, for the test suite")
    parser.add_argument("--case", action="append", choices=sorted(CASES), help="only this case")
    parser.add_argument("--json", type=Path, default=Path("bench/results/latest.json"))
    args = parser.parse_args()
    common.IN_PROCESS = args.smoke
    rows: list[dict[str, Any]] = []
    seconds: dict[str, float] = {}
    for name in args.case or CASES:
        started = time.perf_counter()
        found = CASES[name](smoke=args.smoke)
        if args.smoke:  # tiny sizes prove that the code runs; they say nothing of the targets
            for r in found:
                r["met"] = None
        rows.extend(found)
        seconds[name] = round(time.perf_counter() - started, 1)
        print(f"# case {name}: {seconds[name]} s", flush=True)
    print(table(rows))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps(
            {
                "when": datetime.now(UTC).isoformat(timespec="seconds"),
                "machine": f"{platform.platform()}, {os.cpu_count()} cores",
                "smoke": args.smoke,
                "case_seconds": seconds,
                "rows": rows,
            },
            indent=2,
            default=str,
        )
    )


if __name__ == "__main__":
    main()
