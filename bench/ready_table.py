"""The README's "Ready pipelines" table, made from runs: every ready pipeline over N seeds.

    .venv/bin/python -m bench.ready_table --seeds 5                  # run all, then write README
    .venv/bin/python -m bench.ready_table --seeds 2 --pipeline digits --pipeline diabetes
    .venv/bin/python -m bench.ready_table --seed 3 --seed 4 --pipeline g2p --dry-run   # two more
    .venv/bin/python -m bench.ready_table --read                     # only read the runs there

Each (pipeline, seed) runs as a user would (``python -m beamline run FILE``, its own process) with
``--set steps.<step>.seed=<seed>`` for every step that has a ``seed`` parameter, into
``bench/results/ready-runs/`` (git-ignored; seeds after the first reuse the ingest). A row then
reads the latest run of each seed: the metrics its last evaluator step's thresholds name (and
accuracy, or a language model's perplexity and its unigram baseline's) as mean ± sample
standard deviation over the seeds with their range (one value when every seed has it), how
many seeds passed their gates, the target (the thresholds), and the wall time of the seeds' full
runs (the median of the sums of the steps' seconds, a reused step counted at the seconds of the
run that made it, followed through reuses of reuses).

"Passed" judges each seed by its own thresholds alone, as a user's first run in a clean runs
folder would: the seeds share one runs folder (to reuse the ingest), where an evaluator's
``compare_to_last_blessed`` would refuse a seed whose model is worse than an earlier seed's. So
the runs go with ``compare_to_last_blessed=false`` for every step that has it, and when reading
runs made without it, a refusal whose only reasons are that comparison counts as passed.

The rows replace those of the same pipelines between ``<!-- ready-table:start -->`` and
``<!-- ready-table:end -->`` in README.md; rows of other pipelines stay as they are. Files that
declare ``# ready-test: skip`` are left out, except a long-lived loop (a ``continuous:`` section),
whose seeds ``bench/continuous_seeds.py`` runs and reads (two cycles each).
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from . import continuous_seeds

ROOT = Path(__file__).resolve().parent.parent
PIPELINES = ROOT / "pipelines"
RUNS = ROOT / "bench" / "results" / "ready-runs"
README = ROOT / "README.md"
START, END = "<!-- ready-table:start -->", "<!-- ready-table:end -->"
HEADER = (
    "| pipeline | task | model | measured on test | target | wall time |\n"
    "| --- | --- | --- | --- | --- | --- |"
)
SKIP = re.compile(r"^#\s*ready-test:\s*skip", re.MULTILINE)
LOOP = re.compile(r"^continuous:", re.MULTILINE)
COMPARE = "compare_to_last_blessed"
HEADLINE = ("accuracy", "perplexity", "unigram_perplexity")
UPPER_BOUNDS = (
    "perplexity",
    "cross_entropy",
    "bits_per_token",
    "mae",
    "mase",
    "rmse",
    "wer",
    "cer",
    "token_error",
    "sequence_error",
    "greedy_token_error",
    "greedy_sequence_error",
)


def ready_files(loops: bool = False) -> dict[str, Path]:
    """Pipeline name -> file of every pipeline not declared skipped (with ``loops``: and of every
    continuous loop, skipped or not)."""
    found = {}
    for file in sorted(PIPELINES.glob("*.yaml")):
        text = file.read_text(encoding="utf-8")
        if not SKIP.search(text) or (loops and LOOP.search(text)):
            found[file.stem] = file
    return found


def steps_with(file: Path, parameter: str) -> list[str]:
    """The steps of ``file`` whose component has the parameter ``parameter``."""
    import dataclasses

    import beamline

    spec, _ = beamline.load(file)
    return [
        s.name
        for s in spec.steps
        if any(f.name == parameter for f in dataclasses.fields(s.component))
    ]


def seeded_steps(file: Path) -> list[str]:
    """The steps of ``file`` whose component has a ``seed`` parameter."""
    return steps_with(file, "seed")


def seed_overrides(file: Path, seed: int) -> list[str]:
    """The ``--set`` arguments of one seed's run: every ``seed`` parameter set to ``seed``, and
    every ``compare_to_last_blessed`` off (each seed judged by its own gates, see above)."""
    sets = [f"steps.{step}.seed={seed}" for step in seeded_steps(file)]
    sets += [f"steps.{s}.compare_to_last_blessed=false" for s in steps_with(file, COMPARE)]
    return [arg for item in sets for arg in ("--set", item)]


def run_seed(file: Path, seed: int, runs: Path, timeout: int) -> tuple[int, float]:
    """Run ``file`` for one seed (``seed_overrides``); (exit code, wall seconds)."""
    sets = seed_overrides(file, seed)
    command = [sys.executable, "-m", "beamline", "run", str(file), "--runs-dir", str(runs)]
    began = time.monotonic()
    done = subprocess.run([*command, *sets], capture_output=True, text=True, timeout=timeout)
    if done.returncode not in (0, 3):  # 3: a gate refused (still a measurement)
        print(done.stdout[-2000:], done.stderr[-2000:], file=sys.stderr)
    return done.returncode, time.monotonic() - began


def latest_by_seed(name: str, runs: Path) -> dict[int, dict[str, Any]]:
    """The latest run of each seed of pipeline ``name`` that got as far as its evaluation."""
    found: dict[int, dict[str, Any]] = {}
    for run_json in sorted((runs / name).glob("*/run.json")):
        run = json.loads(run_json.read_text(encoding="utf-8"))
        steps = {r["step"]: r for r in run.get("records", [])}
        if not steps:  # a run whose export a gate refused has no records: read its step folders
            steps = {
                s: {"seconds": _meta(run_json.parent / s).get("seconds"), "status": "ran"}
                for s in run.get("steps", [])
                if (run_json.parent / s / "meta.json").is_file()
            }
        seeds = [
            _params(run_json.parent / step).get("seed")
            for step in steps
            if "seed" in _params(run_json.parent / step)
        ]
        evaluation = _last_evaluation(run_json.parent, list(steps))
        if not seeds or evaluation is None:
            continue
        run["evaluation"] = evaluation
        run["steps"] = steps
        run["dir"] = run_json.parent
        found[int(seeds[0])] = run
    return found


def _meta(step_dir: Path) -> dict[str, Any]:
    try:
        return json.loads((step_dir / "meta.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _params(step_dir: Path) -> dict[str, Any]:
    return _meta(step_dir).get("params") or {}


def _last_evaluation(run_dir: Path, steps: list[str]) -> dict[str, Any] | None:
    """The meta.json of the run's last step that wrote ``blessing.json`` (an evaluator)."""
    for step in reversed(steps):
        if (run_dir / step / "blessing.json").is_file():
            meta = json.loads((run_dir / step / "meta.json").read_text(encoding="utf-8"))
            blessing = json.loads((run_dir / step / "blessing.json").read_text(encoding="utf-8"))
            full = run_dir / step / "metrics.json"  # nested ones too (per_class.spam.f1)
            metrics = json.loads(full.read_text(encoding="utf-8")) if full.is_file() else {}
            return {"meta": meta, "blessing": blessing, "metrics": metrics}
    return None


