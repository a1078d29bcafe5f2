"""The ``tfdv`` validator step and the ``pipeline validate`` command, on small real data.

Examples artifacts are written with TensorFlow from the shipped data (SMS spam rows, digit
PNGs) in the layout of ``pipeline/examples.py``; the test source ``prepared_examples`` copies
one into a run so that the validator runs behind it through ``beamline.run``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from data_paths import DIGITS, SMS_CSV, TESTS_DIR

import beamline
from beamline.errors import GateFailed, SpecError


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Examples artifacts: good SMS, SMS with an unknown label, spam-heavy SMS, digit PNGs."""
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(TESTS_DIR))
        import validation_support as vf

    root = tmp_path_factory.mktemp("examples")
    good = vf.sms_rows(400)
    unknown = vf.sms_rows(200, offset=400)
    for i, row in enumerate(unknown):
        if i % 10 == 0:
            row["label"] = "maybe"
    everything = vf.sms_rows(2000)
    spammy = [r for r in everything if r["label"] == "spam"][:150]
    spammy += [r for r in everything if r["label"] == "ham"][:30]
    sms = vf.SMS_FEATURES
    return {
        "sms": vf.write_examples(root / "sms", good, sms, label="label"),
        "sms_unknown_label": vf.write_examples(root / "unknown", unknown, sms, label="label"),
        "sms_spammy": vf.write_examples(root / "spammy", spammy, sms, label="label"),
        "digits": vf.write_examples(
            root / "digits",
            vf.digits_rows(20),
            vf.DIGITS_FEATURES,
            label="label",
            classes=[str(d) for d in range(10)],
        ),
    }


@pytest.fixture
def sms_pipeline(monkeypatch: pytest.MonkeyPatch, write_pipeline, data) -> Path:
    """A pipeline file: the prepared SMS examples, then the ``tfdv`` step."""
    monkeypatch.syspath_prepend(str(TESTS_DIR))
    return write_pipeline(
        f"""
        name: sms
        plugins: [examples_plugin]
        steps:
          ingest:
            component: prepared_examples
            folder: {data["sms"]}
          validate:
            component: tfdv
            examples: ingest
        """,
        name="sms.yaml",
    )


def _result(result) -> dict:
    """The ``validation.json`` of a run's ``validate`` step."""
    path = result.run.path / "validate" / "validation.json"
    return json.loads(path.read_text(encoding="utf-8"))


def _record(result, step: str = "validate"):
    """The ``StepRecord`` of one step of a run."""
    return next(r for r in result.records if r.step == step)


def test_first_run_infers_and_saves_schema_later_run_validates_against_it(sms_pipeline, tmp_path):
    runs = tmp_path / "runs"
    schema_file = sms_pipeline.with_suffix(".schema.pbtxt")
    assert not schema_file.exists()

    first = beamline.run(sms_pipeline, runs_dir=runs)

    assert schema_file.is_file()
    assert 'name: "label"' in schema_file.read_text()
    assert 'value: "spam"' in schema_file.read_text()  # the label's string domain
    record = _record(first)
    splits = json.loads((first.run.path / "ingest" / "features.json").read_text())["splits"]
    assert record.counts == splits and "read" not in record.counts
    assert record.metrics["anomalies"] == 0
    assert "max_skew" in record.metrics and "max_drift" not in record.metrics
    step = first.run.path / "validate"
    for split in splits:
        assert (step / "statistics" / f"{split}.pb").stat().st_size > 0
        assert (step / "anomalies" / f"{split}.pbtxt").is_file()
    assert (step / "schema.pbtxt").is_file()
    plots = {p.name: p.read_text() for p in (step / "report").glob("*.svg")}
    assert set(plots) == {"feature_label.svg", "feature_text.svg"}
    assert plots["feature_label.svg"].startswith("<svg")
    assert "label: most frequent values" in plots["feature_label.svg"]
    assert ">spam</text>" in plots["feature_label.svg"]  # a value on the axis
    assert ">train</text>" in plots["feature_label.svg"]  # a split in the legend
    summary = (step / "report" / "summary.html").read_text()
    assert "<td>label</td>" in summary and "No anomalies." in summary
    report = (first.run.path / "report.html").read_text()
    assert "alt='feature_label'" in report and "src='data:image/svg+xml;base64," in report
    assert _result(first)["schema"].startswith("inferred")

    second = beamline.run(sms_pipeline, runs_dir=runs)

    assert _record(second).status == "ran"  # the saved schema is new input: no reuse
    result = _result(second)
    assert result["schema"].startswith("curated file")
    drift = [m for m in result["measurements"] if m["kind"] == "drift"]
    assert {m["feature"] for m in drift} == {"label", "text"}
    assert all(m["value"] == 0.0 for m in drift)
    assert _record(second).metrics["max_drift"] == 0.0


