"""``pipeline explain EXPORT INPUT... [--target CLASS] [--out DIR] [--json]``.

Attributions of raw inputs for an exported image, audio or text classifier: a PNG heatmap per
image or clip (the input beside its attribution map), an HTML page of highlighted tokens per
text, and with ``--json`` the numbers. The raw input goes through the export's own
preprocessing (the input pipeline's serving function, rebuilt from the trainer's model.json)
and the trained model the export holds; before explaining, the scores are checked against the
SavedModel's signature on the same input, so the attributions are those of the exported model.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import click

from beamline.artifacts import META_FILE, Artifact, open_run
from beamline.cli_group import json_option
from beamline.errors import PipelineError

#: Largest difference allowed between the Keras model's and the SavedModel's scores.
SCORE_AGREEMENT = 1e-3


def export_and_trainer(ref: str, runs_dir: Any = None) -> tuple[Path, Artifact]:
    """The exporter step folder named by ``ref`` (its folder, or a run as ``pipeline show``
    takes it) and the trainer artifact it exported (its ``model`` input, in the same run)."""
    folder = Path(ref)
    if not (folder.is_dir() and (folder / META_FILE).is_file()):
        run = open_run(ref, runs_dir)
        exports = [s for s in run.steps() if run.artifact(s).meta.get("kind") == "exporter"]
        if not exports:
            raise PipelineError(
                f"run {run.pipeline}/{run.run_id} has no completed exporter step; run the "
                "pipeline to its export step"
            )
        folder = run.path / exports[-1]
    export = Artifact.open(folder)
    step = export.meta.get("inputs", {}).get("model", {}).get("step")
    trainer = folder.parent / str(step or "")
    if not step or not (trainer / "model.keras").is_file():
        raise PipelineError(
            f"{folder}: explain needs the exporter step of a run, with the trainer step it "
            f"exported beside it (looked for {trainer}/model.keras)"
        )
    return folder, Artifact.open(trainer)


def explain_inputs(
    ref: str,
    items: list[tuple[str, bytes]],
    *,
    target: str | None = None,
    method: str = "integrated_gradients",
    steps: int = 64,
    out: Path | None = None,
    runs_dir: Any = None,
) -> list[dict[str, Any]]:
    """Explain raw inputs ``(name, bytes)`` with an export; write pictures into ``out``.

    Returns one dict per input (``render.describe`` plus ``input`` and ``file``)."""
    from beamline_plugins.attributions.explainer import Explainer
    from beamline_plugins.attributions.render import describe, write_explanation
    from beamline_plugins.training.artifact import (
        MODEL_INFO,
        load_keras_model,
        rebuild_input_pipeline,
    )

    folder, trainer = export_and_trainer(ref, runs_dir)
    info = json.loads(trainer.file(MODEL_INFO).read_text(encoding="utf-8"))
    pipeline = rebuild_input_pipeline(info, trainer.file(MODEL_INFO))
    try:
        explainer = Explainer(load_keras_model(trainer), pipeline, info)
        index = explainer.class_index(target)
    except ValueError as exc:
        raise PipelineError(f"{folder}: {exc}") from None
    _check_against_export(folder, explainer, items)
    results = []
    for number, (name, data) in enumerate(items, 1):
        explained = explainer.explain(data, index, method, steps)
        entry = {"input": name, **describe(explained, explainer.classes)}
        if out is not None:
            # A file is named by its own name, however long its folder's path; a long --text
            # string by its start.
            short = len(Path(name).name) < 80
            stem = f"{number:03d}_{_safe(Path(name).stem if short else name[:40])}"
            title = f"{Path(name).name[:60]}: {entry['target']} ({entry['score']:.3f}), {method}"
            entry["file"] = str(write_explanation(explained, out, stem, title))
        results.append(entry)
    return results


def _check_against_export(folder: Path, explainer: Any, items: list[tuple[str, bytes]]) -> None:
    """Fail when the trained model's scores differ from the SavedModel's on these inputs."""
    import numpy as np
    import tensorflow as tf

    loaded = tf.saved_model.load(str(folder / "saved_model"))
    signature = loaded.signatures["serving_default"]
    raw = [data for _, data in items]
    exported = signature(**{explainer.name: tf.constant(raw)})["scores"].numpy()
    ours = explainer.scores(explainer.features(raw))
    worst = float(np.abs(exported - ours).max())
    if worst > SCORE_AGREEMENT:
        raise PipelineError(
            f"{folder}: the trained model and the SavedModel disagree by {worst:.2g} on these "
            "inputs; rerun the export step"
        )


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_")[:40] or "input"


@click.command("explain")
@click.argument("export", metavar="EXPORT")
@click.argument("files", nargs=-1, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--text", "texts", multiple=True, metavar="STRING", help="a raw text (repeatable)")
@click.option("--target", metavar="CLASS", help="the class to explain (default: the predicted)")
@click.option(
    "--method",
    type=click.Choice(["integrated_gradients", "saliency"]),
    default="integrated_gradients",
    show_default=True,
    help="integrated gradients, or plain saliency (gradient x input, one model call)",
)
@click.option(
    "--steps",
    type=click.IntRange(8, 1024),
    default=64,
    show_default=True,
    help="integration intervals of integrated gradients",
)
@click.option(
    "--out",
    "out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("attributions"),
    show_default=True,
    help="folder for the PNG heatmaps (images, audio) and HTML pages (text)",
)
@json_option("print the attributions as JSON for scripts")
@click.pass_context
def explain_command(
    ctx: click.Context,
    export: str,
    files: tuple[Path, ...],
    texts: tuple[str, ...],
    target: str | None,
    method: str,
    steps: int,
    out: Path,
    as_json: bool,
) -> None:
    """Attributions of raw FILES (images, WAV clips, text files) or --text strings.

    EXPORT is the folder of an exporter step, or a run (its folder, PIPELINE/RUN_ID, a run id,
    or a pipeline name for its latest run). Each input gets OUT/NNN_NAME.png (images: input,
    attribution, overlay; audio: spectrogram and its attribution) or .html (text: tokens
    highlighted, red for the class, blue against). Integrated gradients start from a black
    image, a flat spectrogram or zero token embeddings."""
    if not files and not texts:
        raise click.UsageError("give FILES to explain or --text STRING")
    items = [(str(f), f.read_bytes()) for f in files]
    items += [(text, text.encode("utf-8")) for text in texts]
    try:
        results = explain_inputs(
            export,
            items,
            target=target,
            method=method,
            steps=steps,
            out=out,
            runs_dir=getattr(ctx.find_root().obj, "runs_dir", None),
        )
    except PipelineError as exc:
        error = click.ClickException(str(exc))
        error.exit_code = exc.exit_code
        raise error from None
    if as_json:
        click.echo(json.dumps(results, indent=2))
        return
    for r in results:
        gap = (
            ""
            if r["completeness_gap"] is None
            else f", completeness gap {r['completeness_gap']:.2%}"
        )
        click.echo(
            f"{r['input']}: {r['target']} ({r['score']:.3f}; baseline {r['baseline_score']:.3f}, "
            f"attributions sum {r['attribution_sum']:+.3f}{gap}) -> {r['file']}"
        )
