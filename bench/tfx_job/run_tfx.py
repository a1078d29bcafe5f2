"""Run the digits-table or the taxi job with TFX 1.16 (LocalDagRunner, Beam on the FnApiRunner).

    bench/.cache/tfx-venv/bin/python bench/tfx_job/run_tfx.py CSV_DIR WORK_DIR TRAIN_STEPS \
        [JOB [SEED [BEAM_RUNNER]]]

JOB: ``digits`` (default, ``digits_module.py``) or ``taxi`` (``taxi_module.py``); SEED seeds the
Trainer's Keras; BEAM_RUNNER: ``direct`` (default: FnApiRunner in process) or ``local`` (its
multi-process mode, 2 workers). CsvExampleGen (the folder's train/, eval/, test/ splits) ->
StatisticsGen -> SchemaGen -> ExampleValidator -> Transform -> Trainer (TRAIN_STEPS steps) ->
Evaluator (accuracy on test). Prints one JSON line with the test accuracy and the seconds.

Each component's wall time, CPU time (this process and its Beam workers) and peak resident
memory (the process tree, sampled every 0.2 s) are measured around its launch and written to
``WORK_DIR/progress.json`` as they go (the running component included, every few seconds), so
that a run stopped at a time limit still says how far it got.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import tensorflow_model_analysis as tfma  # noqa: E402
from tfx import v1 as tfx  # noqa: E402
from tfx.proto import example_gen_pb2  # noqa: E402

HERE = Path(__file__).resolve().parent
#: Per job: module file, the label the Evaluator reads, and whether it comes out of Transform.
#: The metric is the model's own: a softmax over classes (digits) or one sigmoid unit (taxi).
JOBS = {
    "digits": {
        "module": "digits_module.py",
        "label": "label",
        "transformed_label": False,
        "metric": ("SparseCategoricalAccuracy", "sparse_categorical_accuracy"),
    },
    "taxi": {
        "module": "taxi_module.py",
        "label": "big_tipper",
        "transformed_label": True,
        "metric": ("BinaryAccuracy", "binary_accuracy"),
    },
}
BEAM_ARGS = {
    "direct": ["--runner=FnApiRunner", "--direct_num_workers=1"],
    "local": [
        "--runner=FnApiRunner",
        "--direct_running_mode=multi_processing",
        "--direct_num_workers=2",
    ],
}


def build(
    csv_dir: str,
    work: Path,
    train_steps: int,
    job: str = "digits",
    seed: int = 0,
    runner: str = "direct",
) -> tfx.dsl.Pipeline:
    """The TFX pipeline of the job."""
    settings = JOBS[job]
    module = str(HERE / settings["module"])
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
        module_file=module,
        splits_config=tfx.proto.SplitsConfig(analyze=["train"], transform=["train", "eval"]),
    )
    trainer = tfx.components.Trainer(
        module_file=module,
        examples=transform.outputs["transformed_examples"],
        transform_graph=transform.outputs["transform_graph"],
        schema=schema.outputs["schema"],
        train_args=tfx.proto.TrainArgs(num_steps=train_steps),
        eval_args=tfx.proto.EvalArgs(num_steps=None),
        custom_config={"seed": seed},
    )
    model_spec = tfma.ModelSpec(label_key=settings["label"])
    if settings["transformed_label"]:  # the label exists only after Transform
        model_spec = tfma.ModelSpec(
            label_key=settings["label"], preprocessing_function_names=["transform_features"]
        )
    eval_config = tfma.EvalConfig(
        model_specs=[model_spec],
        slicing_specs=[tfma.SlicingSpec()],
        metrics_specs=[
            tfma.MetricsSpec(metrics=[tfma.MetricConfig(class_name=settings["metric"][0])])
        ],
    )
    evaluator = tfx.components.Evaluator(
        examples=example_gen.outputs["examples"],
        model=trainer.outputs["model"],
        eval_config=eval_config,
        example_splits=["test"],
    )
    return tfx.dsl.Pipeline(
        pipeline_name=f"{job}_table",
        pipeline_root=str(work / "root"),
        components=[example_gen, statistics, schema, validator, transform, trainer, evaluator],
        metadata_connection_config=tfx.orchestration.metadata.sqlite_metadata_connection_config(
            str(work / "metadata.db")
        ),
        beam_pipeline_args=BEAM_ARGS[runner],
        enable_cache=False,
    )


def accuracy(work: Path, metric: str = "sparse_categorical_accuracy") -> float | None:
    """The test accuracy (``metric``) the Evaluator wrote."""
    for path in sorted((work / "root" / "Evaluator").rglob("metrics*")):
        try:
            result = tfma.load_metrics(str(path.parent))
        except Exception:  # noqa: BLE001 - try the next candidate folder
            continue
        for metrics in result:
            for entry in metrics.metric_keys_and_values:
                if entry.key.name == metric:
                    return float(entry.value.double_value.value)
    return None


def component_seconds(work: Path) -> dict[str, float]:
    """Seconds of each component's execution, from the metadata store (start to last update)."""
    from ml_metadata.metadata_store import metadata_store

    config = tfx.orchestration.metadata.sqlite_metadata_connection_config(str(work / "metadata.db"))
    store = metadata_store.MetadataStore(config)
    names = {t.id: t.name.rsplit(".", 1)[-1] for t in store.get_execution_types()}
    out: dict[str, float] = {}
    for execution in store.get_executions():
        seconds = execution.last_update_time_since_epoch - execution.create_time_since_epoch
        name = names.get(execution.type_id, str(execution.type_id))
        out[name] = out.get(name, 0.0) + seconds / 1000
    return out


