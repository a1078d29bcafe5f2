"""Case 4: the ``image_input`` tf.data pipeline against a hand-tuned reference and a naive one,
and the share of training-step time spent waiting for input while training the digits CNN;
``keras_trainer`` against plain Keras ``model.fit`` (``bench.trainer_overhead``).

Images per second over a few epochs of the training split of the ingested photos (64x64 RGB
PNG in GZIP TFRecords), each variant in its own process, interleaved. The first batch (graph
building, opening files) is taken before the clock starts. Input wait: the digits CNN trained
as ``keras_trainer`` trains it (its input pipeline, one iterator over the repeated data, its
``steps_per_execution``), against the same steps on batches already held in memory; the share
of the training time that the in-memory run did not need is the time spent waiting for input
(batches come from inside the graph, so a Python timer around ``next()`` cannot see it).
"""

from __future__ import annotations

from typing import Any

from . import trainer_overhead
from .common import ROOT, interleaved, median, row, task
from .validation import prepare

CASE = "input"


def run(smoke: bool = False) -> list[dict[str, Any]]:
    """Throughput of framework / reference / naive, then the input wait during training."""
    count, size, epochs, repeats = (100, 32, 2, 1) if smoke else (10_000, 64, 3, 3)
    _, examples = prepare(count, size)
    variants = {
        name: (lambda n=name: task("input_pipeline", examples=examples, variant=n, epochs=epochs))
        for name in ("framework", "reference", "naive")
    }
    samples = interleaved(variants, repeats)
    rate = {n: median(s["images_per_s"] for s in v) for n, v in samples.items()}
    rows = []
    for name in ("reference", "naive", "framework"):
        wall = median(s["work_s"] for s in samples[name])
        cpu = median(s["work_cpu_s"] for s in samples[name])
        extra = {
            "images_per_s": round(rate[name], 1),
            "epoch_s": [round(x, 3) for x in samples[name][0]["epoch_s"]],
            "peak_rss_mib": median(s["peak_rss_mib"] for s in samples[name]),
        }
        if name != "framework":
            rows.append(row(CASE, f"{name} ({epochs} epochs)", wall, cpu, None, **extra))
            continue
        vs_ref, vs_naive = rate[name] / rate["reference"], rate[name] / rate["naive"]
        rows.append(
            row(
                CASE,
                f"image_input ({epochs} epochs)",
                wall,
                cpu,
                vs_ref,
                ">= 0.95x reference, >= 3x naive",
                vs_ref >= 0.95 and vs_naive >= 3.0,
                vs_naive=round(vs_naive, 3),
                **extra,
            )
        )
    facts = task(
        "train_wait",
        pipeline_file=str(ROOT / "pipelines" / "digits.yaml"),
        runs=str(ROOT / "bench" / ".cache" / "work" / "train-wait"),
        epochs=2 if smoke else 0,  # 0: the pipeline's own epochs (15)
    )
    train_epochs = len(facts["real_s"])
    real, ideal = sum(facts["real_s"]), sum(facts["ideal_s"])
    share = max(0.0, (real - ideal) / real)
    first = max(0.0, (facts["real_s"][0] - facts["ideal_s"][0]) / facts["real_s"][0])
    later_real, later_ideal = sum(facts["real_s"][1:]), sum(facts["ideal_s"][1:])
    later = max(0.0, (later_real - later_ideal) / later_real) if later_real else None
    rows.append(
        row(
            CASE,
            f"digits CNN input wait ({train_epochs} epochs)",
            facts["work_s"],
            facts["work_cpu_s"],
            share,
            "< 5% of step time",
            share < 0.05,
            training_s=round(real, 4),
            in_memory_s=round(ideal, 4),
            steps_per_epoch=facts["steps"],
            steps_per_call=facts["per_call"],
            first_epoch_share=round(first, 4),
            later_epochs_share=None if later is None else round(later, 4),
        )
    )
    return rows + trainer_overhead.run(smoke)
