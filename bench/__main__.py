"""Run every benchmark case side by side, print a table and write JSON.

python -m bench            # full sizes
python -m bench --smoke    # tiny sizes: what the test suite runs so benchmarks never rot
"""

from __future__ import annotations

import argparse
import json
import platform
from datetime import UTC, datetime
from pathlib import Path

from . import cli_start

CASES = {"cli_start": cli_start.run}


def main() -> None:
    """Parse arguments, run the chosen cases, print and save the results."""
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, for the test suite")
    parser.add_argument("--case", action="append", choices=sorted(CASES), help="only this case")
    parser.add_argument("--json", type=Path, default=Path("bench/results/latest.json"))
    args = parser.parse_args()
    rows = []
    for name in args.case or CASES:
        rows.extend(CASES[name](smoke=args.smoke))
    print(f"{'case':<12} {'variant':<22} {'wall s':>8} {'cpu s':>8} {'ratio':>7}  target")
    for r in rows:
        met = "" if r.get("met") is None else ("met" if r["met"] else "MISSED")
        print(
            f"{r['case']:<12} {r['variant']:<22} {r['wall_s']:>8.3f} {r['cpu_s']:>8.3f} "
            f"{r['ratio_to_bare_python']:>7.2f}  {r['target']} {met}"
        )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps(
            {
                "when": datetime.now(UTC).isoformat(timespec="seconds"),
                "machine": platform.platform(),
                "smoke": args.smoke,
                "rows": rows,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
