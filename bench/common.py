"""Shared benchmark helpers: data sets built into a cache, and measured subprocesses.

Every measured variant runs in a fresh Python subprocess (``python -m bench.worker TASK ...``)
so that its CPU seconds (its own and its children's: Beam workers included), its peak memory
(the resident set summed over the whole process tree, sampled every 50 ms) and its wall time
are its own. The worker times the work itself after its imports (``work_s``/``work_cpu_s``);
the parent adds the total wall time and the tree's peak RSS.
"""

from __future__ import annotations

import io
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "bench" / ".cache"
#: The folder of real data sets that the benchmark data is made from: ``$BENCH_DATA``, or else
#: ``shared/data`` beside the repository. It holds ``sign_language_digits/`` and
#: ``sklearn_digits_png/`` (copies of ``pipelines/data/sign_digits`` and ``pipelines/data/digits``).
DATA = Path(os.environ.get("BENCH_DATA") or ROOT.parent / "shared" / "data")
SIGN_PHOTOS = "sign_language_digits"
DIGITS_PNG = "sklearn_digits_png"
#: Variations made of each real photo: 500 photos x 100 = 50,000 distinct photos at most.
VARIANTS_PER_PHOTO = 100


# --- process tree memory ---------------------------------------------------------------------


def _children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as handle:
                out.extend(int(p) for p in handle.read().split())
    except OSError:
        pass
    return out


def _rss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def tree_rss_mib(pid: int) -> float:
    """The resident memory of ``pid`` and all its descendants, in MiB."""
    total, todo, seen = 0, [pid], set()
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        total += _rss_kib(current)
        todo.extend(_children(current))
    return total / 1024


def measured(
    command: list[str], *, env: dict[str, str] | None = None, timeout: float = 3600
) -> dict[str, Any]:
    """Run ``command``; return its JSON result (last stdout line) plus wall, CPU and peak RSS.

    ``total_wall_s``: the whole subprocess; ``total_cpu_s``: user + system seconds of it and of
    every descendant it waited for; ``peak_rss_mib``: the largest sum of resident memory over
    the process tree, sampled every 50 ms."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})},
    )
    peak = [0.0]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], tree_rss_mib(process.pid))
            done.wait(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        out, err = process.communicate(timeout=timeout)
    finally:
        done.set()
        sampler.join()
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({process.returncode}):\n{err[-4000:]}")
    result: dict[str, Any] = {}
    for line in reversed(out.splitlines()):
        if line.startswith("{"):
            try:
                result = json.loads(line)
                break
            except ValueError:
                continue
    result.update(
        total_wall_s=wall,
        total_cpu_s=(after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
        peak_rss_mib=peak[0],
    )
    return result


def worker(task: str, **kwargs: Any) -> list[str]:
    """The command line that runs ``bench.worker``'s ``task`` with ``kwargs`` (JSON)."""
    return [sys.executable, "-m", "bench.worker", task, json.dumps(kwargs)]


#: Smoke mode runs tasks in this process: one TensorFlow import instead of one per variant.
IN_PROCESS = False