def row(name: str, file: Path, runs: dict[int, dict[str, Any]]) -> str:
    """One README table row from the runs of each seed."""
    import beamline

    spec, _ = beamline.load(file)
    first = runs[min(runs)]
    meta = first["evaluation"]["meta"]
    gates = file_thresholds(spec, meta["step"])
    thresholds = dict(meta["params"].get("thresholds") or gates)
    names = list(thresholds) or ["accuracy"]
    for headline in reversed(HEADLINE):  # the metric a reader looks for first, gated or not
        if headline in meta.get("metrics", {}) and headline not in names:
            names.insert(0, headline)
    parts = []
    for metric in names:
        values = [_metric(r["evaluation"], metric) for r in runs.values()]
        values = [float(v) for v in values if v is not None]
        if values:
            parts.append(_spread(metric, values))
    passed = sum(_passed(r["evaluation"], gates) for r in runs.values())
    count = meta.get("metrics", {}).get("count")
    measured = "; ".join(parts) + f" over seeds {_seed_list(runs)} ({passed}/{len(runs)} passed"
    measured += f", {int(count)} test examples)" if count else ")"
    target = ", ".join(f"{_bound(k)} {v:g}" for k, v in thresholds.items()) or "-"
    task = (spec.description or "").split("(")[0].split(".")[0].strip() or "-"
    models = [
        str(s.component.model.name)
        for s in spec.steps
        if hasattr(s.component, "model") and hasattr(s.component.model, "build")
    ]
    wall = statistics.median(_full_seconds(r) for r in runs.values())
    return (
        f"| `{name}` | {task} | {', '.join(models) or '-'} | {measured} | {target} | {wall:.0f} s |"
    )


