"""Worker tasks of the ``libraries`` case: each runs in its own process (``bench.worker``).

A task swaps one implementation in before it runs (``beamline_plugins.audio.wav.decode_samples``,
``...audio.ops.encode_pcm16``, ``...audio.resample.resample``, ``beamline.examples``' codec,
``beamline_plugins.validation.report.plot_features``), so the whole step runs with it on the
``direct`` runner (in process). The replaced hand-written versions are frozen in
``bench/reference``.
"""

from __future__ import annotations

import contextlib
import hashlib
import random
import shutil
import statistics
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def _timed(fn: Any) -> dict[str, Any]:
    from . import worker  # imported here: bench.worker imports this module's TASKS

    return worker._timed(fn)


def _load_yaml(path: Path) -> dict[str, Any]:
    from . import worker

    return worker._load_yaml(path)


def _write_yaml(path: Path, data: dict[str, Any]) -> Path:
    from . import worker

    return worker._write_yaml(path, data)


def _digest(folder: Path) -> str:
    """sha256 over every shard file of an examples artifact (names and bytes, sorted)."""
    h = hashlib.sha256()
    for file in sorted((folder / "examples").rglob("*.tfrecord*")):
        h.update(str(file.relative_to(folder)).encode() + file.read_bytes())
    return h.hexdigest()[:16]


@contextlib.contextmanager
def _swapped(swaps: list[tuple[Any, str, Any]]) -> Any:
    """Set each ``(module, name, value)`` for the block, then restore (smoke mode runs every
    variant in one process)."""
    saved = [(module, name, getattr(module, name)) for module, name, _ in swaps]
    for module, name, value in swaps:
        setattr(module, name, value)
    try:
        yield
    finally:
        for module, name, value in saved:
            setattr(module, name, value)


def _audio_swaps(wav: str, resampler: str) -> list[tuple[Any, str, Any]]:
    from beamline_plugins.audio import ops
    from beamline_plugins.audio import resample as resample_module
    from beamline_plugins.audio import wav as wav_module

    swaps: list[tuple[Any, str, Any]] = []
    if wav == "soundfile":
        from .reference import wav_soundfile

        swaps += [(wav_module, "decode_samples", wav_soundfile.decode_samples)]
        swaps += [(ops, "encode_pcm16", wav_soundfile.encode_pcm16)]
    if resampler == "polyphase":
        from .reference import polyphase

        def old(samples: Any, rate_in: int, rate_out: int, *, quality: int = 16) -> Any:
            return polyphase.resample(samples, rate_in, rate_out, zero_crossings=quality)

        swaps += [(resample_module, "resample", old)]
    return swaps


def audio_step(root: str, out: str, wav: str, resampler: str) -> dict:
    """The ingest step of the spoken digits at 16 kHz (decode, mono, resample, 1 s), direct."""
    import apache_beam  # noqa: F401

    import beamline

    swaps = _audio_swaps(wav, resampler)
    folder = Path(out)
    shutil.rmtree(folder, ignore_errors=True)
    steps = {
        "ingest": {
            "component": "audio_folder",
            "root": root,
            "group_pattern": "^[^_]+_([^_]+)_",
            "path_feature": True,
            "transforms": [
                {"component": "decode_audio", "min_seconds": 0.05},
                {"component": "to_mono"},
                {"component": "resample", "rate": 16000},
                {"component": "fix_length", "seconds": 1.0, "align": "center"},
            ],
            "split": {"train": 0.8, "eval": 0.1, "test": 0.1},
        }
    }
    file = _write_yaml(folder / "pipeline.yaml", {"name": "bench", "steps": steps})

    def work() -> dict[str, Any]:
        result = beamline.run(file, runs_dir=folder / "runs", force=True)
        artifact = beamline.open_run("bench", folder / "runs").artifact("ingest").path
        return {
            "step_s": result.records[0].seconds,
            "counts": result.records[0].counts,
            "digest": _digest(Path(artifact)),
        }

    with _swapped(swaps):
        return _timed(work)


def _per_item_us(fn: Any, items: list[Any], repeats: int = 3) -> float:
    """The median over ``repeats`` passes of the microseconds ``fn`` takes per item."""
    passes = []
    for _ in range(repeats):
        began = time.perf_counter()
        for item in items:
            fn(item)
        passes.append((time.perf_counter() - began) / len(items) * 1e6)
    return round(statistics.median(passes), 2)


