"""The ingest engine's stages are composite PTransforms that run on their own."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from data_paths import SIGN_DIGITS
from ingest_support import copy_images, ingest, pipeline_file, shard_contents

from beamline import PipelineError, Transform, ingest_in_process
from beamline.ingest import Reject, record_stage
from beamline.ingest_engine import ApplyTransforms, WriteRejected

DIRECT = PipelineOptions(["--runner=FnApiRunner"])


def _no_zero(record: dict) -> dict:
    if record["x"] == 0:
        raise Reject("x is zero")
    return {**record, "x": 10 / record["x"]}


class NoZero(Transform):
    """Divide 10 by x; reject x == 0 (a test transform)."""

    name = "no_zero"

    def stage(self, ctx):
        return record_stage("no_zero", _no_zero)


class Untagged(Transform):
    """A stage without tagged outputs (a test transform)."""

    name = "untagged"

    def stage(self, ctx):
        return beam.Map(lambda r: r)


def test_transforms_and_rejected_records_run_as_stages_of_their_own(tmp_path: Path) -> None:
    records = [{"__source__": f"row {n}", "x": x} for n, x in enumerate((2, 0, 5, 0), 1)]
    with beam.Pipeline(options=DIRECT) as p:
        out = p | beam.Create(records) | "Transforms" >> ApplyTransforms([NoZero()], ctx=None)
        _ = out["main"] | beam.Map(lambda r: (tmp_path / r["__source__"]).write_text(str(r["x"])))
        _ = out["rejected"] | "Rejected" >> WriteRejected(tmp_path / "rejected", tmp_path / "n")
    assert (tmp_path / "row 1").read_text() == "5.0" and (tmp_path / "row 3").read_text() == "2.0"
    lines = (tmp_path / "rejected" / "part-00000-of-00001.jsonl").read_text().splitlines()
    assert [json.loads(line)["source"] for line in lines] == ["row 2", "row 4"]
    assert json.loads((tmp_path / "n").read_text()) == {"count": 2}


def test_a_transform_whose_stage_is_not_tagged_names_the_transform() -> None:
    with pytest.raises(PipelineError, match="transform 'untagged': stage\\(\\) must return"):
        with beam.Pipeline(options=DIRECT) as p:
            _ = p | beam.Create([{"x": 1}]) | ApplyTransforms([Untagged()], ctx=None)


def _no_big(record: dict) -> dict:
    if record["x"] > 3:
        raise Reject("x is big")
    return {"x": record["x"] + 1}  # drops __source__: the chain carries it on


class NoBig(Transform):
    """Add 1 to x; reject x > 3 (a test transform)."""

    name = "no_big"

    def stage(self, ctx):
        return record_stage("no_big", _no_big)


def test_consecutive_record_stages_run_chained_and_rejects_name_their_own_stage(
    tmp_path: Path,
) -> None:
    records = [{"__source__": f"row {n}", "x": x} for n, x in enumerate((2, 0, 5, 40), 1)]
    with beam.Pipeline(options=DIRECT) as p:
        chained = ApplyTransforms([NoZero(), NoBig()], ctx=None)
        out = p | beam.Create(records) | "Transforms" >> chained
        _ = out["main"] | beam.Map(lambda r: (tmp_path / r["__source__"]).write_text(str(r["x"])))
        _ = out["rejected"] | "Rejected" >> WriteRejected(tmp_path / "rejected", tmp_path / "n")
    assert len(chained._runs()) == 1  # one Beam stage for both record stages
    assert (tmp_path / "row 3").read_text() == "3.0"  # 10 / 5 + 1, its source carried on
    assert (tmp_path / "row 4").read_text() == "1.25"
    lines = (tmp_path / "rejected" / "part-00000-of-00001.jsonl").read_text().splitlines()
    stages = {json.loads(line)["source"]: json.loads(line)["stage"] for line in lines}
    assert stages == {"row 1": "no_big", "row 2": "no_zero"}
    assert json.loads((tmp_path / "n").read_text()) == {"count": 2}


def test_the_in_process_path_writes_exactly_what_the_beam_pipeline_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = copy_images(SIGN_DIGITS, tmp_path / "data", ["3", "4"], 6)
    photo = sorted((data / "3").iterdir())[0]
    shutil.copy(photo, data / "3" / "copy.jpg")  # a duplicate: same image, same label
    (data / "3" / "cut.jpg").write_bytes(photo.read_bytes()[:300])
    (data / "4" / "zero.png").write_bytes(b"")
    step = {
        "component": "image_folder",
        "root": "data",
        "transforms": ["decode_image", {"component": "resize_image", "size": 16}],
        "shards": 2,
    }
    written = {}
    for in_process in (True, False):
        monkeypatch.setattr(ingest_in_process, "ENABLED", in_process)
        name = "plain" if in_process else "beam"
        record, artifact = ingest(pipeline_file(tmp_path, step, name=name), tmp_path / name)
        written[name] = shard_contents(artifact)
    assert record.counts == {"read": 15, "written": 12, "rejected": 3, **_splits(record)}
    assert written["plain"] == written["beam"]
    reasons = sorted(json.loads(line)["stage"] for line in _rejected_lines(written["plain"]))
    assert reasons == ["decode_image", "decode_image", "deduplicate"]


def _splits(record) -> dict:
    return {k: v for k, v in record.counts.items() if k.startswith("written_")}


def _rejected_lines(files: dict[str, bytes]) -> list[str]:
    return files["rejected/part-00000-of-00001.jsonl"].decode("utf-8").splitlines()
