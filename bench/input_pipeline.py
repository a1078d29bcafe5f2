"""Case 4: the ``image_input`` tf.data pipeline against a hand-tuned reference and a naive one,
and the share of training-step time spent waiting for input while training the digits CNN.

Images per second over a few epochs of the training split of the ingested photos (64x64 RGB
PNG in GZIP TFRecords), each variant in its own process, interleaved. The first batch (graph
building, opening files) is taken before the clock starts. Input wait: ``next()`` on the
dataset iterator timed apart from the train step (``float()`` of its loss waits for the step
to finish), over every epoch of a digits CNN fit with the framework's input pipeline and loop.
"""

from __future__ import annotations

from typing import Any

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
    train_epochs = 2 if smoke else 5
    facts = task(
        "train_wait",
        pipeline_file=str(ROOT / "pipelines" / "digits.yaml"),
        runs=str(ROOT / "bench" / ".cache" / "work" / "train-wait"),
        epochs=train_epochs,
    )
    per_epoch = facts["epochs"]
    wait = sum(e["wait_s"] for e in per_epoch)
    step = sum(e["step_s"] for e in per_epoch)
    share = wait / (wait + step)
    steady = per_epoch[1:] or per_epoch
    steady_share = sum(e["wait_s"] for e in steady) / sum(e["wait_s"] + e["step_s"] for e in steady)
    rows.append(
        row(
            CASE,
            f"digits CNN input wait ({train_epochs} epochs)",
            facts["work_s"],
            facts["work_cpu_s"],
            share,
            "< 5% of step time",
            share < 0.05,
            wait_s=round(wait, 4),
            step_s=round(step, 4),
            first_epoch_share=round(
                per_epoch[0]["wait_s"] / (per_epoch[0]["wait_s"] + per_epoch[0]["step_s"]), 4
            ),
            later_epochs_share=round(steady_share, 4),
            floor_share=round(facts["floor_wait_s_per_epoch"] * len(per_epoch) / (wait + step), 4),
        )
    )
    return rows