def audio_parts(root: str) -> dict:
    """Per-clip microseconds of each part, both sides warm in this process, and agreement."""
    import numpy as np
    import soxr

    from beamline_plugins.audio import wav as wav_module

    from .reference import polyphase, wav_soundfile

    clips = [p.read_bytes() for p in sorted(Path(root).rglob("*.wav"))]
    layouts = [wav_module.inspect_wav(d) for d in clips]
    pairs = list(zip(clips, layouts, strict=True))
    numpy_samples = [wav_module.decode_samples(d, lay) for d, lay in pairs]
    sf_samples = [wav_soundfile.decode_samples(d, lay) for d, lay in pairs]
    hand_wav = [wav_module.encode_pcm16(x, 8000) for x in numpy_samples]
    sf_wav = [wav_soundfile.encode_pcm16(x, 8000) for x in numpy_samples]
    old = [polyphase.resample(x, 8000, 16000) for x in numpy_samples]
    new = [soxr.resample(x, 8000, 16000, quality="HQ") for x in numpy_samples]
    # The ideal band-limited 2x upsampling of a clip taken as periodic (zero-padded spectrum);
    # compared away from the ends, where the periodic assumption does not hold.
    ideal = [np.fft.irfft(np.fft.rfft(x[:, 0]), n=2 * len(x)) * 2 for x in numpy_samples]

    def snr_to_ideal(outputs: list[Any]) -> float:
        err = sum(
            float(((o[200:-200, 0] - i[200:-200]) ** 2).sum())
            for o, i in zip(outputs, ideal, strict=True)
        )
        sig = sum(float((i[200:-200] ** 2).sum()) for i in ideal)
        return round(10 * float(np.log10(sig / err)), 1)

    diff = np.concatenate([(a - b).ravel() for a, b in zip(old, new, strict=True)])
    ref = np.concatenate([b.ravel() for b in new])

    def band_snr(lo: float, hi: float) -> float:
        d, s = np.fft.rfft(diff.astype(np.float64)), np.fft.rfft(ref.astype(np.float64))
        f = np.fft.rfftfreq(len(diff), 1 / 16000)
        m = (f >= lo) & (f < hi)
        return round(float(10 * np.log10((abs(s[m]) ** 2).sum() / (abs(d[m]) ** 2).sum())), 1)

    return {
        "clips": len(clips),
        "header_us": _per_item_us(wav_module.inspect_wav, clips),
        "decode_numpy_us": _per_item_us(lambda p: wav_module.decode_samples(*p), pairs),
        "decode_soundfile_us": _per_item_us(lambda p: wav_soundfile.decode_samples(*p), pairs),
        "encode_hand_us": _per_item_us(lambda x: wav_module.encode_pcm16(x, 8000), numpy_samples),
        "encode_soundfile_us": _per_item_us(
            lambda x: wav_soundfile.encode_pcm16(x, 8000), numpy_samples
        ),
        "resample_polyphase_us": _per_item_us(
            lambda x: polyphase.resample(x, 8000, 16000), numpy_samples, repeats=1
        ),
        "resample_soxr_us": _per_item_us(
            lambda x: soxr.resample(x, 8000, 16000, quality="HQ"), numpy_samples
        ),
        "decode_identical": sum(
            np.array_equal(a, b) for a, b in zip(numpy_samples, sf_samples, strict=True)
        ),
        "encode_identical": sum(a == b for a, b in zip(hand_wav, sf_wav, strict=True)),
        "resample_same_length": sum(len(a) == len(b) for a, b in zip(old, new, strict=True)),
        "resample_max_abs_diff": round(float(np.abs(diff).max()), 5),
        "resample_snr_db": round(float(10 * np.log10((ref**2).sum() / (diff**2).sum())), 1),
        "resample_snr_below_3khz_db": band_snr(0, 3000),
        "resample_snr_3_to_4khz_db": band_snr(3000, 4000),
        "polyphase_snr_to_ideal_db": snr_to_ideal(old),
        "soxr_snr_to_ideal_db": snr_to_ideal(new),
    }


def _codec_swaps(codec: str) -> list[tuple[Any, str, Any]]:
    if codec != "hand":
        return []
    from beamline import examples

    from .reference import example_codec

    return [
        (examples, "encode_example", example_codec.encode_example),
        (examples, "decode_example", example_codec.decode_example),
    ]


