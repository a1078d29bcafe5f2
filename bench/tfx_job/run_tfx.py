"""Run the digits-table job with TFX 1.16 (LocalDagRunner, Beam on the FnApiRunner).

    bench/.cache/tfx-venv/bin/python bench/tfx_job/run_tfx.py CSV_DIR WORK_DIR TRAIN_STEPS

CsvExampleGen (the folder's train/, eval/, test/ splits) -> StatisticsGen -> SchemaGen ->
ExampleValidator -> Transform -> Trainer (TRAIN_STEPS steps) -> Evaluator (accuracy on test).
Prints one JSON line with the test accuracy and the seconds of each component.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import tensorflow_model_analysis as tfma  # noqa: E402
from tfx import v1 as tfx  # noqa: E402
from tfx.proto import example_gen_pb2  # noqa: E402

HERE = Path(__file__).resolve().parent


def build(csv_dir: str, work: Path, train_steps: int) -> tfx.dsl.Pipeline:
    """The TFX pipeline of the job."""
    # The splits are fixed by the data (train/, eval/, test/ folders), the same rows ours reads.
    splits = example_gen_pb2.Input(
        splits=[
            example_gen_pb2.Input.Split(name=name, pattern=f"{name}/*.csv")
            for name in ("train", "eval", "test")
        ]
    )
    example_gen = tfx.components.CsvExampleGen(input_base=csv_dir, input_config=splits)
    statistics = tfx.components.StatisticsGen(examples=example_gen.outputs["examples"])
    schema = tfx.components.SchemaGen(statistics=statistics.outputs["statistics"])
    validator = tfx.components.ExampleValidator(
        statistics=statistics.outputs["statistics"], schema=schema.outputs["schema"]
    )
    transform = tfx.components.Transform(
        examples=example_gen.outputs["examples"],
        schema=schema.outputs["schema"],
        module_file=str(HERE / "digits_module.py"),
        splits_config=tfx.proto.SplitsConfig(analyze=["train"], transform=["train", "eval"]),
    )
    trainer = tfx.components.Trainer(
        module_file=str(HERE / "digits_module.py"),
        examples=transform.outputs["transformed_examples"],
        transform_graph=transform.outputs["transform_graph"],
        schema=schema.outputs["schema"],
        train_args=tfx.proto.TrainArgs(num_steps=train_steps),
        eval_args=tfx.proto.EvalArgs(num_steps=None),
    )
    eval_config = tfma.EvalConfig(
        model_specs=[tfma.ModelSpec(label_key="label")],
        slicing_specs=[tfma.SlicingSpec()],
        metrics_specs=[
            tfma.MetricsSpec(metrics=[tfma.MetricConfig(class_name="SparseCategoricalAccuracy")])
        ],
    )
    evaluator = tfx.components.Evaluator(
        examples=example_gen.outputs["examples"],
        model=trainer.outputs["model"],
        eval_config=eval_config,
        example_splits=["test"],
    )
    return tfx.dsl.Pipeline(
        pipeline_name="digits_table",
        pipeline_root=str(work / "root"),
        components=[example_gen, statistics, schema, validator, transform, trainer, evaluator],
        metadata_connection_config=tfx.orchestration.metadata.sqlite_metadata_connection_config(
            str(work / "metadata.db")
        ),
        beam_pipeline_args=["--runner=FnApiRunner", "--direct_num_workers=1"],
        enable_cache=False,
    )


def accuracy(work: Path) -> float | None:
    """The test accuracy the Evaluator wrote."""
    for path in sorted((work / "root" / "Evaluator").rglob("metrics*")):
        try:
            result = tfma.load_metrics(str(path.parent))
        except Exception:  # noqa: BLE001 - try the next candidate folder
            continue
        for metrics in result:
            for entry in metrics.metric_keys_and_values:
                if entry.key.name == "sparse_categorical_accuracy":
                    return float(entry.value.double_value.value)
    return None


def main() -> None:
    """Run the pipeline and print its facts as JSON."""
    csv_dir, work, steps = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
    work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    tfx.orchestration.LocalDagRunner().run(build(csv_dir, work, steps))
    seconds = time.perf_counter() - started
    print(json.dumps({"work_s": seconds, "accuracy": accuracy(work)}), flush=True)


if __name__ == "__main__":
    main()