def file_thresholds(spec: Any, step: str) -> dict[str, float]:
    """The thresholds step ``step`` of the pipeline file declares now."""
    found = [s for s in spec.steps if s.name == step]
    return dict(getattr(found[0].component, "thresholds", None) or {}) if found else {}


def _passed(evaluation: dict[str, Any], gates: dict[str, float]) -> bool:
    """``passed_own_gates``; a seed whose evaluator ran with no thresholds at all (gate off, as
    in a run made to measure) is judged by its metrics against the file's thresholds."""
    if evaluation["meta"]["params"].get("thresholds") or not gates:
        return passed_own_gates(evaluation["blessing"])
    for metric, bound in gates.items():
        value = _metric(evaluation, metric)
        upper = _bound(metric).endswith("<=")
        if value is None or (value > bound if upper else value < bound):
            return False
    return True


def passed_own_gates(blessing: dict[str, Any]) -> bool:
    """Whether a run passed its own gates: blessed, or refused only by the comparison with an
    earlier run's blessed model (which a first run in a clean runs folder does not make)."""
    if blessing.get("blessed"):
        return True
    reasons = [str(r) for r in blessing.get("reasons", [])]
    return bool(reasons) and all("the last blessed model" in r for r in reasons)


def _metric(evaluation: dict[str, Any], name: str) -> Any:
    """``name`` from the evaluator's metrics, a dotted name looked up in metrics.json too."""
    found = evaluation["meta"]["metrics"].get(name)
    if found is None:
        found = evaluation.get("metrics", {})
        for part in name.split("."):
            found = found.get(part) if isinstance(found, dict) else None
    return found if isinstance(found, int | float) else None


def _spread(metric: str, values: list[float]) -> str:
    mean = statistics.fmean(values)
    if len(values) == 1 or min(values) == max(values):
        return f"{metric} {mean:.3f}"
    sd = statistics.stdev(values)
    digits = 3 if sd >= 0.0005 else 4  # a spread that rounds to 0.000 reads as none
    low, high = min(values), max(values)
    return f"{metric} {mean:.{digits}f} ± {sd:.{digits}f} ({low:.{digits}f}-{high:.{digits}f})"


def _bound(metric: str) -> str:
    leaf = metric.rsplit(".", 1)[-1]
    upper = leaf.startswith(UPPER_BOUNDS) or metric.startswith("slice_gap.")  # a gap is a ceiling
    return f"{metric} <=" if upper else f"{metric} >="


def _seed_list(runs: dict[int, Any]) -> str:
    seeds = sorted(runs)
    if seeds == list(range(seeds[0], seeds[-1] + 1)) and len(seeds) > 2:
        return f"{seeds[0]}-{seeds[-1]}"
    return ", ".join(map(str, seeds))