def _ingest_only(pipeline: str, folder: Path) -> Path:
    data = _load_yaml(ROOT / "pipelines" / pipeline)
    step = data["steps"]["ingest"]
    for key in ("root", "path"):
        if key in step:
            step[key] = str((ROOT / "pipelines" / step[key]).resolve())
    data["steps"] = {"ingest": step}
    data.pop("runner", None)
    return _write_yaml(folder / "ingest.yaml", data)


def codec_step(pipeline: str, out: str, codec: str) -> dict:
    """The ingest step of a ready pipeline (``digits.yaml``, ...) with one Example codec."""
    import apache_beam  # noqa: F401

    import beamline

    swaps = _codec_swaps(codec)
    folder = Path(out)
    shutil.rmtree(folder, ignore_errors=True)
    file = _ingest_only(pipeline, folder)
    name = _load_yaml(file)["name"]

    def work() -> dict[str, Any]:
        result = beamline.run(file, runs_dir=folder / "runs", force=True)
        artifact = beamline.open_run(name, folder / "runs").artifact("ingest").path
        return {"step_s": result.records[0].seconds, "digest": _digest(Path(artifact))}

    with _swapped(swaps):
        return _timed(work)


def codec_parts(examples: list[str]) -> dict:
    """Per-record microseconds of both codecs on written shards, and their agreement."""
    from beamline import examples as ex

    from .reference import example_codec as hand

    began = time.perf_counter()
    ex.decode_example(b"")  # builds the message class: the one-time cost
    setup_ms = (time.perf_counter() - began) * 1e3
    facts: dict[str, Any] = {"protobuf_setup_ms": round(setup_ms, 1)}
    rng = random.Random(0)  # rows shaped like the 8x8 digits as a table: 64 pixels and a label
    table = [
        {**{f"pixel_{i}": ("int64", [rng.randrange(17)]) for i in range(64)},
         "label": ("int64", [rng.randrange(10)])}
        for _ in range(2000)
    ]  # fmt: skip
    sets = {Path(f).parent.parent.name: f for f in examples}  # runs/<pipeline>/<run>/ingest
    for name, source in [*sets.items(), ("table of 65 int64 columns", table)]:
        if isinstance(source, list):
            features = source
            records = [hand.encode_example(f) for f in features]
        else:
            shards = sorted(Path(source).rglob("*.tfrecord*"))
            records = [r for shard in shards for r in ex.read_tfrecords(shard)]
            features = [hand.decode_example(r) for r in records]
        pairs = list(zip(features, records, strict=True))
        facts[name] = {
            "records": len(records),
            "features": len(features[0]) if features else 0,
            "encode_hand_us": _per_item_us(hand.encode_example, features),
            "encode_protobuf_us": _per_item_us(ex.encode_example, features),
            "decode_hand_us": _per_item_us(hand.decode_example, records),
            "decode_protobuf_us": _per_item_us(ex.decode_example, records),
            "byte_identical": sum(ex.encode_example(f) == r for f, r in pairs),
            "decode_identical": sum(ex.decode_example(r) == f for f, r in pairs),
        }
    return facts


def plots_step(pipeline: str, out: str, plotter: str) -> dict:
    """The ``tfdv`` step of a ready pipeline (its ingest reused), plots by ``plotter``."""
    import apache_beam  # noqa: F401
    import tensorflow  # noqa: F401
    import tensorflow_data_validation  # noqa: F401

    import beamline
    from beamline_plugins.validation import report

    drawn = report.plot_features
    if plotter == "matplotlib":
        from .reference import matplotlib_plots

        drawn = matplotlib_plots.plot_features
    folder = Path(out)
    data = _load_yaml(_ingest_only(pipeline, folder))
    data["steps"]["validate"] = {"component": "tfdv", "examples": "ingest", "fail_on": "none"}
    file = _write_yaml(folder / "validate.yaml", data)
    timings: dict[str, float] = {}

    def timed_plots(*args: Any, **options: Any) -> Any:
        began = time.perf_counter()
        written = drawn(*args, **options)
        timings["plots_s"] = time.perf_counter() - began
        timings["plots"] = len(written)
        return written

    def work() -> dict[str, Any]:
        result = beamline.run(file, runs_dir=folder / "runs", force=["validate"])
        record = {r.step: r for r in result.records}
        return {"step_s": record["validate"].seconds, **timings}

    with _swapped([(report, "plot_features", timed_plots)]):
        return _timed(work)


TASKS = {
    "audio_step": audio_step,
    "audio_parts": audio_parts,
    "codec_step": codec_step,
    "codec_parts": codec_parts,
    "plots_step": plots_step,
}
