"""Case 7: maintained libraries against the hand-written code they replace (or do not).

Each pair runs the same whole step in fresh processes, interleaved, on shipped data, with one
implementation swapped in (``bench/library_tasks.py``; the replaced code is frozen in
``bench/reference``), and checks that both sides write the same thing:

- audio: the ingest step of the 960 spoken-digit clips (8 kHz) resampled to 16 kHz: numpy WAV
  parsing + the numpy polyphase resampler (before) / numpy WAV + soxr / soundfile + soxr;
  the parts per clip (header, decode, encode, resample) and soxr's output against the old
  resampler's (max abs difference, SNR overall and by band).
- codec: the ingest steps of the digits and SMS pipelines with the hand-written
  ``tf.train.Example`` codec against protobuf's runtime (shards byte-identical), and both
  codecs per record on the written shards.
- plots: the ``tfdv`` step of the digits and diabetes pipelines with the hand-written SVG plots
  against the same plots drawn by matplotlib.

``ratio``: the variant's step time over the first (reference) variant's.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from .common import CACHE, ROOT, interleaved, median, row, task

CASE = "libraries"
SPOKEN_DIGITS = ROOT / "pipelines" / "data" / "spoken_digits"


def _clips(count: int) -> Path:
    """The spoken-digit folder, or a copy of its first ``count`` clips per digit."""
    if count <= 0:
        return SPOKEN_DIGITS
    folder = CACHE / f"spoken-digits-{count}"
    if not folder.exists():
        for digit in sorted(p for p in SPOKEN_DIGITS.iterdir() if p.is_dir()):
            (folder / digit.name).mkdir(parents=True, exist_ok=True)
            for clip in sorted(digit.glob("*.wav"))[:count]:
                shutil.copy(clip, folder / digit.name / clip.name)
    return folder


def _rows(
    samples: dict[str, list[dict[str, Any]]], label: str, reference: str, **extra: Any
) -> list[dict[str, Any]]:
    base = median(s["step_s"] for s in samples[reference])
    rows = []
    for name, runs in samples.items():
        step = median(s["step_s"] for s in runs)
        digests = sorted({str(s.get("digest", "")) for s in runs})
        rows.append(
            row(
                CASE,
                f"{label}: {name}",
                median(s["work_s"] for s in runs),
                median(s["work_cpu_s"] for s in runs),
                step / base,
                peak_rss_mib=median(s["peak_rss_mib"] for s in runs),
                step_s=round(step, 4),
                step_runs_s=[round(s["step_s"], 3) for s in runs],
                digests=digests,
                **{k: v for k, v in runs[0].items() if k in ("plots",)},
                **(
                    {"plots_s": round(median(s["plots_s"] for s in runs), 4)}
                    if "plots_s" in runs[0]
                    else {}
                ),
                **extra,
            )  # fmt: skip
        )
    return rows


def audio(smoke: bool) -> list[dict[str, Any]]:
    """Whole ingest step with each WAV reader / resampler pair, and the parts per clip."""
    root = str(_clips(2 if smoke else 0))
    out = str(CACHE / "work" / "libraries-audio")
    pairs = {
        "numpy wav + polyphase (before)": ("numpy", "polyphase"),
        "numpy wav + soxr": ("numpy", "soxr"),
        "soundfile + soxr": ("soundfile", "soxr"),
    }
    variants = {
        name: lambda w=w, r=r: task("audio_step", root=root, out=out, wav=w, resampler=r)
        for name, (w, r) in pairs.items()
    }
    samples = interleaved(variants, 1 if smoke else 5)
    parts = task("audio_parts", root=root)
    parts = {k: v for k, v in parts.items() if not k.startswith(("work", "total", "peak"))}
    rows = _rows(samples, "audio step", "numpy wav + polyphase (before)")
    rows[0]["parts"] = parts
    return rows


def codec(smoke: bool) -> list[dict[str, Any]]:
    """Whole ingest steps with each Example codec, and both codecs per record."""
    rows, written = [], []
    for pipeline in ("digits.yaml", "sms_spam.yaml"):
        out = str(CACHE / "work" / f"libraries-codec-{pipeline.split('.')[0]}")
        variants = {
            name: lambda c=c, p=pipeline, o=out: task("codec_step", pipeline=p, out=o, codec=c)
            for name, c in (("hand-written", "hand"), ("protobuf", "protobuf"))
        }
        samples = interleaved(variants, 1 if smoke else 5)
        rows += _rows(samples, f"codec {pipeline}", "hand-written")
        runs = Path(out) / "runs"
        written += [str(p) for p in sorted(runs.glob("*/*/ingest"))[-1:]]
    parts = task("codec_parts", examples=written)
    rows[0]["parts"] = {k: v for k, v in parts.items() if not k.startswith(("work", "total"))}
    return rows


def plots(smoke: bool) -> list[dict[str, Any]]:
    """The tfdv step with hand-written SVG plots against matplotlib's."""
    rows = []
    for pipeline in ("digits.yaml",) if smoke else ("digits.yaml", "diabetes.yaml"):
        out = str(CACHE / "work" / f"libraries-plots-{pipeline.split('.')[0]}")
        variants = {
            name: lambda p=pipeline, o=out, v=v: task("plots_step", pipeline=p, out=o, plotter=v)
            for name, v in (("svg (hand-written)", "svg"), ("matplotlib", "matplotlib"))
        }
        if not smoke:
            for variant in variants.values():  # warm-up: ingest done, previous statistics
                variant()
        samples = interleaved(variants, 1 if smoke else 5)
        rows += _rows(samples, f"plots {pipeline}", "svg (hand-written)")
    return rows


def run(smoke: bool = False) -> list[dict[str, Any]]:
    """Every pair: audio, the Example codec, the validation plots."""
    return audio(smoke) + codec(smoke) + plots(smoke)
