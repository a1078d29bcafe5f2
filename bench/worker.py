"""One measured variant, run in its own process: ``python -m bench.worker TASK 'JSON ARGS'``.

Each task imports what it needs first, then times only its work and prints one JSON line:
``work_s`` (wall seconds), ``work_cpu_s`` (CPU seconds of this process and of the child
processes it waited for) and task-specific facts. ``bench.common.measured`` adds the process
tree's peak memory and the totals.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import resource
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import library_tasks

SPLITS = {"train": 0.8, "eval": 0.1, "test": 0.1}
SHARDS = 4


def _cpu() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _timed(fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    wall, cpu = time.perf_counter(), _cpu()
    facts = fn()
    return {"work_s": time.perf_counter() - wall, "work_cpu_s": _cpu() - cpu, **facts}


def _write_yaml(path: Path, data: dict[str, Any]) -> Path:
    import yaml

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def image_pipeline_file(
    out: Path, root: str, runner: str, workers: int, size: int, validate: str = ""
) -> Path:
    """A pipeline file: image_folder + decode_image + resize_image (and a tfdv step)."""
    steps: dict[str, Any] = {
        "ingest": {
            "component": "image_folder",
            "root": root,
            "transforms": ["decode_image", {"component": "resize_image", "size": size}],
            "split": SPLITS,
            "shards": SHARDS,
        }
    }
    if validate:
        steps["validate"] = {
            "component": "tfdv",
            "examples": "ingest",
            "schema": str(out / "schema.pbtxt"),
            "fail_on": "none",
            "in_memory_max_examples": 0 if validate == "beam" else 10**9,
        }
    return _write_yaml(
        out / "pipeline.yaml",
        {"name": "bench", "runner": {"name": runner, "workers": workers}, "steps": steps},
    )


# --- case 2: ingest ------------------------------------------------------------------------------


def ingest_pipeline(root: str, out: str, runner: str, workers: int = 0, size: int = 64) -> dict:
    """``beamline.run`` of a one-step pipeline (image_folder, decode_image, resize_image)."""
    import apache_beam  # noqa: F401  (imported before the clock starts, like the loop's Pillow)

    import beamline

    folder = Path(out)
    shutil.rmtree(folder, ignore_errors=True)
    file = image_pipeline_file(folder, root, runner, workers, size)

    def work() -> dict[str, Any]:
        result = beamline.run(file, runs_dir=folder / "runs", force=True)
        return {"counts": result.records[0].counts, "step_s": result.records[0].seconds}

    return _timed(work)


def _loop_record(path: Path, label: str, size: int) -> tuple[str, bytes]:
    from PIL import Image

    from beamline import examples as ex

    image = Image.open(io.BytesIO(path.read_bytes()))
    image.load()
    if image.mode not in ("L", "RGB"):
        image = image.convert("RGB")
    image = image.resize((size, size), Image.Resampling.BILINEAR)
    encoded = io.BytesIO()
    image.save(encoded, format="PNG")
    png = encoded.getvalue()
    example = ex.encode_example({"image": ("bytes", [png]), "label": ("bytes", [label])})
    return hashlib.sha256(example).hexdigest(), example


def ingest_loop(root: str, out: str, size: int = 64) -> dict:
    """The hand-written single-process loop doing the same work, shard files included."""
    import PIL.Image  # noqa: F401

    from beamline import examples as ex
    from beamline.ingest import shard_of, split_of

    folder = Path(out)
    shutil.rmtree(folder, ignore_errors=True)
    shares = list(SPLITS.items())

    def work() -> dict[str, Any]:
        shards: dict[tuple[str, int], list[tuple[str, bytes]]] = {}
        count = 0
        for label_dir in sorted(p for p in Path(root).iterdir() if p.is_dir()):
            for path in sorted(label_dir.iterdir()):
                if path.name.startswith("."):
                    continue
                digest, example = _loop_record(path, label_dir.name, size)
                split = split_of(digest.encode(), shares)
                shards.setdefault((split, shard_of(digest, SHARDS)), []).append((digest, example))
                count += 1
        for (split, shard), items in shards.items():
            target = folder / split
            target.mkdir(parents=True, exist_ok=True)
            name = f"part-{shard:05d}-of-{SHARDS:05d}.tfrecord.gz"
            ex.write_tfrecords(target / name, (data for _, data in sorted(items)))
        return {"counts": {"written": count}}

    return _timed(work)


# --- case 3: validation --------------------------------------------------------------------------


def prepare_examples(root: str, out: str, size: int = 64) -> dict:
    """Run the ingest once into ``out/runs`` so validation variants share its TFRecords."""
    import beamline

    folder = Path(out)
    file = image_pipeline_file(folder, root, "direct", 0, size, validate="memory")
    result = beamline.run(file, runs_dir=folder / "runs")
    return {"examples": str(beamline.open_run("bench", folder / "runs").artifact("ingest").path),
            "counts": result.records[0].counts}  # fmt: skip


def tfdv_step(out: str, path: str, plots: bool = True) -> dict:
    """The ``tfdv`` step (``path``: memory or beam) on the examples ``prepare_examples`` wrote;
    ``plots``: its report draws one SVG plot per feature (the default) or none."""
    import apache_beam  # noqa: F401
    import tensorflow  # noqa: F401
    import tensorflow_data_validation  # noqa: F401

    import beamline

    folder = Path(out)
    data = _load_yaml(folder / "pipeline.yaml")
    data["steps"]["validate"].update(
        in_memory_max_examples=0 if path == "beam" else 10**9,
        schema=str(folder / f"schema-{path}.pbtxt"),
        plots=plots,
    )
    file = _write_yaml(folder / f"validate-{path}.yaml", data)
    (folder / f"schema-{path}.pbtxt").unlink(missing_ok=True)  # inferred every time

    def work() -> dict[str, Any]:
        result = beamline.run(file, runs_dir=folder / "runs", force=["validate"])
        record = {r.step: r for r in result.records}
        return {"step_s": record["validate"].seconds, "ingest": record["ingest"].status}

    return _timed(work)


def _load_yaml(path: Path) -> dict[str, Any]:
    import yaml

    return yaml.safe_load(path.read_text(encoding="utf-8"))


def tfdv_direct(examples: str, out: str, path: str) -> dict:
    """TFDV called directly on the same TFRecords: statistics per split, schema, validation.

    The same TFDV work the step does: statistics of each split (in memory or with Beam),
    infer the schema from train, validate every split, skew train vs eval, drift against the
    statistics written last time."""
    import apache_beam as beam
    import tensorflow as tf
    import tensorflow_data_validation as tfdv
    from tensorflow_metadata.proto.v0 import schema_pb2, statistics_pb2
    from tfx_bsl.coders import example_coder
    from tfx_bsl.public import tfxio

    folder = Path(out) / f"direct-{path}"
    folder.mkdir(parents=True, exist_ok=True)
    splits = sorted(p.name for p in (Path(examples) / "examples").iterdir())
    seed = schema_pb2.Schema()
    seed.feature.add(name="image", type=schema_pb2.BYTES).image_domain.SetInParent()
    options = tfdv.StatsOptions(schema=seed)

    def files(split: str) -> list[str]:
        return sorted(str(f) for f in (Path(examples) / "examples" / split).iterdir())

    def work() -> dict[str, Any]:
        stats: dict[str, Any] = {}
        if path == "beam":
            args = ["--runner=FnApiRunner", "--direct_num_workers=1"]
            with beam.Pipeline(options=beam.options.pipeline_options.PipelineOptions(args)) as p:
                for split in splits:
                    _ = (
                        p
                        | f"Read {split}" >> tfxio.TFExampleRecord(files(split)).BeamSource()
                        | f"Stats {split}" >> tfdv.GenerateStatistics(options)
                        | f"Write {split}"
                        >> tfdv.WriteStatisticsToBinaryFile(str(folder / f"{split}.pb"))
                    )
            for split in splits:
                stats[split] = statistics_pb2.DatasetFeatureStatisticsList.FromString(
                    (folder / f"{split}.pb").read_bytes()
                )
        else:
            from tensorflow_data_validation.statistics import stats_impl

            decoder = example_coder.ExamplesToRecordBatchDecoder()
            for split in splits:
                ds = tf.data.TFRecordDataset(files(split), compression_type="GZIP")
                batch = decoder.DecodeBatch([r.numpy() for r in ds])
                stats[split] = stats_impl.generate_statistics_in_memory(batch, options)
                (folder / f"{split}.pb").write_bytes(stats[split].SerializeToString())
        schema = tfdv.infer_schema(stats["train"])
        for feature in schema.feature:
            if feature.name == "image":
                feature.ClearField("domain")
                feature.image_domain.SetInParent()
        previous = {
            s: statistics_pb2.DatasetFeatureStatisticsList.FromString(f.read_bytes())
            for s in splits
            if (f := folder / f"previous-{s}.pb").exists()
        }
        skew_schema = schema_pb2.Schema()
        skew_schema.CopyFrom(schema)
        tfdv.get_feature(skew_schema, "label").skew_comparator.infinity_norm.threshold = 1.0
        tfdv.get_feature(skew_schema, "label").drift_comparator.infinity_norm.threshold = 1.0
        anomalies = 0
        for split in splits:
            anomalies += len(tfdv.validate_statistics(stats[split], schema).anomaly_info)
            if split == "train":
                tfdv.validate_statistics(
                    stats[split], skew_schema, serving_statistics=stats["eval"]
                )
            if split in previous:
                tfdv.validate_statistics(
                    stats[split], skew_schema, previous_statistics=previous[split]
                )
            shutil.copy(folder / f"{split}.pb", folder / f"previous-{split}.pb")
        return {"anomalies": anomalies}

    return _timed(work)


# --- case 4: input pipeline ----------------------------------------------------------------------


def input_pipeline(examples: str, variant: str, epochs: int, batch_size: int = 64) -> dict:
    """Images per second of one tf.data pipeline variant over ``epochs`` epochs of train."""
    import tensorflow as tf

    from beamline.artifacts import Artifact
    from bench import datasets

    artifact = Artifact.open(examples)
    ds = datasets.build(variant, artifact, batch_size)  # no warm-up: it would fill the cache

    def work() -> dict[str, Any]:
        images = 0
        per_epoch = []
        for _ in range(epochs):
            began = time.perf_counter()
            for features, _labels in ds:
                images += int(tf.shape(next(iter(features.values())))[0])
            per_epoch.append(time.perf_counter() - began)
        return {"images": images, "epoch_s": per_epoch}

    facts = _timed(work)
    facts["images_per_s"] = facts["images"] / facts["work_s"]
    return facts


def train_wait(pipeline_file: str, runs: str, epochs: int = 0) -> dict:
    """Train the digits CNN as keras_trainer does (one iterator over the repeated, prefetched
    data, started while the model is built and the steps traced; ``steps_per_execution`` steps
    per graph call), then the same steps on batches held in memory: the difference is the time
    training waited for its input pipeline."""
    import keras
    import tensorflow as tf

    import beamline
    from beamline_plugins.training.loop import (
        Primer,
        make_loss,
        make_steps,
        run_epoch,
        trace_ahead,
        training_stream,
    )
    from beamline_plugins.training.records import label_info, split_size

    spec, _ = beamline.load(pipeline_file)
    result = beamline.run(_only_ingest(Path(pipeline_file), Path(runs)), runs_dir=runs)
    examples = beamline.open_run(result.run.path).artifact("ingest")
    trainer = spec.step("train").component
    strategy = tf.distribute.get_strategy()
    inputs = trainer.input.model_inputs(examples)
    _, classes = label_info(examples)
    steps = math.ceil(split_size(examples, "train") / trainer.batch_size)  # as the trainer does
    per_call = trainer.steps_per_execution
    epochs = epochs or trainer.epochs  # default: as many as the pipeline trains

    def dataset() -> Any:
        return trainer.input.dataset(
            examples, "train", inputs=inputs, training=True, batch_size=trainer.batch_size
        )

    # In memory: one epoch's batches of another instance of the pipeline, replayed from RAM.
    held = dataset().take(steps).cache()
    for _ in held:
        pass

    def fit(data: Any) -> list[float]:
        iterator = iter(training_stream(data, per_call))
        primer = Primer(iterator)
        keras.utils.set_random_seed(0)
        model = trainer.model.build(inputs, len(classes))
        optimizer = keras.optimizers.Adam(trainer.learning_rate)
        optimizer.build(model.trainable_variables)
        loss = make_loss("crossentropy", len(classes), 0.0)
        train_step, _ = make_steps(strategy, model, optimizer, loss)
        trace_ahead(train_step, iterator)
        first = primer.batch()
        seconds = []
        for _ in range(epochs):
            began = time.perf_counter()
            run_epoch(train_step, iterator, steps, per_call=per_call, first=first)
            seconds.append(time.perf_counter() - began)
            first = None
        return seconds

    def work() -> dict[str, Any]:
        # Alternated five times, the fastest of each kept: a busy machine slows one run, not
        # all of them (the whole fit lasts about a second, so noise is of the wait's order).
        runs: dict[str, list[list[float]]] = {"real": [], "ideal": []}
        for _ in range(5):
            runs["real"].append(fit(dataset()))
            runs["ideal"].append(fit(held))
        real, ideal = (min(runs[name], key=sum) for name in ("real", "ideal"))
        return {"real_s": real, "ideal_s": ideal, "steps": steps, "per_call": per_call}

    return _timed(work)


def _only_ingest(file: Path, runs: Path) -> Path:
    data = _load_yaml(file)
    data["steps"] = {"ingest": data["steps"]["ingest"]}
    root = data["steps"]["ingest"]["root"]
    data["steps"]["ingest"]["root"] = str((file.parent / root).resolve())
    return _write_yaml(runs / "ingest-only.yaml", data)


TASKS: dict[str, Callable[..., dict]] = {
    "ingest_pipeline": ingest_pipeline,
    "ingest_loop": ingest_loop,
    "prepare_examples": prepare_examples,
    "tfdv_step": tfdv_step,
    "tfdv_direct": tfdv_direct,
    "input_pipeline": input_pipeline,
    "train_wait": train_wait,
}
TASKS.update(library_tasks.TASKS)


def main() -> None:
    """Run the task named on the command line and print its JSON result."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    task, args = sys.argv[1], json.loads(sys.argv[2]) if len(sys.argv) > 2 else {}
    result = TASKS[task](**args)
    print(json.dumps(result, default=str), flush=True)


if __name__ == "__main__":
    main()
