"""``pipeline serve EXPORT_OR_MODEL_FOLDER``: TF Serving's REST API for an export."""

from __future__ import annotations

import click

from beamline.errors import PipelineError


@click.command("serve")
@click.argument("target", metavar="EXPORT_OR_MODEL_FOLDER")
@click.option("--name", help="the model name in the URLs (default: the pipeline's or folder's)")
@click.option("--host", default="127.0.0.1", show_default=True, help="the address to listen on")
@click.option(
    "--port",
    default=8501,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="the port (TF Serving's REST port; 0: a free one, printed)",
)
@click.option(
    "--max-batch",
    default=32,
    show_default=True,
    type=click.IntRange(1, 4096),
    help="examples per batch of concurrent requests (1: no batching)",
)
@click.option(
    "--batch-wait-ms",
    default=5.0,
    show_default=True,
    type=click.FloatRange(0, 1000),
    help="the longest a batch waits for requests still being received (never when idle)",
)
@click.option(
    "--max-body-bytes",
    default=16 * 1024 * 1024,
    show_default=True,
    type=click.IntRange(1),
    help="larger request bodies are refused (HTTP 400)",
)
@click.option(
    "--tf-threads",
    type=click.IntRange(0),
    help="TensorFlow's op threads (default: the cores but one, the event loop's; 0: TF's own)",
)
@click.option(
    "--inference-threads",
    default=0,
    show_default=True,
    type=click.IntRange(0, 64),
    help="threads running batches beside the event loop (0: on the event loop itself, the "
    "least CPU per example; 1: requests are read while a batch runs)",
)
@click.option(
    "--poll-seconds",
    default=1.0,
    show_default=True,
    type=click.FloatRange(0.05),
    help="how often a model folder is checked for a new version",
)
@click.pass_context
def serve_command(
    ctx: click.Context,
    target: str,
    name: str | None,
    host: str,
    port: int,
    max_batch: int,
    batch_wait_ms: float,
    max_body_bytes: int,
    tf_threads: int | None,
    inference_threads: int,
    poll_seconds: float,
) -> None:
    """Serve an export over TensorFlow Serving's REST API, swapping in new versions.

    EXPORT_OR_MODEL_FOLDER is a model folder (ROOT/NAME with numbered versions, as the
    exporter's publish: writes and tensorflow_model_server loads), whose newest version is
    served and replaced when a newer one appears; or an export folder, a SavedModel folder, or
    a run (its folder, PIPELINE/RUN_ID, a run id, or a pipeline name for its latest run), served
    as one fixed version. Endpoints: GET /v1/models/NAME, GET /v1/models/NAME/metadata,
    POST /v1/models/NAME[/versions/V]:predict, GET /healthz, GET /metrics."""
    from .app import ServeOptions
    from .server import resolve_target, serve

    try:
        found = resolve_target(target, name, getattr(ctx.find_root().obj, "runs_dir", None))
        serve(
            found,
            host=host,
            port=port,
            options=ServeOptions(
                max_batch, batch_wait_ms, max_body_bytes, tf_threads, inference_threads
            ),
            poll_seconds=poll_seconds,
        )
    except PipelineError as exc:
        error = click.ClickException(str(exc))
        error.exit_code = exc.exit_code
        raise error from None
