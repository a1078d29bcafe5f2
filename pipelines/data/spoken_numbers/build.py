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
and each eval or test clip in exactly one. Then the train clips of every speaker go through it
``EXTRA_TRAIN_PASSES`` times more (the second round: more train sequences, new neighbours and
silences for the same clips; eval and test take no part in it), so each train clip is in four.
Everything is drawn from ``random.Random(SEED)`` in a fixed order: the same input gives
byte-identical output, and the first round's files are those it made before the second existed.

Output: ``<split>/<speaker>_<split>_<n>.wav``; ``manifest.csv`` (every sequence) and
``manifest_short.csv`` (the first round only: the pipeline's short check) with the columns path,
text, speaker, split, clips (the source files, ``+``-joined) and duration_s.
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
EXTRA_TRAIN_PASSES = 2
MANIFEST, SHORT_MANIFEST = "manifest.csv", "manifest_short.csv"
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


def join_clips(
    out: Path, name: str, chosen: list[dict[str, str]], rng: random.Random
) -> dict[str, str]:
    """Write the sequence of ``chosen`` clips (silence between and around) as ``out/name``."""
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
    (out / name).write_bytes(encode_pcm16(samples, RATE))
    return {
        "path": name,
        "text": " ".join(c["label"] for c in chosen),
        "speaker": chosen[0]["speaker"],
        "split": name.split("/")[0],
        "clips": "+".join(Path(c["path"]).name for c in chosen),
        "duration_s": f"{len(samples) / RATE:.3f}",
    }


def build(out: Path) -> list[dict[str, str]]:
    """Write the corpus into ``out``; return its manifest rows (the first round's first)."""
    rng = random.Random(SEED)
    clips = read_clips()
    speakers = sorted({c["speaker"] for c in clips})
    rows: list[dict[str, str]] = []
    numbers: dict[tuple[str, str], int] = {}

    def passes(split: str, speaker: str, count: int) -> None:
        takes = SPLITS[split]
        pool = [c for c in clips if c["speaker"] == speaker and int(c["take"]) in takes]
        pool.sort(key=lambda c: c["path"])
        for _ in range(count):
            order = list(pool)
            rng.shuffle(order)
            start = 0
            for length in lengths_for(len(order), rng):
                chosen = order[start : start + length]
                start += length
                number = numbers.get((split, speaker), 0)
                numbers[split, speaker] = number + 1
                name = f"{split}/{speaker}_{split}_{number:03d}.wav"
                rows.append(join_clips(out, name, chosen, rng))

    for split in SPLITS:
        (out / split).mkdir(parents=True, exist_ok=True)
        for speaker in speakers:
            passes(split, speaker, PASSES[split])
    first_round = len(rows)
    for speaker in speakers:
        passes("train", speaker, EXTRA_TRAIN_PASSES)
    write_manifest(out / MANIFEST, rows)
    write_manifest(out / SHORT_MANIFEST, rows[:first_round])
    return rows


def write_manifest(path: Path, rows: list[dict[str, str]]) -> None:
    """Write the manifest CSV of ``rows`` (LF line ends)."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


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
