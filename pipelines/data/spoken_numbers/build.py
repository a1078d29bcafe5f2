"""Build the spoken_numbers corpus: connected digit sequences joined from the shipped FSDD clips.

Run once from the repository root; its output is shipped beside it::

    .venv/bin/python pipelines/data/spoken_numbers/build.py            # writes the corpus
    .venv/bin/python pipelines/data/spoken_numbers/build.py --out DIR  # elsewhere (a check)

Every sequence joins 3-7 clips of ONE speaker from ``pipelines/data/spoken_digits`` (real
recordings of the Free Spoken Digit Dataset, 8 kHz PCM 16-bit), with 80-300 ms of digital
silence between clips and 0-300 ms before the first and after the last; its transcript is the
digits spoken, separated by spaces ("3 1 4"). The clips' samples are copied unchanged.

The split is by clip, so that no recording is in two splits: takes 0-4 of every speaker and digit
(FSDD's own test takes) make the test sequences, takes 5-6 the eval sequences and takes 7-15 the
train sequences. Within a split and speaker the clips are shuffled and cut into sequences of 3-7;
the train clips go through this twice (two shuffles), so each train clip is in two train sequences
and each eval or test clip in exactly one. Everything is drawn from ``random.Random(SEED)`` in a
fixed order: the same input gives byte-identical output.

Output: ``<split>/<speaker>_<split>_<n>.wav`` and ``manifest.csv`` with the columns path, text,
speaker, split, clips (the source files, ``+``-joined) and duration_s.
"""

from __future__ import annotations

import argparse
import csv
import random
import sys
from pathlib import Path

import numpy as np

from beamline_plugins.audio.wav import encode_pcm16, read_wav

HERE = Path(__file__).resolve().parent
SOURCE = HERE.parent / "spoken_digits"
SEED = 12
RATE = 8000
SPLITS = {"test": range(0, 5), "eval": range(5, 7), "train": range(7, 16)}
PASSES = {"test": 1, "eval": 1, "train": 2}
MIN_CLIPS, MAX_CLIPS = 3, 7
GAP_MS = (80, 300)
EDGE_MS = (0, 300)


def lengths_for(count: int, rng: random.Random) -> list[int]:
    """Sequence lengths in [MIN_CLIPS, MAX_CLIPS] that add up to ``count`` (>= MIN_CLIPS)."""
    lengths: list[int] = []
    while sum(lengths) < count:
        lengths.append(rng.randint(MIN_CLIPS, MAX_CLIPS))
    excess = sum(lengths) - count
    for i in reversed(range(len(lengths))):
        cut = min(excess, lengths[i] - MIN_CLIPS)
        lengths[i] -= cut
        excess -= cut
    if excess:
        raise ValueError(f"cannot cut {count} clips into sequences of {MIN_CLIPS}-{MAX_CLIPS}")
    return lengths


def silence(rng: random.Random, bounds: tuple[int, int]) -> np.ndarray:
    """Zeros of a duration drawn uniformly (whole ms) from ``bounds``."""
    return np.zeros((rng.randint(*bounds) * RATE // 1000, 1), np.float32)


def read_clips() -> list[dict[str, str]]:
    """The rows of the FSDD manifest (path, label, speaker, take, ...), in file order."""
    with (SOURCE / "manifest.csv").open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def build(out: Path) -> list[dict[str, str]]:
    """Write the corpus into ``out``; return its manifest rows."""
    rng = random.Random(SEED)
    clips = read_clips()
    speakers = sorted({c["speaker"] for c in clips})
    rows: list[dict[str, str]] = []
    for split, takes in SPLITS.items():
        (out / split).mkdir(parents=True, exist_ok=True)
        for speaker in speakers:
            pool = [c for c in clips if c["speaker"] == speaker and int(c["take"]) in takes]
            pool.sort(key=lambda c: c["path"])
            number = 0
            for _ in range(PASSES[split]):
                order = list(pool)
                rng.shuffle(order)
                start = 0
                for length in lengths_for(len(order), rng):
                    chosen = order[start : start + length]
                    start += length
                    parts = [silence(rng, EDGE_MS)]
                    for i, clip in enumerate(chosen):
                        wav = read_wav((SOURCE / clip["path"]).read_bytes())
                        if wav.sample_rate != RATE or wav.channels != 1:
                            raise ValueError(f"{clip['path']}: expected 8 kHz mono")
                        if i:
                            parts.append(silence(rng, GAP_MS))
                        parts.append(wav.samples)
                    parts.append(silence(rng, EDGE_MS))
                    samples = np.concatenate(parts)
                    name = f"{split}/{speaker}_{split}_{number:03d}.wav"
                    number += 1
                    (out / name).write_bytes(encode_pcm16(samples, RATE))
                    rows.append(
                        {
                            "path": name,
                            "text": " ".join(c["label"] for c in chosen),
                            "speaker": speaker,
                            "split": split,
                            "clips": "+".join(Path(c["path"]).name for c in chosen),
                            "duration_s": f"{len(samples) / RATE:.3f}",
                        }
                    )
    with (out / "manifest.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return rows


def main(argv: list[str] | None = None) -> int:
    """Build the corpus (``--out``: another folder) and print its size per split."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--out", type=Path, default=HERE, help="output folder (default: here)")
    args = parser.parse_args(argv)
    rows = build(args.out)
    for split in SPLITS:
        chosen = [r for r in rows if r["split"] == split]
        seconds = sum(float(r["duration_s"]) for r in chosen)
        digits = sum(len(r["text"].split()) for r in chosen)
        print(f"{split}: {len(chosen)} sequences, {digits} digits, {seconds:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
