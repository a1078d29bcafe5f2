"""A stream plugin for tests: ``memory_stream`` stands in for a message broker.

Loaded by pipeline files through ``plugins: [stream_plugin]``. Its messages are the records of
its ``messages`` parameter, each with an event time (``at``, seconds after 2024-01-01T00:00Z);
``acknowledge`` appends what it is given, and which of the window's files were then in place,
to ``acks.jsonl`` beside the pipeline file, as a broker source would commit offsets.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from beamline import StepContext, Stream, hookimpl, param

EPOCH = 1704067200.0  # 2024-01-01T00:00:00Z


def _stamp(message: dict[str, Any]) -> Any:
    from apache_beam.transforms.window import TimestampedValue

    record = {k: v for k, v in message.items() if k not in ("at", "offset")}
    record["__source__"] = f"topic/0/{message['offset']}"
    return TimestampedValue(record, EPOCH + message["at"])


def _reject_odd(record: dict[str, Any]) -> Any:
    from apache_beam import pvalue

    if int(record["__source__"].rsplit("/", 1)[1]) % 2:
        yield pvalue.TaggedOutput(
            "rejected", {"source": record["__source__"], "stage": "read", "reason": "odd offset"}
        )
    else:
        yield record


class MemoryStream(Stream):
    """Messages with event times, read as a broker would deliver them (for tests)."""

    name = "memory_stream"

    messages: list[dict[str, Any]] = param(help="records with 'at' (seconds) and 'offset'")
    acks: str = param(help="file the acknowledgements are appended to")
    reject_odd: bool = param(False, help="reject messages with an odd offset at read")

    def read(self, ctx: StepContext) -> Any:
        """The messages, stamped with their event times."""
        import apache_beam as beam

        self._out = str(ctx.output_dir)  # where acknowledge looks for the stored files
        stamped = beam.Create(self.messages) | beam.Map(_stamp)
        if not self.reject_odd:
            return _as_outputs(stamped)
        return _as_outputs(stamped, split=True)

    def acknowledge(self, window: str, sources: list[str]) -> None:
        """Record the acknowledgement and which of the window's files already exist."""
        out = Path(self.__dict__["_out"])
        stored = {
            "examples": any((out / "examples" / window).glob("part-*.tfrecord.gz")),
            "rejected": (out / "rejected" / f"{window}.jsonl").is_file(),
        }
        entry = {"window": window, "sources": sorted(sources), "stored": stored}
        with open(self.acks, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(entry) + "\n")


def _as_outputs(stamped: Any, split: bool = False) -> Any:
    import apache_beam as beam

    @beam.ptransform_fn
    def _read(root: Any) -> dict[str, Any]:
        records = root | "Messages" >> stamped
        if not split:
            empty = root | "No rejects" >> beam.Create([])
            return {"main": records, "rejected": empty}
        outs = records | "Check" >> beam.FlatMap(_reject_odd).with_outputs("rejected", main="main")
        return {"main": outs["main"], "rejected": outs["rejected"]}

    return _read()


@hookimpl
def register_streams(register: Any) -> None:
    """Register ``memory_stream``."""
    register(MemoryStream)