def test_unknown_label_in_new_data_stops_the_run_naming_the_feature(sms_pipeline, tmp_path, data):
    runs = tmp_path / "runs"
    beamline.run(sms_pipeline, runs_dir=runs)

    with pytest.raises(GateFailed) as caught:
        beamline.run(
            sms_pipeline, {"steps.ingest.folder": str(data["sms_unknown_label"])}, runs_dir=runs
        )

    message = str(caught.value)
    assert "feature 'label'" in message and "maybe" in message
    assert caught.value.exit_code == 3
    assert beamline.open_run("sms", runs_dir=runs).status == "failed"


def test_drifted_label_distribution_fails_unless_fail_on_excludes_drift(
    sms_pipeline, tmp_path, data
):
    runs = tmp_path / "runs"
    beamline.run(sms_pipeline, {"steps.validate.drift": {"label": 0.2}}, runs_dir=runs)
    spammy = {"steps.ingest.folder": str(data["sms_spammy"]), "steps.validate.drift.label": 0.2}

    with pytest.raises(GateFailed) as caught:
        beamline.run(sms_pipeline, spammy, runs_dir=runs)
    assert "feature 'label'" in str(caught.value)
    assert "Linfty distance between current and previous" in str(caught.value)

    passed = beamline.run(
        sms_pipeline, {**spammy, "steps.validate.fail_on": ["schema", "skew"]}, runs_dir=runs
    )
    record = _record(passed)
    assert record.metrics["max_drift"] > 0.2
    result = _result(passed)
    assert any(p["category"] == "drift" and p["feature"] == "label" for p in result["anomalies"])
    assert result["failing"] == []


def test_in_memory_and_beam_statistics_give_the_same_counts(monkeypatch, write_pipeline, data):
    monkeypatch.syspath_prepend(str(TESTS_DIR))
    from beamline_plugins.tfdv_tools.stats import load_statistics

    path = write_pipeline(
        f"""
        name: digits
        plugins: [examples_plugin]
        steps:
          ingest: {{component: prepared_examples, folder: {data["digits"]}}}
          validate: {{component: tfdv, examples: ingest}}
        """,
        name="digits.yaml",
    )
    runs = path.parent / "runs"
    in_memory = beamline.run(path, runs_dir=runs)
    large = {"steps.validate.in_memory_max_examples": 0}
    beam = beamline.run(path, {**large, "steps.validate.streamed": False}, runs_dir=runs)
    streamed = beamline.run(path, large, runs_dir=runs)  # a batch at a time, without Beam

    assert set(_result(in_memory)["statistics"].values()) == {"in_memory"}
    assert set(_result(beam)["statistics"].values()) == {"beam"}
    assert set(_result(streamed)["statistics"].values()) == {"streamed"}
    assert _record(in_memory).counts == _record(beam).counts == _record(streamed).counts
    for split, other in ((s, run) for s in _record(beam).counts for run in (in_memory, streamed)):
        a = load_statistics(other.run.path / "validate" / "statistics" / f"{split}.pb")
        b = load_statistics(beam.run.path / "validate" / "statistics" / f"{split}.pb")
        assert a.datasets[0].num_examples == b.datasets[0].num_examples > 0
        fa = {f.path.step[0]: f for f in a.datasets[0].features}
        fb = {f.path.step[0]: f for f in b.datasets[0].features}
        assert set(fa) == set(fb) == {"image", "label"}
        # PNG bytes are counted by size, not kept as values: no blow-up from binary features.
        assert fa["image"].WhichOneof("stats") == fb["image"].WhichOneof("stats") == "bytes_stats"
        for name in fa:
            stats_a = getattr(fa[name], fa[name].WhichOneof("stats")).common_stats
            stats_b = getattr(fb[name], fb[name].WhichOneof("stats")).common_stats
            assert stats_a.num_non_missing == stats_b.num_non_missing
            assert stats_a.tot_num_values == stats_b.tot_num_values
        assert fa["image"].bytes_stats.max_num_bytes == fb["image"].bytes_stats.max_num_bytes
        # The label has known classes: categorical, compared class by class.
        assert 0 < fa["label"].string_stats.unique == fb["label"].string_stats.unique <= 10
    schema = path.with_suffix(".schema.pbtxt").read_text()
    assert "image_domain" in schema  # from the image modality in features.json
    assert "is_categorical: true" in schema and "max: 9" in schema  # the label's ten classes