def _full_seconds(run: dict[str, Any]) -> float:
    """The seconds of a full run: every step's, a reused step at the seconds of the run that
    made it (``original_seconds`` of a reuse of a reuse is that of a link: follow the chain)."""
    return sum(_made_in_seconds(run["dir"] / step) for step in run["steps"])


def _made_in_seconds(step_dir: Path) -> float:
    """The seconds of the step run whose artifact ``step_dir`` holds (reuses followed)."""
    meta = _meta(step_dir)
    for _ in range(1000):  # reused_from is relative to the pipeline's runs folder
        source = meta.get("reused_from")
        if not source:
            break
        found = _meta(step_dir.parent.parent / source)
        if not found:
            return float(meta.get("original_seconds") or 0.0)
        meta = found
    return float(meta.get("seconds") or 0.0)


def write_readme(rows: dict[str, str], readme: Path = README) -> None:
    """Replace the rows of ``rows``' pipelines between the markers (others kept, order kept,
    new pipelines appended)."""
    text = readme.read_text(encoding="utf-8")
    if START not in text or END not in text:
        raise SystemExit(f"{readme}: no {START} ... {END} markers around the table")
    head, rest = text.split(START, 1)
    table, tail = rest.split(END, 1)
    kept: list[str] = []
    seen = set()
    for line in table.strip().splitlines():
        match = re.match(r"\|\s*`([^`]+)`", line)
        if match and match.group(1) in rows:
            kept.append(rows[match.group(1)])
            seen.add(match.group(1))
        elif match:
            kept.append(line)
    kept += [line for name, line in rows.items() if name not in seen]
    body = "\n".join([HEADER, *kept])
    readme.write_text(f"{head}{START}\n{body}\n{END}{tail}", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    """Run (or read) the seeds of the ready pipelines and write their README rows."""
    parser = argparse.ArgumentParser(prog="python -m bench.ready_table", description=__doc__)
    parser.add_argument("--seeds", type=int, default=5, help="seeds 0..N-1 per pipeline")
    parser.add_argument(
        "--seed", type=int, action="append", help="run only this seed (repeatable; not with --read)"
    )
    parser.add_argument("--pipeline", action="append", help="only this pipeline (repeatable)")
    parser.add_argument("--runs-dir", type=Path, default=RUNS, help="where the runs go")
    parser.add_argument("--read", action="store_true", help="run nothing: read the runs there")
    parser.add_argument("--readme", type=Path, default=README, help="the file to write")
    parser.add_argument("--dry-run", action="store_true", help="print the rows, write nothing")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds per run")
    args = parser.parse_args(argv)
    files = ready_files(loops=True)
    names = args.pipeline or list(files)
    unknown = [n for n in names if n not in files]
    if unknown:
        raise SystemExit(f"not a ready pipeline: {', '.join(unknown)} (have {', '.join(files)})")
    rows = {}
    chosen = args.seed or list(range(args.seeds))
    for name in names:
        loop = bool(LOOP.search(files[name].read_text(encoding="utf-8")))
        if not args.read:
            for seed in chosen:
                run = continuous_seeds.run_seed if loop else run_seed
                code, seconds = run(files[name], seed, args.runs_dir, args.timeout)
                print(f"{name} seed {seed}: exit {code} in {seconds:.0f} s", flush=True)
        if loop:
            runs = continuous_seeds.read_seeds(name, args.runs_dir)
        else:
            runs = latest_by_seed(name, args.runs_dir)
        if not args.read:
            runs = {s: r for s, r in runs.items() if s < args.seeds or s in chosen}
        if not runs:
            print(f"{name}: no evaluated run in {args.runs_dir}", file=sys.stderr)
            continue
        rows[name] = (continuous_seeds.row if loop else row)(name, files[name], runs)
        print(rows[name], flush=True)
    if rows and not args.dry_run:
        write_readme(rows, args.readme)
    return 0


if __name__ == "__main__":
    sys.exit(main())
