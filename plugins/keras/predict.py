"""``pipeline predict EXPORT FILE... [--json]``: classify raw files with an exported SavedModel."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from pipeline.errors import PipelineError

BATCH = 64


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


def predict_files(export: str | Path, files: list[str | Path]) -> list[dict[str, Any]]:
    """Predict each raw file with an exported model: ``[{"input", "label", "scores"}]``.

    ``scores`` maps each class name to its score, in class order."""
    return predict_raw(export, [(str(f), Path(f).read_bytes()) for f in files])


def predict_texts(export: str | Path, texts: list[str]) -> list[dict[str, Any]]:
    """Predict raw strings with an exported text model (``input`` is the text itself)."""
    return predict_raw(export, [(text, text.encode("utf-8")) for text in texts])


def predict_raw(export: str | Path, items: list[tuple[str, bytes]]) -> list[dict[str, Any]]:
    """Predict raw inputs, each ``(name, bytes)``: encoded images, WAV bytes or UTF-8 text."""
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
        scores = out["scores"].numpy()
        labels = [x.decode("utf-8") for x in out["label"].numpy()]
        classes = info.get("classes") or [str(i) for i in range(scores.shape[1])]
        for (name, _), label, row in zip(chunk, labels, scores, strict=True):
            named_scores = {c: float(s) for c, s in zip(classes, row, strict=True)}
            results.append({"input": name, "label": label, "scores": named_scores})
    return results


def _call(signature: Any, input_name: str, data: list[bytes]) -> Any:
    import tensorflow as tf

    return signature(**{input_name: tf.constant(data)})


@click.command("predict")
@click.argument("export", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("files", nargs=-1, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--text",
    "texts",
    multiple=True,
    metavar="STRING",
    help="a raw text to classify (repeatable), for text exports",
)
@click.option("--json", "as_json", is_flag=True, help="print a JSON list for scripts")
def predict_command(
    export: Path, files: tuple[Path, ...], texts: tuple[str, ...], as_json: bool
) -> None:
    """Classify raw FILES (images, WAV, text files) or --text strings with an export.

    EXPORT is the folder of an exporter step (or a SavedModel folder); each file is one input."""
    if not files and not texts:
        raise click.UsageError("give FILES to classify, or --text STRING")
    try:
        items = [(str(f), f.read_bytes()) for f in files]
        items += [(text, text.encode("utf-8")) for text in texts]
        results = predict_raw(export, items)
    except PipelineError as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        click.echo(json.dumps(results, indent=2))
        return
    for result in results:
        top = result["scores"][result["label"]]
        scores = " ".join(f"{c}={s:.3f}" for c, s in result["scores"].items())
        click.echo(f"{result['input']}: {result['label']} ({top:.3f})  scores: {scores}")