class Progress:
    """Wall, CPU and peak RSS per component, kept in ``progress.json`` while the run goes."""

    def __init__(self, path: Path, interval: float = 0.2, write_every: float = 2.0) -> None:
        import psutil

        self.path, self.interval, self.write_every = path, interval, write_every
        self.process = psutil.Process()
        self.started = time.perf_counter()
        self.components: dict[str, dict[str, Any]] = {}
        self.current: str | None = None
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True)

    def _tree(self) -> tuple[float, float]:
        """Resident MiB and CPU seconds of this process and its live descendants."""
        rss, cpu = 0.0, 0.0
        for proc in [self.process, *self.process.children(recursive=True)]:
            try:
                rss += proc.memory_info().rss
                times = proc.cpu_times()
                cpu += times.user + times.system + times.children_user + times.children_system
            except Exception:  # noqa: BLE001 - a worker ended between listing and reading
                continue
        return rss / 2**20, cpu

    def start(self, name: str) -> None:
        """Begin measuring component ``name``."""
        rss, cpu = self._tree()
        with self.lock:
            self.current = name
            self.components[name] = {"state": "running", "wall_s": 0.0, "cpu_s": 0.0,
                                     "peak_rss_mib": rss, "_t0": time.perf_counter(),
                                     "_cpu0": cpu}  # fmt: skip
        self._write()

    def finish(self, name: str) -> None:
        """End measuring component ``name``."""
        self._update()
        with self.lock:
            self.components[name]["state"] = "finished"
            self.current = None
        self._write()

    def _update(self) -> None:
        rss, cpu = self._tree()
        with self.lock:
            if self.current is None:
                return
            entry = self.components[self.current]
            entry["wall_s"] = time.perf_counter() - entry["_t0"]
            entry["cpu_s"] = cpu - entry["_cpu0"]
            entry["peak_rss_mib"] = max(entry["peak_rss_mib"], rss)

    def _write(self) -> None:
        with self.lock:
            facts = {
                "elapsed_s": time.perf_counter() - self.started,
                "running": self.current,
                "components": {
                    name: {k: v for k, v in entry.items() if not k.startswith("_")}
                    for name, entry in self.components.items()
                },
            }
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(facts, indent=1))
        tmp.replace(self.path)

    def _sample(self) -> None:
        last = time.perf_counter()
        while not self.done.wait(self.interval):
            self._update()
            if time.perf_counter() - last >= self.write_every:
                self._write()
                last = time.perf_counter()

    def watch(self) -> None:
        """Measure every component the LocalDagRunner launches from now on."""
        from tfx.orchestration.portable import launcher

        original = launcher.Launcher.launch
        progress = self

        def launch(launcher_self: Any) -> Any:
            name = launcher_self._pipeline_node.node_info.id  # noqa: SLF001
            progress.start(name)
            try:
                return original(launcher_self)
            finally:
                progress.finish(name)

        launcher.Launcher.launch = launch
        self.thread.start()

    def summary(self) -> dict[str, dict[str, Any]]:
        """The finished figures per component."""
        self.done.set()
        self._write()
        return json.loads(self.path.read_text())["components"]


def main() -> None:
    """Run the pipeline and print its facts as JSON."""
    csv_dir, work, steps = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
    job = sys.argv[4] if len(sys.argv) > 4 else "digits"
    seed = int(sys.argv[5]) if len(sys.argv) > 5 else 0
    runner = sys.argv[6] if len(sys.argv) > 6 else "direct"
    work.mkdir(parents=True, exist_ok=True)
    progress = Progress(work / "progress.json")
    progress.watch()
    started = time.perf_counter()
    tfx.orchestration.LocalDagRunner().run(build(csv_dir, work, steps, job, seed, runner))
    seconds = time.perf_counter() - started
    facts = {
        "work_s": seconds,
        "accuracy": accuracy(work, JOBS[job]["metric"][1]),
        "steps": component_seconds(work),
        "components": progress.summary(),
    }
    print(json.dumps(facts), flush=True)


if __name__ == "__main__":
    main()
