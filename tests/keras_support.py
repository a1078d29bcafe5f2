"""Test support for the keras plugin: real examples artifacts and pipeline files that read them.

``write_examples`` turns a class-per-folder image dataset (``data_paths``) into an examples
artifact in the layout of ``beamline.examples`` (GZIP TFRecords of tf.train.Example per split,
features.json), so these tests do not depend on the ingest step. ``write_pipeline`` puts the
``prepared_examples`` source of ``examples_plugin`` in front of the steps under test.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from data_paths import TESTS_DIR

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg"}


def split_of(name: str, shares: tuple[float, float, float] = (0.8, 0.1, 0.1)) -> str:
    """A deterministic split for a file name (hash-based, like ingest's)."""
    bucket = int(hashlib.sha256(name.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    if bucket < shares[0]:
        return "train"
    return "eval" if bucket < shares[0] + shares[1] else "test"


def write_examples(
    dest: Path, data_dir: Path, *, per_class: int | None = None, shards: int = 2
) -> dict[str, list[Path]]:
    """Write an examples artifact of the images under ``data_dir/<class>/`` into ``dest``.

    Each example holds ``image`` (the file's bytes), ``label`` (the folder name) and ``path``
    (an id feature). Returns the image files of each split."""
    import tensorflow as tf

    classes = sorted(p.name for p in data_dir.iterdir() if p.is_dir())
    by_split: dict[str, list[Path]] = {"train": [], "eval": [], "test": []}
    for label in classes:
        files = sorted(
            f for f in (data_dir / label).iterdir() if f.suffix.lower() in IMAGE_SUFFIXES
        )
        for file in files[:per_class]:
            by_split[split_of(f"{label}/{file.name}")].append(file)
    for split, files in by_split.items():
        folder = dest / "examples" / split
        folder.mkdir(parents=True, exist_ok=True)
        writers = [
            tf.io.TFRecordWriter(
                str(folder / f"part-{i:05d}-of-{shards:05d}.tfrecord.gz"),
                options=tf.io.TFRecordOptions(compression_type="GZIP"),
            )
            for i in range(shards)
        ]
        for i, file in enumerate(files):
            example = tf.train.Example(
                features=tf.train.Features(
                    feature={
                        "image": _bytes(file.read_bytes()),
                        "label": _bytes(file.parent.name.encode()),
                        "path": _bytes(str(file).encode()),
                    }
                )
            )
            writers[i % shards].write(example.SerializeToString())
        for writer in writers:
            writer.close()
    spec = {
        "features": {
            "image": {"dtype": "bytes", "modality": "image"},
            "label": {"dtype": "bytes", "modality": "label"},
            "path": {"dtype": "bytes", "modality": "id"},
        },
        "label": "label",
        "classes": classes,
        "splits": {split: len(files) for split, files in by_split.items()},
    }
    (dest / "features.json").write_text(json.dumps(spec, indent=2), encoding="utf-8")
    return by_split


def _bytes(value: bytes) -> Any:
    import tensorflow as tf

    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))


def write_pipeline(folder: Path, examples: Path, steps: str, name: str = "kdigits") -> Path:
    """Write a pipeline file whose ``data`` step copies ``examples``, followed by ``steps``."""
    text = (
        f"name: {name}\n"
        "plugins: [examples_plugin]\n"
        "steps:\n"
        "  data:\n"
        "    component: prepared_examples\n"
        f"    folder: {examples}\n" + steps
    )
    path = folder / f"{name}.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def python_env(**extra: str) -> dict[str, str]:
    """The environment for a subprocess that runs pipelines with this module importable."""
    import os

    env = dict(os.environ)
    paths = [str(TESTS_DIR.parent), str(TESTS_DIR), env.get("PYTHONPATH", "")]
    env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    env.update(extra)
    return env


def run_script(pipeline_file: Path, runs_dir: Path, overrides: list[str]) -> str:
    """Python source that runs a pipeline file (for ``python -c`` in a subprocess)."""
    return (
        "import beamline\n"
        f"beamline.run({str(pipeline_file)!r}, {overrides!r}, runs_dir={str(runs_dir)!r})\n"
    )
