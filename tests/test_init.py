"""``pipeline init``: a plugin package that installs, loads and runs; pipeline files that load."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from data_paths import DIABETES_CSV, DIGITS, PROJECT_DIR, SMS_CSV, SPOKEN_DIGITS
from ingest_support import copy_images, csv_rows

import beamline
from beamline import examples
from beamline.cli import main

COMPONENT = "acme_text_clean_text"
TEMPLATE_DATA = {
    "images": DIGITS,
    "text": SMS_CSV,
    "audio": SPOKEN_DIGITS,
    "table": DIABETES_CSV,
}
EXPECTED = {
    # template: source, its data parameter, input pipeline, model
    "images": ("image_folder", "root", "image_input", "cnn"),
    "text": ("text_table", "path", "text_input", "rnn_classifier"),
    "audio": ("audio_folder", "root", "audio_input", "audio_cnn"),
    "table": ("csv_table", "path", "table_input", "mlp"),
}


def run_main(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run the ``pipeline`` command in this process; return exit code, stdout and stderr."""
    with pytest.raises(SystemExit) as exit_info:
        main(list(args))
    out = capsys.readouterr()
    return int(exit_info.value.code or 0), out.out, out.err


def cli(*args: str, site: Path, cwd: Path = PROJECT_DIR) -> subprocess.CompletedProcess[str]:
    """Run ``python -m beamline`` with ``site`` (where the plugin is installed) on the path."""
    env = {**os.environ, "PYTHONPATH": str(site)}
    env.pop("PIPELINE_PLUGINS", None)
    return subprocess.run(
        [sys.executable, "-m", "beamline", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=300,
    )


@pytest.fixture(scope="module")
def acme(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``pipeline init plugin acme-text``, pip-installed into a separate site folder.

    Installed as test_plugins.py installs a third-party distribution: ``pip install --target``,
    found by the entry points of that folder once it is on the path."""
    root = tmp_path_factory.mktemp("init_plugin")
    made = subprocess.run(
        [sys.executable, "-m", "beamline", "init", "plugin", "acme-text", "--dir", str(root)]
        + ["--json"],
        capture_output=True,
        text=True,
        cwd=PROJECT_DIR,
        timeout=120,
    )
    assert made.returncode == 0, made.stderr
    created = json.loads(made.stdout)
    assert created["package"] == "acme_text" and created["component"] == COMPONENT
    site = root / "site"
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index"]
        + ["--no-build-isolation", "--target", str(site), created["path"]],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert install.returncode == 0, install.stderr
    return {"root": root, "dist": Path(created["path"]), "site": site}


def test_init_plugin_writes_a_src_layout_package_with_entry_point_readme_and_tests(acme) -> None:
    dist = acme["dist"]
    assert dist == acme["root"] / "acme-text"
    files = {str(p.relative_to(dist)) for p in dist.rglob("*") if p.is_file()}
    assert {
        "pyproject.toml",
        "README.md",
        "src/acme_text/__init__.py",
        "src/acme_text/transforms.py",
        "tests/test_transforms.py",
    } <= files
    pyproject = (dist / "pyproject.toml").read_text()
    assert '[project.entry-points.pipeline]\nacme_text = "acme_text"' in pyproject
    readme = (dist / "README.md").read_text()
    assert "pip install -e ." in readme and f"component: {COMPONENT}" in readme
    entry_points = next(acme["site"].glob("acme_text-0.1.0.dist-info")) / "entry_points.txt"
    assert "[pipeline]\nacme_text = acme_text" in entry_points.read_text()


def test_generated_plugin_is_listed_by_pipeline_plugins(acme) -> None:
    listing = cli("plugins", "--json", site=acme["site"])
    assert listing.returncode == 0, listing.stderr
    found = json.loads(listing.stdout)
    component = next(c for c in found["components"] if c["name"] == COMPONENT)
    assert component["kind"] == "transform" and component["plugin"] == "acme_text"
    assert component["summary"].startswith("Trim a text feature")
    assert {"name": "acme_text", "source": "entry point (acme-text)"} in found["plugins"]
    assert found["failed"] == []


def test_generated_component_cleans_and_rejects_sms_in_a_real_ingest(acme, tmp_path) -> None:
    def clean(text: str) -> str:
        return " ".join(text.split()).lower()

    rows = [(r["text"], r["label"]) for r in csv_rows(SMS_CSV, 40) if len(clean(r["text"])) >= 3]
    messy = [(f"  {text.upper()}\t\t ", label) for text, label in rows[:10]]
    too_short = [("  ok ", "ham"), ("\tK\t", "ham")]
    with (tmp_path / "sms.csv").open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows([("text", "label"), *rows, *messy, *too_short])
    (tmp_path / "sms.yaml").write_text(
        yaml.safe_dump(
            {
                "name": "sms_clean",
                "steps": {
                    "ingest": {
                        "component": "text_table",
                        "path": "sms.csv",
                        "transforms": [{"component": COMPONENT, "min_chars": 3}],
                    }
                },
            }
        )
    )
    ran = cli(
        "--runs-dir", str(tmp_path / "runs"), "run", str(tmp_path / "sms.yaml"), "--json",
        site=acme["site"],
    )  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    step = json.loads(ran.stdout)["steps"][0]
    artifact = Path(step["path"])
    written = [
        (ex["text"][0].decode(), ex["label"][0].decode())
        for split in examples.feature_spec(artifact)["splits"]
        for ex in examples.iter_examples(artifact, split)
    ]
    expected = {(clean(text), label) for text, label in rows}
    assert sorted(written) == sorted(expected)  # cleaned, and the messy copies deduplicated
    rejected = examples.rejected_records(artifact)
    by_stage = sorted((r["source"], r["reason"]) for r in rejected if r["stage"] == COMPONENT)
    first = len(rows) + len(messy) + 1  # data rows are numbered from 1, after the header
    assert by_stage == [
        (f"{tmp_path / 'sms.csv'}:row {first}", "text too short: 2 characters < min_chars 3"),
        (f"{tmp_path / 'sms.csv'}:row {first + 1}", "text too short: 1 characters < min_chars 3"),
    ]
    counts = step["counts"]
    assert counts["read"] == len(rows) + len(messy) + len(too_short)
    assert counts["written"] == len(expected)
    assert counts["rejected"] == counts["read"] - len(expected)


def test_generated_package_passes_its_own_tests(acme) -> None:
    env = {**os.environ, "PYTHONPATH": str(acme["site"])}
    env.pop("PIPELINE_PLUGINS", None)
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
        capture_output=True,
        text=True,
        cwd=acme["dist"],
        env=env,
        timeout=600,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert "9 passed" in out.stdout


def test_generated_package_is_ruff_clean(acme) -> None:
    ruff = Path(sys.executable).parent / "ruff"
    if not ruff.exists():
        pytest.skip("ruff is not installed")
    for args in (["check", "src", "tests"], ["format", "--check", "src", "tests"]):
        out = subprocess.run(
            [str(ruff), *args], capture_output=True, text=True, cwd=acme["dist"], timeout=60
        )
        assert out.returncode == 0, out.stdout + out.stderr


def test_init_plugin_refuses_an_existing_folder(tmp_path, capsys) -> None:
    (tmp_path / "acme-text").mkdir()
    (tmp_path / "acme-text" / "keep.txt").write_text("mine")
    code, _, err = run_main(capsys, "init", "plugin", "acme-text", "--dir", str(tmp_path))
    assert code == 2
    assert f"{tmp_path / 'acme-text'} already exists (a folder); refusing to overwrite" in err
    assert [p.name for p in (tmp_path / "acme-text").iterdir()] == ["keep.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["acme-text"]  # no leftovers


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("1acme", "package name '1acme'): a Python package name must start with a letter"),
        ("my plugin!", "only letters, digits, '-', '_' and '.' are allowed (found ' ', '!')"),
        ("Class", "'class' is a Python keyword"),
        ("json", "it would hide the standard-library module 'json'"),
        ("pipeline", "it would hide the framework's own package 'pipeline'"),
        ("numpy", "a module 'numpy' is already importable here"),
    ],
)
def test_init_plugin_says_what_is_wrong_with_a_bad_name(tmp_path, capsys, name, message) -> None:
    code, _, err = run_main(capsys, "init", "plugin", name, "--dir", str(tmp_path))
    assert code == 2
    assert message in err
    assert "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


def test_plugin_name_is_normalised_to_a_package_name(tmp_path, capsys) -> None:
    code, out, _ = run_main(capsys, "init", "plugin", "Acme.Text__Tools", "--dir", str(tmp_path))
    assert code == 0
    dist = tmp_path / "acme-text-tools"
    assert (dist / "src" / "acme_text_tools" / "transforms.py").is_file()
    assert "component 'acme_text_tools_clean_text'" in out
    umask = os.umask(0)
    os.umask(umask)
    assert dist.stat().st_mode & 0o777 == 0o777 & ~umask  # not a private temporary folder


@pytest.mark.parametrize("template", list(EXPECTED))
def test_each_pipeline_template_loads_and_plans(template, tmp_path, capsys) -> None:
    data = TEMPLATE_DATA[template]
    code, out, err = run_main(
        capsys, "init", "pipeline", f"my_{template}", "--template", template,
        "--data", str(data), "--dir", str(tmp_path / "pipelines"), "--json",
    )  # fmt: skip
    assert code == 0, err
    path = tmp_path / "pipelines" / f"my_{template}.yaml"
    assert json.loads(out)["path"] == str(path) and err == ""
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # no staging file left
    text = path.read_text()
    assert "$" not in text
    assert text.count("\n  # ") >= 5  # every step is explained by a comment
    spec, _ = beamline.load(path)  # the project's own spec loader
    source, data_param, input_pipeline, model = EXPECTED[template]
    assert spec.name == f"my_{template}"
    assert spec.step_names == ["ingest", "validate", "train", "evaluate", "export"]
    steps = {s.name: s for s in spec.steps}
    assert {name: s.inputs for name, s in steps.items()} == {
        "ingest": {},
        "validate": {"examples": "ingest"},
        "train": {"examples": "ingest"},
        "evaluate": {"model": "train", "examples": "ingest"},
        "export": {"model": "train", "blessing": "evaluate"},
    }
    ingest = steps["ingest"].component
    assert ingest.name == source
    assert (spec.directory / getattr(ingest, data_param)).resolve() == data.resolve()
    train = steps["train"].component
    assert (train.name, train.input.name, train.model.name) == (
        "keras_trainer",
        input_pipeline,
        model,
    )
    assert steps["validate"].component.name == "tfdv"
    assert steps["export"].component.name == "saved_model_exporter"


def test_data_path_is_written_relative_to_the_pipeline_file(tmp_path, capsys, monkeypatch):
    (tmp_path / "data" / "texts.csv").parent.mkdir()
    (tmp_path / "data" / "texts.csv").write_text("text,label\nhello,a\n")
    monkeypatch.chdir(tmp_path)
    code, _, err = run_main(
        capsys, "init", "pipeline", "notes", "--template", "text", "--data", "data/texts.csv",
        "--dir", "pipelines",
    )  # fmt: skip
    assert code == 0 and err == ""
    doc = yaml.safe_load((tmp_path / "pipelines" / "notes.yaml").read_text())
    assert doc["steps"]["ingest"]["path"] == "../data/texts.csv"


def test_pipeline_without_data_gets_a_placeholder_and_a_warning(tmp_path, capsys) -> None:
    code, _, err = run_main(
        capsys, "init", "pipeline", "sounds", "--template", "audio", "--dir", str(tmp_path)
    )
    assert code == 0
    assert "warning: no --data given: the ingest step reads 'data/audio'" in err
    assert "root: data/audio" in (tmp_path / "sounds.yaml").read_text()


def test_init_pipeline_refuses_an_existing_file(tmp_path, capsys) -> None:
    (tmp_path / "mine.yaml").write_text("name: mine\n")
    code, _, err = run_main(
        capsys, "init", "pipeline", "mine", "--template", "images", "--dir", str(tmp_path)
    )
    assert code == 2 and "mine.yaml already exists (a file); refusing to overwrite" in err
    assert (tmp_path / "mine.yaml").read_text() == "name: mine\n"


def test_unknown_template_and_bad_pipeline_name_are_usage_errors(tmp_path, capsys) -> None:
    code, _, err = run_main(
        capsys, "init", "pipeline", "p", "--template", "video", "--dir", str(tmp_path)
    )
    assert code == 2
    assert "Invalid value for '--template': 'video' is not one of" in err
    code, _, err = run_main(
        capsys, "init", "pipeline", "9 lives", "--template", "text", "--dir", str(tmp_path)
    )
    assert code == 2 and "pipeline name '9 lives': use a letter, then letters" in err
    assert list(tmp_path.iterdir()) == []


def test_table_template_fails_clearly_when_table_input_is_not_registered(tmp_path, capsys):
    from beamline.plugins import load_plugins
    from beamline.scaffold import ScaffoldError, create_pipeline

    plugins = load_plugins(entry_points=False)
    del plugins.registry.components["table_input"]  # as before the keras plugin provided it
    with pytest.raises(ScaffoldError, match="template 'table' needs the component 'table_input'"):
        create_pipeline("rows", "table", plugins, directory=tmp_path)
    assert list(tmp_path.iterdir()) == []
    code, _, err = run_main(
        capsys, "--disable-plugin", "keras", "init", "pipeline", "rows", "--template", "table",
        "--dir", str(tmp_path),
    )  # fmt: skip
    assert code == 2 and "'table_input'" in err and "nothing was written" in err


@pytest.mark.parametrize(
    "args",
    [
        ["init", "--help"],
        ["init", "plugin", "--help"],
        ["init", "pipeline", "--help"],
        ["init", "pipeline", "probe", "--template", "table", "--dir", "{tmp}"],
        ["init", "plugin", "probe-plugin", "--dir", "{tmp}"],
    ],
)
def test_init_imports_no_heavy_library(args, tmp_path, heavy_imports) -> None:
    assert heavy_imports(command=[a.replace("{tmp}", str(tmp_path)) for a in args]) == []


@pytest.mark.slow
def test_images_template_runs_end_to_end_on_a_small_copy_of_digits(tmp_path, capsys) -> None:
    data = copy_images(DIGITS, tmp_path / "digits", [str(d) for d in range(10)], 15)
    code, _, err = run_main(
        capsys, "init", "pipeline", "small_digits", "--template", "images", "--data", str(data),
        "--dir", str(tmp_path / "pipelines"),
    )  # fmt: skip
    assert code == 0, err
    path = tmp_path / "pipelines" / "small_digits.yaml"
    result = beamline.run(
        path,
        {"steps.train.epochs": 3, "steps.evaluate.thresholds": {}},
        runs_dir=tmp_path / "runs",
    )
    records = {r.step: r for r in result.records}
    assert [r.status for r in result.records] == ["ran"] * 5
    counts = records["ingest"].counts
    assert (counts["read"], counts["written"], counts["rejected"]) == (150, 150, 0)
    assert (tmp_path / "pipelines" / "small_digits.schema.pbtxt").is_file()  # TFDV's schema
    assert 0.0 <= records["evaluate"].metrics["accuracy"] <= 1.0
    assert list(result.run.artifact("export").path.rglob("saved_model.pb"))
