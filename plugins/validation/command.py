"""``pipeline validate DATA``: statistics, schema checks and anomalies of data, without a pipeline.

DATA may be a CSV file, TFRecord files of ``tf.train.Example`` (a file, a glob or a folder), an
examples artifact (a step folder with ``features.json``: one statistics per split), or a folder
of images with one sub-folder per class. TensorFlow and TFDV are imported only when the command
runs, so ``pipeline --help`` stays fast.
"""

from __future__ import annotations

import glob
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from beamline.cli_group import json_option
from beamline.errors import GateFailed

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp", ".tif", ".tiff")
TFRECORD_PATTERNS = ("*.tfrecord", "*.tfrecord.gz", "*.tfrecord-*", "*.tfrecords", "*.tfr")
IMAGE_COLUMNS = ("label", "bytes", "width", "height", "mode", "format")


class AnomaliesFound(click.ClickException):
    """Anomalies were found: exit code 3, like a validation gate stopping a run."""

    exit_code = GateFailed.exit_code


@dataclass
class Outcome:
    """What ``pipeline validate`` found: the data's kind, counts, feature rows and anomalies."""

    data: str
    kind: str
    counts: dict[str, int] = field(default_factory=dict)
    rows: list[dict[str, Any]] = field(default_factory=list)
    problems: list[Any] = field(default_factory=list)
    schema: str = ""

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary (what ``--json`` prints)."""
        return {
            "data": self.data,
            "kind": self.kind,
            "counts": self.counts,
            "schema": self.schema,
            "features": self.rows,
            "anomalies": [p.as_dict() for p in self.problems],
        }


@click.command("validate")
@click.argument("data")
@click.option(
    "--schema",
    "schema_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Curated schema (TFDV text proto) to check against; default: infer one from DATA.",
)
@click.option(
    "--write-schema",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Save the schema inferred from DATA here (to review, then pass as --schema).",
)
@json_option("Print one JSON object instead of tables.")
def validate(
    data: str,
    schema_file: Path | None,
    write_schema: Path | None,
    as_json: bool,
) -> None:
    """Compute statistics of DATA and check it against a schema, without a pipeline.

    DATA is a CSV file, TFRecord files (a file, a quoted glob or a folder), an examples
    artifact folder, or an image folder with one sub-folder per class. Exits 3 when there are
    anomalies, 0 otherwise.
    """
    outcome = validate_data(data, schema_file=schema_file, write_schema=write_schema)
    if as_json:
        click.echo(json.dumps(outcome.as_dict(), indent=2, default=str))
    else:
        _print(outcome)
    if outcome.problems:
        count = len(outcome.problems)
        raise AnomaliesFound(f"{count} anomal{'y' if count == 1 else 'ies'} in {data}")


def validate_data(
    data: str, *, schema_file: Path | None = None, write_schema: Path | None = None
) -> Outcome:
    """Statistics and anomalies of ``data`` (see the command); errors are ``ClickException``."""
    from beamline_plugins.tfdv_tools import stats as S

    schema = None
    if schema_file is not None:
        if not schema_file.is_file():
            raise click.ClickException(f"{schema_file}: schema file not found")
        try:
            schema = S.load_schema(schema_file)
        except (ValueError, UnicodeDecodeError) as exc:
            raise click.ClickException(str(exc)) from None
    target = _detect(data)
    outcome = Outcome(data=data, kind=target.kind)
    spec = None
    if target.kind == "examples":
        from beamline.examples import feature_spec

        spec = feature_spec(target.path)
    if target.kind == "csv":
        statistics = {"data": _csv_statistics(target.path, schema)}
    elif target.kind == "images":
        statistics = {"data": _image_statistics(target.path, schema, outcome)}
    else:
        seed = schema if schema is not None or spec is None else S.seed_schema(spec)
        statistics = {split: _tfrecord_statistics(f, seed) for split, f in target.files.items()}
    baseline = "train" if "train" in statistics else next(iter(statistics))
    if schema is None:
        schema = S.infer_schema(statistics[baseline], spec)
        outcome.schema = f"inferred from {'split ' + baseline if spec else 'DATA'}"
        if write_schema is not None:
            S.write_schema(schema, write_schema)
            outcome.schema += f", saved to {write_schema}"
    else:
        outcome.schema = str(schema_file)
    plain = S.without_comparators(schema)
    for split, stats in statistics.items():
        outcome.counts[split] = S.num_examples(stats)
        outcome.rows += S.feature_rows(stats, split)
        outcome.problems += S.problems(S.validate(stats, plain), split, "schema")
    return outcome


@dataclass
class Target:
    """What DATA is: its kind (csv, tfrecord, examples, images), its path, its TFRecord files."""

    kind: str
    path: Path
    files: dict[str, list[str]] = field(default_factory=dict)


def _detect(data: str) -> Target:
    """What kind of data ``data`` names, and for TFRecords the files of each split."""
    if any(ch in data for ch in "*?["):
        files = sorted(f for f in glob.glob(data, recursive=True) if Path(f).is_file())
        if not files:
            raise click.ClickException(f"{data}: no files match")
        return Target("tfrecord", Path(files[0]).parent, {"data": files})
    path = Path(data).expanduser()
    if not path.exists():
        raise click.ClickException(f"{path}: no such file or folder")
    if path.is_file():
        if path.suffix.lower() in (".csv", ".tsv"):
            return Target("csv", path)
        return Target("tfrecord", path, {"data": [str(path)]})
    if (path / "features.json").is_file():
        from beamline.examples import example_files, splits

        try:
            names = splits(path)
            by_split = {s: example_files(path, s) for s in names}
        except (OSError, ValueError) as exc:
            raise click.ClickException(f"{path}: not a readable examples artifact: {exc}") from None
        if not by_split:
            raise click.ClickException(f"{path / 'features.json'}: lists no splits")
        return Target("examples", path, by_split)
    records = sorted({str(f) for p in TFRECORD_PATTERNS for f in path.rglob(p) if f.is_file()})
    if records:
        return Target("tfrecord", path, {"data": records})
    if any(d.is_dir() for d in path.iterdir()):
        return Target("images", path)
    raise click.ClickException(
        f"{path}: found no CSV file, TFRecord files or class sub-folders of images"
    )


def _csv_statistics(path: Path, schema: Any) -> Any:
    import pandas as pd

    from beamline_plugins.tfdv_tools import stats as S

    try:
        frame = pd.read_csv(path, sep="\t" if path.suffix.lower() == ".tsv" else ",")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise click.ClickException(f"{path}: cannot read as CSV: {exc}") from None
    if frame.empty:
        raise click.ClickException(f"{path}: the CSV file has no rows")
    return S.statistics_of_dataframe(frame, schema)


def _tfrecord_statistics(files: list[str], schema: Any) -> Any:
    from beamline_plugins.tfdv_tools import stats as S

    records: list[bytes] = []
    for file in files:
        try:
            records += S.read_records([file])
        except Exception as exc:  # TensorFlow raises DataLossError and friends
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise click.ClickException(f"{file}: not a readable TFRecord file: {first}") from None
    if not records:
        raise click.ClickException(f"{', '.join(files)}: no records")
    try:
        return S.statistics_in_memory(records, schema)
    except Exception as exc:
        raise click.ClickException(
            f"{files[0]}: records are not tf.train.Example protos ({exc})"
        ) from None


def _image_statistics(folder: Path, schema: Any, outcome: Outcome) -> Any:
    """Statistics of a table with one row per image file: its class, size, dimensions, format.

    Every image is decoded; files that fail are reported as anomalies with the reason."""
    import pandas as pd
    from PIL import Image

    from beamline_plugins.tfdv_tools import stats as S

    rows = []
    for class_dir in sorted(d for d in folder.iterdir() if d.is_dir()):
        files = sorted(
            f for f in class_dir.rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES
        )
        if not files:
            outcome.problems.append(
                S.Problem("data", class_dir.name, "EMPTY_CLASS", "images", "no image files")
            )
        for file in files:
            row: dict[str, Any] = {"label": class_dir.name, "bytes": file.stat().st_size}
            try:
                with Image.open(file) as image:
                    image.load()
                    row.update(
                        width=image.width, height=image.height, mode=image.mode, format=image.format
                    )
            except Exception as exc:  # PIL raises many kinds for broken files
                reason = f"{file.relative_to(folder)}: cannot decode: {exc}"
                outcome.problems.append(
                    S.Problem("data", "image", "DECODE_FAILED", "images", reason)
                )
                row.update(width=None, height=None, mode=None, format=None)
            rows.append(row)
    if not rows:
        raise click.ClickException(f"{folder}: no image files in its class sub-folders")
    frame = pd.DataFrame(rows, columns=list(IMAGE_COLUMNS))
    for column in ("width", "height"):  # integers unless a failed decode left a gap
        if frame[column].notna().all():
            frame[column] = frame[column].astype("int64")
    return S.statistics_of_dataframe(frame, schema)


def _print(outcome: Outcome) -> None:
    """Tables for people: counts, features per split, the schema used and the anomalies."""
    counts = ", ".join(f"{k} {v}" for k, v in outcome.counts.items())
    click.echo(f"{outcome.data} ({outcome.kind}): {counts} examples")
    header = ("split", "feature", "type", "missing %", "unique", "min", "max", "mean", "note")
    table = [header]
    for row in outcome.rows:
        missing = "" if row["missing_pct"] is None else f"{row['missing_pct']:.1f}"
        table.append(
            (
                row["split"],
                row["feature"],
                row["type"],
                missing,
                _fmt(row["unique"]),
                _fmt(row["min"]),
                _fmt(row["max"]),
                _fmt(row["mean"]),
                row["note"],
            )
        )
    widths = [max(len(str(r[i])) for r in table) for i in range(len(header))]
    for r in table:
        click.echo("  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    click.echo(f"schema: {outcome.schema}")
    if not outcome.problems:
        click.echo("no anomalies")
        return
    click.echo(f"{len(outcome.problems)} anomalies:")
    for problem in outcome.problems:
        click.echo(f"  - {problem.message()}")


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    return f"{value:.4g}" if isinstance(value, float) else str(value)
