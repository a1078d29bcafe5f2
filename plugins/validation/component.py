"""The ``tfdv`` validator step: statistics per split, a curated schema, skew, drift and a gate."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

from beamline import (
    Examples,
    GateFailed,
    Input,
    ParamError,
    PipelineError,
    SpecError,
    StepContext,
    StepResult,
    Validator,
    param,
)
from beamline.examples import example_files, feature_spec

STATISTICS_DIR = "statistics"
ANOMALIES_DIR = "anomalies"
SCHEMA_FILE = "schema.pbtxt"
RESULT_FILE = "validation.json"
REPORT_DIR = "report"


class Tfdv(Validator):
    """Validate examples with TFDV: statistics per split, schema, skew, drift; gate the run.

    Statistics of every split are written to ``statistics/<split>.pb``. The schema is a curated
    text-proto file beside the pipeline file (``<pipeline file>.schema.pbtxt`` unless ``schema``
    names another): on the first run it is inferred from the baseline split and saved there for
    you to review and commit; later runs validate against it. Skew compares the baseline split
    (train) with ``skew_split`` (eval); drift compares each split with the same split of the
    previous run. Distances are L-infinity for strings and categories, Jensen-Shannon divergence
    for numbers; image features are checked for presence and byte sizes only. Anomalies go to
    ``anomalies/<split>.pbtxt``; those matching ``fail_on`` stop the run (exit code 3)."""

    name = "tfdv"

    examples: Input[Examples] = param(help="the ingest step whose examples are validated")
    schema: str = param(
        "",
        help="curated schema file (text proto), relative to the pipeline file; default "
        "<pipeline file name>.schema.pbtxt beside it; inferred and saved when missing",
    )
    require_schema: bool = param(
        False, help="fail when the schema file is missing instead of inferring and saving it"
    )
    in_memory_max_examples: int = param(
        20000,
        help="splits with at most this many examples use TFDV's fast in-memory path; larger "
        "splits use its Beam GenerateStatistics on the pipeline's runner",
        ge=0,
    )
    streamed: bool = param(
        True,
        help="on the direct runner, compute the larger splits in this process a batch at a "
        "time with TFDV's in-memory generators (bounded memory, no Beam pipeline); false: "
        "Beam GenerateStatistics",
    )
    fail_on: str | list[str] = param(
        "all",
        help="anomalies that stop the run: all, none, or a list of classes (schema, skew, "
        "drift) and TFDV anomaly types (e.g. ENUM_TYPE_UNEXPECTED_STRING_VALUES)",
    )
    skew: dict[str, float] = param(
        {},
        help="skew thresholds between the baseline and skew splits per feature ('*': all "
        "others); L-infinity for strings/categories, Jensen-Shannon for numbers",
    )
    drift: dict[str, float] = param(
        {}, help="drift thresholds against the previous run's statistics, per feature like skew"
    )
    baseline_split: str = param("train", help="the split the schema is inferred from")
    skew_split: str = param("eval", help="the split compared with the baseline split for skew")
    plots: bool = param(True, help="draw an SVG plot per feature into report/")

    def check(self) -> None:
        """Check ``fail_on`` and thresholds when the pipeline file is read, not mid-run."""
        from beamline_plugins.tfdv_tools.stats import check_fail_on

        problem = check_fail_on(self.fail_list)
        if problem:
            raise ParamError("fail_on", problem)
        for kind, thresholds in (("skew", self.skew), ("drift", self.drift)):
            for feature, value in thresholds.items():
                if not 0.0 <= value <= 1.0:
                    raise ParamError(
                        f"{kind}.{feature}",
                        f"threshold {value} is outside 0..1 (L-infinity and Jensen-Shannon "
                        "distances lie in 0..1)",
                    )

    @property
    def fail_list(self) -> list[str]:
        """``fail_on`` as a list (a single word becomes a one-item list)."""
        return [self.fail_on] if isinstance(self.fail_on, str) else list(self.fail_on)

    def schema_path(self, ctx: StepContext) -> Path:
        """Where the curated schema file lives."""
        if self.schema:
            return ctx.resolve(self.schema)
        return ctx.spec.path.with_suffix(".schema.pbtxt")

    def data_fingerprint(self, ctx: StepContext) -> str | None:
        """The curated schema file's content: editing it reruns the validation."""
        path = self.schema_path(ctx)
        if not path.is_file():
            return "no-schema"
        return hashlib.sha256(path.read_bytes()).hexdigest()

    def run(self, ctx: StepContext) -> StepResult:
        """Compute statistics, infer or load the schema, check it, write the report, gate."""
        from beamline_plugins.tfdv_tools import stats as S

        artifact = ctx.input("examples")
        spec = feature_spec(artifact)
        names = list(spec.get("splits", {}))  # what beamline.examples.splits reads, read once
        if not names:
            raise PipelineError(f"{artifact.path}: the examples artifact has no splits")
        schema_file = self.schema_path(ctx)
        curated = None
        if schema_file.is_file():
            try:
                curated = S.load_schema(schema_file)
            except ValueError as exc:
                raise SpecError(str(exc)) from None
        elif self.require_schema:
            raise SpecError(
                f"{schema_file}: schema file not found (require_schema is set; run once without "
                f"it to infer one, review it and commit it)"
            )

        stats_schema = curated if curated is not None else S.seed_schema(spec)
        statistics, paths = self._statistics(ctx, artifact, names, spec, stats_schema)

        baseline = self.baseline_split if self.baseline_split in names else names[0]
        if curated is None:
            schema = S.infer_schema(statistics[baseline], spec)
            S.write_schema(schema, schema_file)
            ctx.log(f"schema inferred from split '{baseline}' and saved to {schema_file}")
            schema_source = f"inferred from split '{baseline}', saved to {schema_file}"
        else:
            schema = curated
            schema_source = f"curated file {schema_file}"

        try:
            found, measured, anomalies, used = self._validate(ctx, schema, statistics, baseline)
        except KeyError as exc:
            raise SpecError(f"component 'tfdv': {exc.args[0]}") from None
        for split, proto in anomalies.items():
            S.write_anomalies(proto, ctx.output_dir / ANOMALIES_DIR / f"{split}.pbtxt")
        S.write_schema(used, ctx.output_dir / SCHEMA_FILE)

        counts = {split: S.num_examples(statistics[split]) for split in names}
        rows = [row for split in names for row in S.feature_rows(statistics[split], split)]
        fail_list = self.fail_list
        gate = "none" not in {f.strip().lower() for f in fail_list}
        failing = [p for p in found if gate and S.fail_on_matches(fail_list, p)]
        metrics: dict[str, float] = {"anomalies": float(len(found))}
        for kind in ("skew", "drift"):
            values = [m.value for m in measured if m.kind == kind]
            if values:
                metrics[f"max_{kind}"] = round(max(values), 6)
        result = {
            "schema": schema_source,
            "statistics": paths,
            "counts": counts,
            "features": rows,
            "anomalies": [p.as_dict() for p in found],
            "failing": [p.as_dict() for p in failing],
            "measurements": [m.as_dict() for m in measured],
            "previous_run": str(ctx.previous.path) if ctx.previous else None,
        }
        (ctx.output_dir / RESULT_FILE).write_text(
            json.dumps(result, indent=2, default=str) + "\n", encoding="utf-8"
        )
        from .report import write_report

        write_report(
            ctx.output_dir / REPORT_DIR,
            statistics,
            rows,
            found,
            measured,
            schema_source,
            plots=self.plots,
            examples=artifact,
        )
        if failing:
            lines = "\n".join(f"  - {p.message()}" for p in failing)
            raise GateFailed(
                f"{len(failing)} anomal{'y' if len(failing) == 1 else 'ies'} stop the run "
                f"(fail_on: {', '.join(fail_list)}):\n{lines}\n"
                f"  anomalies: {ctx.output_dir / ANOMALIES_DIR}; schema: {schema_file}"
            )
        total = sum(counts.values())
        summary = f"{total} examples in {len(names)} splits, {len(found)} anomalies"
        if "max_drift" in metrics:
            summary += f", max drift {metrics['max_drift']:.3g}"
        return StepResult(counts=counts, metrics=metrics, summary=summary)

    def _statistics(
        self,
        ctx: StepContext,
        artifact: Any,
        names: list[str],
        spec: dict[str, Any],
        schema: Any,
    ) -> tuple[dict[str, Any], dict[str, str]]:
        """Statistics of each split: in memory for small splits; for large ones streamed in
        this process on the direct runner, else Beam."""
        from beamline_plugins.tfdv_tools import stats as S

        sizes = spec.get("splits", {})
        files = {split: example_files(artifact, split) for split in names}
        large = [s for s in names if int(sizes.get(s, 0)) > self.in_memory_max_examples]
        out_dir = ctx.output_dir / STATISTICS_DIR
        result: dict[str, Any] = {}
        paths: dict[str, str] = {}
        runner = ctx.spec.runner
        if large and self.streamed and runner.name == "direct" and not runner.options:
            for split in large:
                started = time.perf_counter()
                ctx.progress(len(paths), len(names), f"statistics of {split} (streamed)")
                result[split] = S.statistics_streamed(files[split], schema)
                S.write_statistics(result[split], out_dir / f"{split}.pb")
                paths[split] = "streamed"
                ctx.log(f"streamed statistics of {split} took {time.perf_counter() - started:.1f}s")
        if large and not any(paths.get(s) == "streamed" for s in large):
            started = time.perf_counter()
            ctx.log(f"statistics of {', '.join(large)} with Beam GenerateStatistics")
            beam_stats = S.statistics_with_beam(
                {s: files[s] for s in large}, schema, out_dir, ctx.beam_options()
            )
            result.update(beam_stats)
            paths.update(dict.fromkeys(large, "beam"))
            ctx.log(f"Beam statistics took {time.perf_counter() - started:.1f}s")
        for i, split in enumerate(s for s in names if s not in large and s not in paths):
            ctx.progress(i, len(names), f"statistics of {split}")
            stats = S.statistics_of_files(files[split], schema)
            S.write_statistics(stats, out_dir / f"{split}.pb")
            result[split] = stats
            paths[split] = "in_memory"
        ctx.progress(len(names), len(names), "statistics done")
        return {s: result[s] for s in names}, paths

    def _validate(
        self,
        ctx: StepContext,
        schema: Any,
        statistics: dict[str, Any],
        baseline: str,
    ) -> tuple[list[Any], list[Any], dict[str, Any], Any]:
        """Schema checks per split, skew baseline-vs-skew split, drift against the last run."""
        from beamline_plugins.tfdv_tools import stats as S

        plain = S.without_comparators(schema)
        skew_schema = S.with_comparators(schema, "skew", self.skew, measure_all=True)
        drift_schema = S.with_comparators(schema, "drift", self.drift, measure_all=True)
        # The schema copied into the artifact: the curated one plus this step's thresholds.
        used = S.with_comparators(schema, "skew", self.skew, measure_all=False, only=False)
        used = S.with_comparators(used, "drift", self.drift, measure_all=False, only=False)

        found: list[Any] = []
        measured: list[Any] = []
        anomalies: dict[str, Any] = {}
        previous = ctx.previous
        if previous is None and self.drift:
            ctx.log("no previous run of this step: drift is not measured this time")
        for split, stats in statistics.items():
            parts = [S.validate(stats, plain)]
            found += S.problems(parts[0], split, "schema")
            if split == baseline and self.skew_split in statistics and self.skew_split != split:
                skew = S.validate(stats, skew_schema, serving=statistics[self.skew_split])
                parts.append(skew)
                found += S.problems(skew, split, "skew")
                measured += S.measurements(skew, split, "skew", skew_schema)
            old = previous.file(STATISTICS_DIR, f"{split}.pb") if previous else None
            if old is not None and old.is_file():
                drift = S.validate(stats, drift_schema, previous=S.load_statistics(old))
                parts.append(drift)
                found += S.problems(drift, split, "drift")
                measured += S.measurements(drift, split, "drift", drift_schema)
            anomalies[split] = S.merge_anomalies(parts)
        return found, measured, anomalies, used