def task(name: str, **kwargs: Any) -> dict[str, Any]:
    """Run ``bench.worker``'s task ``name``: measured in a subprocess, or in this process when
    ``IN_PROCESS`` (smoke mode: the numbers then only prove that the code runs)."""
    if not IN_PROCESS:
        return measured(worker(name, **kwargs))
    from . import worker as tasks

    before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    result = json.loads(json.dumps(tasks.TASKS[name](**kwargs), default=str))
    after = resource.getrusage(resource.RUSAGE_SELF)
    result.update(
        total_wall_s=time.perf_counter() - started,
        total_cpu_s=(after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
        peak_rss_mib=tree_rss_mib(os.getpid()),
    )
    return result


def interleaved(
    variants: dict[str, Callable[[], dict[str, Any]]], repeats: int
) -> dict[str, list[dict[str, Any]]]:
    """Run every variant ``repeats`` times, round-robin, so machine noise hits all alike."""
    samples: dict[str, list[dict[str, Any]]] = {name: [] for name in variants}
    for i in range(repeats):
        order = list(variants) if i % 2 == 0 else list(reversed(variants))
        for name in order:
            samples[name].append(variants[name]())
    return samples


def median(values: Iterable[float]) -> float:
    """The median of ``values``."""
    return float(statistics.median(list(values)))


def row(
    case: str,
    variant: str,
    wall: float,
    cpu: float,
    ratio: float | None,
    target: str = "",
    met: bool | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """One row of the results table (``ratio``: against the case's reference variant)."""
    return {
        "case": case,
        "variant": variant,
        "wall_s": round(wall, 4),
        "cpu_s": round(cpu, 4),
        "ratio": None if ratio is None else round(ratio, 3),
        "target": target,
        "met": met,
        **extra,
    }


# --- data sets -------------------------------------------------------------------------------


def data_set(name: str) -> Path:
    """The folder ``name`` of the benchmark data (``DATA``); a clear error when it is missing."""
    path = DATA / name
    if not path.is_dir():
        raise FileNotFoundError(
            f"benchmark data not found: {path}. Set BENCH_DATA to a folder that holds "
            f"{SIGN_PHOTOS}/ and {DIGITS_PNG}/ (by default: shared/data beside the repository)."
        )
    return path


def _real_photos() -> list[tuple[str, Path]]:
    photos = []
    for folder in sorted(p for p in data_set(SIGN_PHOTOS).iterdir() if p.is_dir()):
        photos.extend(
            (folder.name, f)
            for f in sorted(folder.iterdir())
            if f.suffix.lower() in (".jpg", ".jpeg", ".png")
        )
    return photos


def _variant(data: bytes, seed: int) -> bytes:
    """A deterministic variation of one photo: crop, flip, brightness, JPEG re-encode."""
    from PIL import Image, ImageEnhance

    rng = random.Random(seed)
    image = Image.open(io.BytesIO(data)).convert("RGB")
    width, height = image.size
    if seed % VARIANTS_PER_PHOTO:  # variant 0 keeps the photo as it is (re-encoded)
        keep = rng.uniform(0.8, 0.97)
        cw, ch = int(width * keep), int(height * keep)
        left, top = rng.randint(0, width - cw), rng.randint(0, height - ch)
        image = image.crop((left, top, left + cw, top + ch)).resize((width, height))
        if rng.random() < 0.5:
            image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        image = ImageEnhance.Brightness(image).enhance(rng.uniform(0.75, 1.25))
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=rng.randint(75, 95))
    return out.getvalue()


def _make_variants(job: tuple[int, str, str, str]) -> None:
    index, label, source, pool = job
    data = Path(source).read_bytes()
    folder = Path(pool) / label
    for k in range(VARIANTS_PER_PHOTO):
        target = folder / f"p{index:03d}-v{k:02d}.jpg"
        if not target.exists():
            target.write_bytes(_variant(data, index * VARIANTS_PER_PHOTO + k))


def photos(count: int) -> Path:
    """A folder of ``count`` photos (one sub-folder per class) made from the real 500.

    Photo ``i`` is variation ``i // 500`` of real photo ``i % 500``: every size takes whole
    rounds of variations over all photos, so classes stay balanced. Built once into
    ``bench/.cache`` (a pool of variations, then hard links per size)."""
    real = _real_photos()
    if count > len(real) * VARIANTS_PER_PHOTO:
        raise ValueError(f"at most {len(real) * VARIANTS_PER_PHOTO} photos, asked {count}")
    target = CACHE / f"photos-{count}"
    if (target / ".complete").exists():
        return target
    pool = CACHE / "photo-pool"
    if not (pool / ".complete").exists():
        from multiprocessing import Pool

        for label in {label for label, _ in real}:
            (pool / label).mkdir(parents=True, exist_ok=True)
        jobs = [(i, label, str(path), str(pool)) for i, (label, path) in enumerate(real)]
        with Pool(os.cpu_count() or 1) as workers:
            workers.map(_make_variants, jobs, chunksize=8)
        (pool / ".complete").write_text("")
    shutil.rmtree(target, ignore_errors=True)
    for i in range(count):
        index, k = i % len(real), i // len(real)
        label = real[index][0]
        name = f"p{index:03d}-v{k:02d}.jpg"
        (target / label).mkdir(parents=True, exist_ok=True)
        os.link(pool / label / name, target / label / name)
    (target / ".complete").write_text("")
    return target


SPLIT_NAMES = ("train", "eval", "test")


def digits_table(rows: int) -> Path:
    """A folder with the digits table split once, for both sides of case 5.

    ``rows`` distinct rows: 64 pixel columns ``p00``..``p63`` (0-16) and ``label``, cycling
    through the 1797 real 8x8 digits; every copy after the first adds small, seeded noise (+-1 on
    a few pixels, clipped to 0..16), and a copy equal to an earlier row is drawn again, so no row
    can sit in two splits. Each row's split (8:1:1, from a hash of its index) is fixed here:
    ``all.csv`` carries it in a ``split`` column (ours: ``split.from_feature``), and
    ``train/``, ``eval/``, ``test/`` hold the same rows without it (TFX: input splits). Both
    sides therefore train, tune and test on exactly the same rows."""
    target = CACHE / f"digits-splits-{rows}"
    if (target / "all.csv").exists():
        return target
    import hashlib

    import numpy as np
    from PIL import Image

    files = sorted(
        (folder.name, f)
        for folder in data_set(DIGITS_PNG).iterdir()
        if folder.is_dir()
        for f in folder.iterdir()
        if f.suffix.lower() == ".png"
    )
    files.sort(key=lambda item: item[1].name)
    images = []
    for label, path in files:
        pixels = np.asarray(Image.open(path).convert("L"), dtype=np.float64).reshape(-1)
        images.append((label, np.rint(pixels / 255.0 * 16.0).astype(np.int64)))
    rng = np.random.default_rng(0)
    seen: set[str] = set()
    lines: list[tuple[str, str]] = []
    i = 0
    while len(lines) < rows:
        label, pixels = images[i % len(images)]
        if i >= len(images):
            noise = rng.integers(-1, 2, size=64) * (rng.random(64) < 0.15)
            pixels = np.clip(pixels + noise, 0, 16)
        i += 1
        line = ",".join(str(int(v)) for v in pixels) + f",{label}"
        if line in seen:
            continue
        seen.add(line)
        point = int.from_bytes(hashlib.sha256(str(len(lines)).encode()).digest()[:8], "big")
        point /= 2**64
        split = "test" if point >= 0.9 else "eval" if point >= 0.8 else "train"
        lines.append((split, line))
    header = ",".join([f"p{i:02d}" for i in range(64)] + ["label"])
    tmp = target.with_name(target.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    for split in SPLIT_NAMES:
        (tmp / split).mkdir(parents=True)
        chosen = [line for side, line in lines if side == split]
        (tmp / split / "data.csv").write_text("\n".join([header, *chosen]) + "\n")
    body = [f"{line},{split}" for split, line in lines]
    (tmp / "all.csv").write_text("\n".join([header + ",split", *body]) + "\n")
    shutil.rmtree(target, ignore_errors=True)
    tmp.replace(target)
    return target


def digits_table_rows(folder: Path, split: str) -> int:
    """The number of rows of one split of a ``digits_table`` folder."""
    with (folder / split / "data.csv").open() as handle:
        return sum(1 for _ in handle) - 1