def test_records_read_without_tensorflow_equal_tf_data_and_corruption_names_the_record(
    data, tmp_path
):
    import tensorflow as tf

    from beamline_plugins.tfdv_tools.stats import read_records

    files = sorted(str(f) for f in (data["digits"] / "examples" / "train").iterdir())
    expected = [r.numpy() for r in tf.data.TFRecordDataset(files, compression_type="GZIP")]
    assert read_records(files) == expected and len(expected) > 100

    plain = tmp_path / "plain.tfrecord"  # uncompressed, one byte of the third record flipped
    with tf.io.TFRecordWriter(str(plain)) as writer:
        for record in expected[:5]:
            writer.write(record)
    assert read_records([str(plain)]) == expected[:5]
    raw = bytearray(plain.read_bytes())
    third = sum(len(r) + 16 for r in expected[:2]) + 12 + 20
    raw[third] ^= 0xFF
    plain.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match=r"plain.tfrecord: record 3: corrupt record data"):
        read_records([str(plain)])


def test_in_memory_statistics_of_shards_equal_those_of_all_records_and_skip_empty_shards(
    data, tmp_path
):
    import tensorflow as tf

    from beamline.examples import feature_spec
    from beamline_plugins.tfdv_tools import stats as S

    files = sorted(str(f) for f in (data["digits"] / "examples" / "train").iterdir())
    empty = tmp_path / "part-empty.tfrecord.gz"
    tf.io.TFRecordWriter(str(empty), tf.io.TFRecordOptions(compression_type="GZIP")).close()
    schema = S.seed_schema(feature_spec(data["digits"]))

    by_shard = S.statistics_of_files([files[0], str(empty), *files[1:]], schema)

    assert by_shard == S.statistics_in_memory(S.read_records(files), schema)
    assert S.num_examples(S.statistics_of_files([str(empty)], schema)) == 0


def test_beam_statistics_of_all_splits_in_one_pass_equal_tfdv_per_split(data, tmp_path):
    import apache_beam as beam
    import tensorflow_data_validation as tfdv
    from tfx_bsl.public import tfxio

    from beamline.beam_options import pipeline_options
    from beamline.examples import example_files, feature_spec
    from beamline.spec import RunnerSettings
    from beamline_plugins.tfdv_tools import stats as S

    folder = data["digits"]
    files = {split: example_files(folder, split) for split in ("train", "eval", "test")}
    schema = S.seed_schema(feature_spec(folder))
    options = pipeline_options(RunnerSettings())
    ours = S.statistics_with_beam(files, schema, tmp_path / "ours", options)

    with beam.Pipeline(options=options) as p:  # TFDV's own way: one graph per split
        for split, shards in files.items():
            _ = (
                p
                | f"Read {split}" >> tfxio.TFExampleRecord(shards).BeamSource()
                | f"Stats {split}" >> tfdv.GenerateStatistics(S.stats_options(schema))
                | f"Write {split}" >> tfdv.WriteStatisticsToBinaryFile(str(tmp_path / split))
            )
    for split in files:
        assert ours[split] == S.load_statistics(tmp_path / split), split
        assert S.load_statistics(tmp_path / "ours" / f"{split}.pb") == ours[split]
    assert sorted(p.name for p in (tmp_path / "ours").iterdir()) == [
        "eval.pb",
        "test.pb",
        "train.pb",
    ]


def test_numeric_feature_plot_is_an_svg_histogram_of_each_split(tmp_path):
    import pandas as pd

    from beamline_plugins.tfdv_tools import stats as S
    from beamline_plugins.validation.report import write_report

    statistics = {
        split: S.statistics_of_dataframe(
            pd.DataFrame({"length": [float(i % 17 + shift) for i in range(200)]}), None
        )
        for split, shift in (("train", 0), ("eval", 3))
    }
    rows = [r for split, stats in statistics.items() for r in S.feature_rows(stats, split)]

    written = write_report(tmp_path, statistics, rows, [], [], "inferred")

    assert [p.name for p in written] == ["feature_length.svg"]
    svg = written[0].read_text()
    assert svg.startswith("<svg") and svg.rstrip().endswith("</svg>")
    assert "length: value histogram" in svg and "share of values" in svg
    assert svg.count('fill-opacity="0.45"') >= 20  # two splits' histogram buckets
    assert ">train</text>" in svg and ">eval</text>" in svg
    assert write_report(tmp_path / "off", statistics, rows, [], [], "x", plots=False) == []
    assert [p.name for p in (tmp_path / "off").iterdir()] == ["summary.html"]


def test_unknown_fail_on_class_is_rejected_when_the_file_is_read(sms_pipeline):
    with pytest.raises(SpecError, match="unknown anomaly class 'sometimes'"):
        beamline.load(sms_pipeline, ["steps.validate.fail_on=[schema, sometimes]"])


def test_threshold_for_unknown_feature_names_the_feature(sms_pipeline, tmp_path):
    with pytest.raises(SpecError, match="unknown feature.*'lable'"):
        beamline.run(sms_pipeline, {"steps.validate.skew.lable": 0.1}, runs_dir=tmp_path / "r")


