"""Case 2: image ingest (decode check, resize, tf.train.Example, sharded TFRecords).

Variants, interleaved, each in its own process:

* ``loop``: a hand-written single-process loop (Pillow decode, resize, PNG encode,
  ``beamline.examples.encode_example``, GZIP TFRecord shards);
* ``direct``: ``beamline.run`` of a one-step pipeline (image_folder + decode_image +
  resize_image) on the in-process Beam runner;
* ``local``: the same on Beam's multi-processing runner with 2 workers.

Photos are deterministic variations of the 500 real sign-language photos
(``bench.common.photos``). Throughput ratios use the wall time of the work (after imports);
CPU seconds include Beam's worker processes.
"""

from __future__ import annotations

import sys
from typing import Any

from .common import CACHE, interleaved, median, photos, row, task

CASE = "ingest"
#: The variants of the pairs over sizes.
PAIR = ("direct", "local")


def _variants(root: str, size: int) -> dict[str, Any]:
    out = str(CACHE / "work" / "ingest")
    return {
        "loop": lambda: task("ingest_loop", root=root, out=out + "/loop", size=size),
        "direct": lambda: task(
            "ingest_pipeline", root=root, out=out + "/direct", runner="direct", size=size
        ),
        "local": lambda: task(
            "ingest_pipeline",
            root=root,
            out=out + "/local",
            runner="local",
            workers=2,
            size=size,
        ),
    }


def _logged(name: str, variant: Any) -> Any:
    """``variant``, printing each sample to stderr as it ends (a long run's progress)."""

    def run_and_log() -> dict[str, Any]:
        sample = variant()
        facts = {k: sample.get(k) for k in ("work_s", "work_cpu_s", "peak_rss_mib")}
        print(f"{name}: {facts}", file=sys.stderr, flush=True)
        return sample

    return run_and_log


def _summary(samples: list[dict[str, Any]]) -> tuple[float, float, float]:
    wall = median(s["work_s"] for s in samples)
    cpu = median(s["work_cpu_s"] for s in samples)
    peak = median(s["peak_rss_mib"] for s in samples)
    return wall, cpu, peak


def run(
    smoke: bool = False,
    main: int | None = None,
    repeats: int | None = None,
    sizes: list[int] | None = None,
    with_local: bool = True,
) -> list[dict[str, Any]]:
    """Loop vs direct vs local at the main size, then local vs direct over several sizes
    (``main``, ``repeats``, ``sizes``, ``with_local``: other than the defaults, for
    ``python -m bench.ingest``)."""
    main = main or (100 if smoke else 10_000)
    repeats = repeats or (1 if smoke else 3)
    if sizes is None:
        sizes = [100] if smoke else [1_000, 10_000, 25_000, 50_000]
    size = 32 if smoke else 64
    rows: list[dict[str, Any]] = []
    root = str(photos(main))
    variants = _variants(root, size)
    if not with_local:
        del variants["local"]
    samples = interleaved({k: _logged(k, v) for k, v in variants.items()}, repeats)
    loop_wall, loop_cpu, loop_peak = _summary(samples["loop"])
    direct_wall, direct_cpu, direct_peak = _summary(samples["direct"])
    rows.append(row(CASE, f"loop {main}", loop_wall, loop_cpu, 1.0, peak_rss_mib=loop_peak,
                    photos_per_s=round(main / loop_wall, 1)))  # fmt: skip
    ratio = loop_wall / direct_wall
    rows.append(
        row(
            CASE,
            f"direct {main}",
            direct_wall,
            direct_cpu,
            ratio,
            ">= 0.95x loop throughput",
            ratio >= 0.95,
            peak_rss_mib=direct_peak,
            photos_per_s=round(main / direct_wall, 1),
            cpu_ratio=round(loop_cpu / direct_cpu, 3),
        )
    )
    if with_local:
        local_wall, local_cpu, local_peak = _summary(samples["local"])
        rows.append(
            row(
                CASE,
                f"local(2) {main}",
                local_wall,
                local_cpu,
                loop_wall / local_wall,
                "",
                None,
                peak_rss_mib=local_peak,
                photos_per_s=round(main / local_wall, 1),
                speedup_vs_direct=round(direct_wall / local_wall, 3),
            )
        )
    # Where does local start to win over direct? One interleaved pair per size (the main size
    # already has its medians); the largest size carries the 1.5x target.
    for count in sizes:
        if count == main:
            continue
        root = str(photos(count))
        variants = _variants(root, size)
        pair = interleaved({k: _logged(f"{k} {count}", variants[k]) for k in PAIR}, 1)
        d_wall, d_cpu, d_peak = _summary(pair["direct"])
        l_wall, l_cpu, l_peak = _summary(pair["local"])
        speedup = d_wall / l_wall
        largest = count == max(sizes)
        rows.append(row(CASE, f"direct {count}", d_wall, d_cpu, None, peak_rss_mib=d_peak,
                        photos_per_s=round(count / d_wall, 1)))  # fmt: skip
        rows.append(
            row(
                CASE,
                f"local(2) {count}",
                l_wall,
                l_cpu,
                speedup,
                ">= 1.5x direct" if largest else "ratio = speedup vs direct",
                speedup >= 1.5 if largest else None,
                peak_rss_mib=l_peak,
                photos_per_s=round(count / l_wall, 1),
            )
        )
    return rows


def main() -> None:
    """``python -m bench.ingest [--main N] [--repeats R] [--sizes N ...]``: this case alone, with
    other sizes (``--sizes`` with no value: the main size only); prints the rows as JSON."""
    import argparse
    import json

    parser = argparse.ArgumentParser(prog="python -m bench.ingest", description=main.__doc__)
    parser.add_argument("--main", type=int, help="photos of the loop/direct/local comparison")
    parser.add_argument("--repeats", type=int, help="interleaved repeats at the main size")
    parser.add_argument("--sizes", type=int, nargs="*", help="sizes of the local/direct pairs")
    parser.add_argument("--no-local", action="store_true", help="no local run at the main size")
    args = parser.parse_args()
    rows = run(main=args.main, repeats=args.repeats, sizes=args.sizes, with_local=not args.no_local)
    for entry in rows:
        print(json.dumps(entry))


if __name__ == "__main__":
    main()
