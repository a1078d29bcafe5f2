"""``pipeline predict EXPORT FILE... [--json]``: predict raw inputs with an exported SavedModel.

Images, WAV and text files are one input each (``--text`` for strings). A table export (from
``table_input``) takes CSV files with a header row instead, every row one input, and rows given
as ``--row age=59,sex=2,...``; it prints the predicted value of a regression, or the label and
scores of a classifier.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import click

from beamline.cli_group import json_option
from beamline.errors import PipelineError, SpecError, closest
from beamline.files import csv_rows
from beamline.ingest import Reject

BATCH = 64
TABLE_MODALITIES = ("numeric", "categorical")


def find_saved_model(export: Path) -> tuple[Path, dict[str, Any]]:
    """The SavedModel folder of an exporter artifact (or SavedModel folder) and its export.json."""
    for folder in (export / "saved_model", export):
        if (folder / "saved_model.pb").is_file():
            for info in (folder / "export.json", folder.parent / "export.json"):
                if info.is_file():
                    return folder, json.loads(info.read_text(encoding="utf-8"))
            return folder, {}
    raise PipelineError(
        f"{export}: no SavedModel here (expected saved_model.pb or saved_model/saved_model.pb; "
        "pass the folder of an exporter step)"
    )


def export_folder(ref: str | Path, runs_dir: str | Path | None = None) -> Path:
    """The folder to load for ``ref``: an export (or SavedModel) folder, or a run's exporter step.

    A run is named as ``pipeline show`` takes it (folder, ``PIPELINE/RUN_ID``, run id, or a
    pipeline name for its latest run); its exporter step is the one whose ``meta.json`` says
    ``kind: exporter`` (the last one if there are several)."""
    from beamline.artifacts import open_run

    folder = Path(ref)
    if folder.is_dir() and not (folder / "run.json").is_file():
        return folder
    run = open_run(ref, runs_dir)
    exports = [s for s in run.steps() if run.artifact(s).meta.get("kind") == "exporter"]
    if not exports:
        raise PipelineError(
            f"run {run.pipeline}/{run.run_id} has no completed exporter step "
            f"(steps: {', '.join(run.steps()) or 'none'}); run the pipeline to its export step"
        )
    return run.path / exports[-1]


def predict_files(export: str | Path, files: list[str | Path]) -> list[dict[str, Any]]:
    """Predict each raw file with an exported model: ``[{"input", "label", "scores"}]``.

    ``scores`` maps each class name to its score, in class order."""
    return predict_raw(export, [(str(f), Path(f).read_bytes()) for f in files])


def predict_texts(export: str | Path, texts: list[str]) -> list[dict[str, Any]]:
    """Predict raw strings with an exported text model (``input`` is the text itself)."""
    return predict_raw(export, [(text, text.encode("utf-8")) for text in texts])


def predict_raw(export: str | Path, items: list[tuple[str, bytes]]) -> list[dict[str, Any]]:
    """Predict raw inputs, each ``(name, bytes)``: encoded images, WAV bytes or UTF-8 text.

    A classifier gives ``{"input", "label", "scores"}`` per input; an export whose signature
    returns ``text`` (speech to text, sequence to sequence) gives ``{"input", "text"}``."""
    import tensorflow as tf

    folder, info = find_saved_model(Path(export))
    loaded = tf.saved_model.load(str(folder))
    signature = loaded.signatures[info.get("signature", "serving_default")]
    _, named = signature.structured_input_signature
    if len(named) != 1:
        raise PipelineError(f"{folder}: the signature takes {list(named)}; predict feeds one input")
    (input_name,) = named
    results: list[dict[str, Any]] = []
    for start in range(0, len(items), BATCH):
        chunk = items[start : start + BATCH]
        try:
            out = _call(signature, input_name, [data for _, data in chunk])
        except tf.errors.InvalidArgumentError:
            for name, data in chunk:  # find the input the model cannot read
                try:
                    _call(signature, input_name, [data])
                except tf.errors.InvalidArgumentError as exc:
                    # TF puts its own "Graph execution error:" first; the model's message last.
                    lines = [line for line in exc.message.splitlines() if line.strip()]
                    reason = lines[-1] if lines else exc.message
                    raise PipelineError(f"{name}: cannot be read by the model: {reason}") from None
            raise
        if "text" in out and "scores" not in out:  # speech to text, sequence to sequence
            texts = [x.decode("utf-8", "replace") for x in out["text"].numpy()]
            results += [{"input": n, "text": t} for (n, _), t in zip(chunk, texts, strict=True)]
            continue
        scores = out["scores"].numpy()
        labels = [x.decode("utf-8") for x in out["label"].numpy()]
        classes = info.get("classes") or [str(i) for i in range(scores.shape[1])]
        for (name, _), label, row in zip(chunk, labels, scores, strict=True):
            named_scores = {c: float(s) for c, s in zip(classes, row, strict=True)}
            results.append({"input": name, "label": label, "scores": named_scores})
    return results


def is_table_export(info: dict[str, Any]) -> bool:
    """Whether an export's ``export.json`` describes a table model (named column inputs)."""
    modalities = list(info.get("inputs", {}).values())
    return bool(modalities) and all(m in TABLE_MODALITIES for m in modalities)


