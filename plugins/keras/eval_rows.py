"""A split's examples in file order, read in bulk for the evaluator's slices and gallery.

The evaluator checks each prediction batch against the split's file order (labels equal: the
input pipeline did not regroup) and feeds the slices the first value of each slice feature and
the gallery the raw inputs of its few kept mistakes. ``FileOrderRows`` parses only the label and
the slice features, thousands of serialized examples per ``tf.io.parse_example`` call, and
decodes a whole example (``beamline.examples.decode_example``) only when the gallery asks for it:
the values are the ones a per-example decode gives (ints, floats of the stored float32, bytes;
None where a feature is missing).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from beamline.artifacts import Artifact
from beamline.examples import decode_example

#: Serialized examples parsed per call.
READ_BATCH = 4096


class FileOrderBatch:
    """Some consecutive examples: label indices, first values per feature, raw inputs."""

    def __init__(self, labels: Any, firsts: dict[str, list[Any]], serialized: list[bytes]) -> None:
        self.labels, self.firsts, self.serialized = labels, firsts, serialized

    def __len__(self) -> int:
        return len(self.serialized)

    def raw(self, inputs: list[str]) -> Callable[[int], dict[str, Any]]:
        """``raw(i)``: the ``i``-th example's first value of each input (None when missing)."""

        def one(i: int) -> dict[str, Any]:
            decoded = decode_example(self.serialized[i])
            return {name: ((decoded.get(name) or (None, []))[1] or [None])[0] for name in inputs}

        return one


class FileOrderRows:
    """The examples of ``split`` in file order, taken a batch at a time with ``take``."""

    def __init__(
        self,
        examples: Artifact,
        split: str,
        label: str,
        classes: list[str],
        features: dict[str, str],
    ) -> None:
        """``features``: name -> dtype (``bytes``, ``float``, ``int64``) of the slice features."""
        import tensorflow as tf

        from beamline_plugins.training.records import read_records

        dtypes = {"bytes": tf.string, "float": tf.float32, "int64": tf.int64}
        self.label, self.names = label, list(features)
        spec = {name: tf.io.RaggedFeature(dtypes[dtype]) for name, dtype in features.items()}
        self.index = {name.encode("utf-8"): i for i, name in enumerate(classes)}
        self.classes = classes

        def parse(serialized: Any) -> Any:
            parsed = tf.io.parse_example(serialized, spec)
            return serialized, {n: (r.flat_values, r.row_lengths()) for n, r in parsed.items()}

        ds = read_records(examples, split, None).batch(READ_BATCH).map(parse)
        self._batches = ds.prefetch(1).as_numpy_iterator()
        self._chunk: FileOrderBatch | None = None
        self._at = 0

    def _load(self) -> bool:
        import numpy as np

        entry = next(self._batches, None)
        if entry is None:
            return False
        serialized, parsed = entry
        firsts = {}
        for name, (values, lengths) in parsed.items():
            starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
            present = lengths > 0
            picked = values[starts[present]].tolist()
            column: list[Any] = [None] * len(lengths)
            for i, value in zip(np.flatnonzero(present).tolist(), picked, strict=True):
                column[i] = value
            firsts[name] = column
        labels = [self._label_index(v) for v in firsts[self.label]]
        self._chunk = FileOrderBatch(np.asarray(labels, dtype=np.int64), firsts, list(serialized))
        self._at = 0
        return True

    def _label_index(self, value: Any) -> int:
        if isinstance(value, int):
            return value
        if value is None:
            raise ValueError(f"an example without the label '{self.label}'")
        try:
            return self.index[value]
        except KeyError:
            raise ValueError(f"label {value!r} is not one of {self.classes}") from None

    def take(self, count: int) -> FileOrderBatch:
        """The next ``count`` examples (fewer at the end of the split)."""
        import numpy as np

        parts: list[FileOrderBatch] = []
        while count > 0:
            if self._chunk is None or self._at >= len(self._chunk):
                if not self._load():
                    break
            chunk, start = self._chunk, self._at
            assert chunk is not None
            end = min(len(chunk), start + count)
            parts.append(
                FileOrderBatch(
                    chunk.labels[start:end],
                    {n: v[start:end] for n, v in chunk.firsts.items()},
                    chunk.serialized[start:end],
                )
            )
            count -= end - start
            self._at = end
        if len(parts) == 1:
            return parts[0]
        return FileOrderBatch(
            np.concatenate([p.labels for p in parts]) if parts else np.zeros(0, dtype=np.int64),
            {n: [v for p in parts for v in p.firsts[n]] for n in self.names},
            [s for p in parts for s in p.serialized],
        )