# --- pipeline validate -----------------------------------------------------------------------


def _invoke(*args: str):
    """Run ``pipeline ARGS`` in-process with the plugins' commands added, as ``main`` does."""
    from beamline.cli import cli
    from beamline.plugins import load_plugins

    loaded = load_plugins()
    loaded.manager.hook.register_commands(cli=cli)
    return CliRunner().invoke(cli, list(args), obj=loaded)


@pytest.fixture
def sms_csv(tmp_path: Path) -> Path:
    """The first 300 rows of the SMS spam CSV."""
    lines = SMS_CSV.read_text().splitlines()
    path = tmp_path / "sms.csv"
    path.write_text("\n".join(lines[:301]) + "\n", encoding="utf-8")
    return path


def test_validate_csv_against_saved_schema_reports_unknown_label_and_exits_3(sms_csv, tmp_path):
    schema = tmp_path / "sms.schema.pbtxt"
    ok = _invoke("validate", str(sms_csv), "--write-schema", str(schema))
    assert ok.exit_code == 0, ok.output
    assert "no anomalies" in ok.output and schema.is_file()

    bad = tmp_path / "bad.csv"
    bad.write_text(sms_csv.read_text() + '"see you at 8",sometimes\n', encoding="utf-8")
    result = _invoke("validate", str(bad), "--schema", str(schema))

    assert result.exit_code == 3, result.output
    assert "feature 'label'" in result.output and "sometimes" in result.output


def test_validate_tfrecords_by_glob_and_examples_folder_prints_json_counts(data):
    pattern = str(data["sms"] / "examples" / "*" / "*.tfrecord.gz")
    result = _invoke("validate", pattern, "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    splits = json.loads((data["sms"] / "features.json").read_text())["splits"]
    assert out["kind"] == "tfrecord" and out["counts"] == {"data": sum(splits.values())}
    assert {row["feature"] for row in out["features"]} == {"label", "text"}

    per_split = json.loads(_invoke("validate", str(data["sms"]), "--json").output)
    assert per_split["kind"] == "examples" and per_split["counts"] == splits


def test_validate_image_folder_reports_an_undecodable_file(tmp_path):
    digits = DIGITS
    for label in ("0", "1"):
        (tmp_path / label).mkdir()
        for png in sorted((digits / label).glob("*.png"))[:5]:
            shutil.copy(png, tmp_path / label)
    (tmp_path / "1" / "broken.png").write_bytes((digits / "1" / "0001.png").read_bytes()[:40])

    result = _invoke("validate", str(tmp_path), "--json")

    assert result.exit_code == 3
    out = json.loads(result.output[: result.output.rindex("}") + 1])
    assert out["kind"] == "images" and out["counts"] == {"data": 11}
    assert any("broken.png: cannot decode" in p["description"] for p in out["anomalies"])
    assert {r["feature"] for r in out["features"]} >= {"label", "width", "height", "format"}


def test_validate_names_a_missing_or_unreadable_file(tmp_path):
    missing = _invoke("validate", str(tmp_path / "nope.csv"))
    assert missing.exit_code == 1 and "nope.csv: no such file" in missing.output

    junk = tmp_path / "junk.tfrecord"
    junk.write_bytes(b"not a record at all")
    unreadable = _invoke("validate", str(junk))
    assert (
        unreadable.exit_code == 1 and "junk.tfrecord: not a readable TFRecord" in unreadable.output
    )


def test_plugin_and_cli_import_without_tensorflow_or_tfdv(heavy_imports):
    code = (
        "import beamline_plugins.validation, beamline.cli\n"
        "beamline_plugins.validation.register_commands(beamline.cli.cli)"
    )
    assert heavy_imports(code, also=("matplotlib",)) == []


def test_inferred_schema_allows_new_values_of_id_features():
    import pandas as pd
    import tensorflow_data_validation as tfdv

    from beamline_plugins.tfdv_tools.stats import infer_schema

    frame = pd.DataFrame({"speaker": ["ann", "bob", "ann"], "label": ["a", "b", "a"]})
    stats = tfdv.generate_statistics_from_dataframe(frame)
    spec = {
        "features": {
            "speaker": {"dtype": "bytes", "modality": "id"},
            "label": {"dtype": "bytes", "modality": "label"},
        },
        "label": "label",
    }
    schema = infer_schema(stats, spec)
    features = {f.name: f for f in schema.feature}
    assert features["speaker"].WhichOneof("domain_info") is None
    assert features["label"].WhichOneof("domain_info") == "domain"
    new = tfdv.generate_statistics_from_dataframe(
        pd.DataFrame({"speaker": ["carl"], "label": ["a"]})
    )
    assert not tfdv.validate_statistics(new, schema).anomaly_info