def read_json_rows(path: str | Path) -> list[tuple[str, dict[str, str]]]:
    """The objects of a JSON Lines file (or one JSON list of objects) as table rows:
    ``[("file:row N", {column: text})]``; a null becomes an empty cell (a missing value)."""
    text = Path(path).read_text(encoding="utf-8")
    try:
        if text.lstrip().startswith("["):
            items = list(enumerate(json.loads(text), 1))
        else:
            items = [(n, json.loads(line)) for n, line in enumerate(text.splitlines(), 1)
                     if line.strip()]  # fmt: skip
    except json.JSONDecodeError as exc:
        raise PipelineError(f"{path}: invalid JSON: {exc.msg} (line {exc.lineno})") from None
    rows = []
    for number, item in items:
        if not isinstance(item, dict):
            raise PipelineError(f"{path}:row {number}: expected a JSON object of column values")
        cells = {k: "" if v is None else str(v) for k, v in item.items()}
        rows.append((f"{path}:row {number}", cells))
    return rows


def read_table_rows(path: str | Path) -> list[tuple[str, dict[str, str]]]:
    """Rows of a CSV file, or of a JSON file (``.json``, ``.jsonl``)."""
    if Path(path).suffix.lower() in (".json", ".jsonl"):
        return read_json_rows(path)
    return read_csv_rows(path)


def read_csv_rows(path: str | Path) -> list[tuple[str, dict[str, str]]]:
    """The data rows of a CSV file with a header: ``[("file:row N", {column: text})]``."""
    rows = []
    for item in csv_rows(str(path), ","):
        if isinstance(item, Reject):
            raise PipelineError(f"{item.source or path}: {item.reason}")
        where, header, row, _ = item
        rows.append((where, dict(zip(header, row, strict=True))))
    return rows


def parse_row_option(text: str) -> dict[str, str]:
    """``age=59,sex=2`` -> ``{"age": "59", "sex": "2"}``."""
    out = {}
    for part in text.split(","):
        name, sep, value = part.partition("=")
        if not sep or not name.strip():
            raise SpecError(f"--row {text!r}: expected NAME=VALUE pairs separated by commas")
        out[name.strip()] = value.strip()
    return out


def predict_rows(
    export: str | Path, rows: list[tuple[str, dict[str, str]]]
) -> list[dict[str, Any]]:
    """Predict table rows, each ``(name, {column: text})``, with an exported table model.

    Every input column must be present; an empty numeric cell is a missing value (the model
    fills in the train mean). Other columns (the label, say) are ignored.
    Returns ``[{"input", "prediction"}]`` for a regression and ``[{"input", "label",
    "scores"}]`` for a classifier."""
    import tensorflow as tf

    folder, info = find_saved_model(Path(export))
    loaded = tf.saved_model.load(str(folder))
    signature = loaded.signatures[info.get("signature", "serving_default")]
    _, signature_inputs = signature.structured_input_signature
    named = {name: signature_inputs[name] for name in sorted(signature_inputs)}
    columns: dict[str, list[Any]] = {name: [] for name in named}
    for where, row in rows:
        missing = [name for name in named if name not in row]
        if missing:
            raise SpecError(
                f"{where}: no value for {', '.join(missing)} (the model takes {', '.join(named)})"
            )
        for name, spec in named.items():
            columns[name].append(_cell(row[name], spec.dtype, where, name))
    results: list[dict[str, Any]] = []
    regression = info.get("task") == "regression"
    classes = info.get("classes") or []
    for start in range(0, len(rows), BATCH):
        batch = {
            name: tf.constant(values[start : start + BATCH], dtype=named[name].dtype)
            for name, values in columns.items()
        }
        out = signature(**batch)
        names = [where for where, _ in rows[start : start + BATCH]]
        if regression:
            values = out["prediction"].numpy().reshape(-1)
            results += [
                {"input": n, "prediction": float(v)} for n, v in zip(names, values, strict=True)
            ]
            continue
        scores = out["scores"].numpy()
        labels = [x.decode("utf-8") for x in out["label"].numpy()]
        names_of = classes or [str(i) for i in range(scores.shape[1])]
        for name, label, row_scores in zip(names, labels, scores, strict=True):
            named_scores = {c: float(v) for c, v in zip(names_of, row_scores, strict=True)}
            results.append({"input": name, "label": label, "scores": named_scores})
    return results


