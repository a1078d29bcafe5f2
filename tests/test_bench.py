"""The benchmarks still run (smoke sizes); their numbers are checked only in bench/."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from data_paths import DIGITS, PROJECT_DIR, SIGN_DIGITS


def test_benchmark_smoke_mode_writes_a_table_and_json(tmp_path):
    data = tmp_path / "data"  # the layout of BENCH_DATA, made of the shipped copies
    data.mkdir()
    (data / "sign_language_digits").symlink_to(SIGN_DIGITS, target_is_directory=True)
    (data / "sklearn_digits_png").symlink_to(DIGITS, target_is_directory=True)
    out = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke", "--json", str(tmp_path / "r.json")],
        env={**os.environ, "BENCH_DATA": str(data)},
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        timeout=900,  # a hang guard only: the smoke run takes ~80 s alone, shares 2 cores in CI
    )
    assert out.returncode == 0, out.stderr
    result = json.loads((tmp_path / "r.json").read_text())
    rows = result["rows"]
    variants = {r["variant"] for r in rows}
    assert {"python -c pass", "pipeline --help", "pipeline plugins"} <= variants
    assert {r["case"] for r in rows} == {
        "cli_start",
        "ingest",
        "validation",
        "input",
        "scale",
        "tfx",
        "taxi",
        "taxi_scale",
        "libraries",
        "serving",
        "broker",
    }
    assert {"loop 100", "direct 100", "local(2) 100"} <= variants
    assert {"tfdv step (memory) 100", "tfdv direct (beam) 100"} <= variants
    assert any(v.startswith("image_input") for v in variants)
    assert any(v.startswith("digits CNN input wait") for v in variants)
    # libraries: swapped implementations write the same shards (digests of the examples)
    by_variant = {r["variant"]: r for r in rows}
    for one, other in [
        ("audio step: numpy wav + soxr", "audio step: soundfile + soxr"),
        ("codec digits.yaml: hand-written", "codec digits.yaml: protobuf"),
        ("codec sms_spam.yaml: hand-written", "codec sms_spam.yaml: protobuf"),
    ]:
        assert by_variant[one]["digests"] == by_variant[other]["digests"], (one, other)
    assert {"plots digits.yaml: matplotlib", "plots digits.yaml: svg (hand-written)"} <= variants
    assert all(r["wall_s"] > 0 and r["cpu_s"] >= 0 for r in rows)
    assert all(r["met"] is None for r in rows)  # smoke sizes judge no target
    assert "| ingest | direct 100 |" in out.stdout