def _cell(text: str, dtype: Any, where: str, column: str) -> Any:
    import tensorflow as tf

    text = text.strip()
    if dtype == tf.string:
        return text
    if dtype == tf.int64:
        try:
            return int(text)
        except ValueError:
            raise SpecError(f"{where}: column '{column}': {text!r} is not an integer") from None
    if not text:
        return math.nan  # missing: the model fills in the train mean
    try:
        return float(text)
    except ValueError:
        raise SpecError(f"{where}: column '{column}': {text!r} is not a number") from None


def _call(signature: Any, input_name: str, data: list[bytes]) -> Any:
    import tensorflow as tf

    return signature(**{input_name: tf.constant(data)})


@click.command("predict")
@click.argument("export", metavar="EXPORT")
@click.argument("files", nargs=-1, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--text",
    "texts",
    multiple=True,
    metavar="STRING",
    help="a raw text to classify (repeatable), for text exports",
)
@click.option(
    "--row",
    "rows",
    multiple=True,
    metavar="NAME=VALUE,...",
    help="a table row to predict (repeatable), for table exports: age=59,sex=2,...",
)
@json_option("print a JSON list for scripts")
@click.pass_context
def predict_command(
    ctx: click.Context,
    export: str,
    files: tuple[Path, ...],
    texts: tuple[str, ...],
    rows: tuple[str, ...],
    as_json: bool,
) -> None:
    """Predict raw FILES (images, WAV, text files, CSV rows), --text strings or --row rows.

    EXPORT is the folder of an exporter step or a SavedModel folder, or a run (its folder,
    PIPELINE/RUN_ID, a run id, or a pipeline name for its latest run) whose exporter step is used.
    For an image, audio or text model each file is one input; for a table model each FILE is a
    CSV file with a header, or a JSON Lines file of objects (.json/.jsonl), whose every row is
    one input (other columns, such as the label, are ignored)."""
    if not files and not texts and not rows:
        raise click.UsageError("give FILES to predict, --text STRING or --row NAME=VALUE,...")
    try:
        export = export_folder(export, getattr(ctx.find_root().obj, "runs_dir", None))
        _, info = find_saved_model(export)
        if is_table_export(info):
            if texts:
                raise click.UsageError("--text is for text exports; a table export takes --row")
            table = [row for f in files for row in read_table_rows(f)]
            for i, text in enumerate(rows, 1):
                row = parse_row_option(text)
                unknown = sorted(set(row) - set(info["inputs"]))
                if unknown:  # a typo here would silently become a missing value
                    raise SpecError(
                        f"--row {text!r}: unknown column {', '.join(unknown)}"
                        f"{closest(unknown[0], info['inputs'])} (the model takes "
                        f"{', '.join(info['inputs'])})"
                    )
                table.append((f"--row {i}", row))
            results = predict_rows(export, table)
        else:
            if rows:
                raise click.UsageError("--row is for table exports (see export.json)")
            items = [(str(f), f.read_bytes()) for f in files]
            items += [(text, text.encode("utf-8")) for text in texts]
            results = predict_raw(export, items)
    except PipelineError as exc:
        error = click.ClickException(str(exc))
        error.exit_code = exc.exit_code  # 2 for bad input (a --row), as everywhere
        raise error from None
    if as_json:
        click.echo(json.dumps(results, indent=2))
        return
    for result in results:
        if "text" in result:
            click.echo(f"{result['input']}: {result['text']}")
            continue
        if "prediction" in result:
            click.echo(f"{result['input']}: {result['prediction']:.4f}")
            continue
        top = result["scores"][result["label"]]
        scores = " ".join(f"{c}={s:.3f}" for c, s in result["scores"].items())
        click.echo(f"{result['input']}: {result['label']} ({top:.3f})  scores: {scores}")
