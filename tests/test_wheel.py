"""The wheel: what it installs, and that it works in a fresh environment outside the repository.

The wheel is built from a copy of what the build reads (``pyproject.toml``, ``README.md``,
``pipeline/``, ``plugins/``) without build isolation (setuptools and wheel come from the test
environment, so no network is needed), installed with the locked requirements into a new
virtual environment from uv's cache (``uv sync --offline`` of everything but the project, then
the wheel), and run from a folder outside the
repository: ``pipeline plugins --json`` and the digits demo (1 epoch, no accuracy gate).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import tomllib
import zipfile
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[1]
#: What ``setuptools`` reads to build the wheel; nothing else of the repository is needed.
BUILD_INPUTS = ("pyproject.toml", "README.md", "pipeline", "plugins")
UV = Path(sys.executable).with_name("uv")

pytestmark = pytest.mark.slow


def _run(command: list[str | Path], *, timeout: float, **kwargs) -> subprocess.CompletedProcess:
    out = subprocess.run(
        [str(c) for c in command], capture_output=True, text=True, timeout=timeout, **kwargs
    )
    assert out.returncode == 0, f"{' '.join(map(str, command))}:\n{out.stdout}\n{out.stderr}"
    return out


def _outside_env(venv: Path) -> dict[str, str]:
    """The environment of a user's shell with ``venv`` activated: no path into the repository."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PIPELINE_PLUGINS")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # let the first imports compile (as pip would)
    env.update(
        VIRTUAL_ENV=str(venv),
        PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}",
        TF_CPP_MIN_LOG_LEVEL="3",
    )
    return env


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel built from the project's build inputs."""
    if not UV.exists():
        pytest.skip(f"uv is not installed beside {sys.executable} (the test extra installs it)")
    work = tmp_path_factory.mktemp("wheel")
    source = work / "source"
    for name in BUILD_INPUTS:
        path = PROJECT / name
        if path.is_dir():
            shutil.copytree(path, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            source.mkdir(exist_ok=True)
            shutil.copy(path, source / name)
    _run(
        [UV, "build", "--wheel", "--no-build-isolation", "--python", sys.executable,
         "--out-dir", work / "dist", source],
        timeout=300,
    )  # fmt: skip
    (built,) = (work / "dist").glob("*.whl")
    return built


def test_wheel_installs_only_beamline_and_beamline_plugins_with_the_templates(wheel: Path):
    names = zipfile.ZipFile(wheel).namelist()
    version = tomllib.loads((PROJECT / "pyproject.toml").read_text())["project"]["version"]
    assert {n.split("/")[0] for n in names} == {
        "beamline",
        "beamline_plugins",
        f"beamline-{version}.dist-info",
    }
    expected = {
        f"{package}/{path.relative_to(PROJECT / folder).as_posix()}"
        for folder, package in (("pipeline", "beamline"), ("plugins", "beamline_plugins"))
        for path in (PROJECT / folder).rglob("*")
        if path.suffix in (".py", ".tmpl") and "__pycache__" not in path.parts
    }
    # every module and template of the two folders (a new subpackage missing from
    # pyproject.toml's package list fails here), and nothing else: no data, tests or pipelines
    payload = {n for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert sorted(expected - payload) == []
    assert sorted(payload - expected) == []
    assert any(n.startswith("beamline/scaffold/templates/plugin/") for n in payload)
    assert any(n.startswith("beamline/scaffold/templates/pipeline/") for n in payload)


def test_installed_wheel_lists_every_plugin_and_runs_the_demo_outside_the_repository(
    wheel: Path, tmp_path: Path
) -> None:
    started = time.perf_counter()
    venv = tmp_path / "venv"
    # The locked requirements, from uv's cache: ``uv sync`` into the new environment (the
    # project itself left out), then the wheel alone.
    _run(
        [UV, "sync", "--frozen", "--offline", "--no-install-project", "--quiet",
         "--python", sys.executable, "--project", PROJECT],
        timeout=600, env={**os.environ, "UV_PROJECT_ENVIRONMENT": str(venv)},
    )  # fmt: skip
    _run(
        [UV, "pip", "install", "--offline", "--no-deps", "--quiet",
         "--python", venv / "bin" / "python", wheel],
        timeout=300,
    )  # fmt: skip
    installed = time.perf_counter() - started
    env = _outside_env(venv)
    home = tmp_path / "elsewhere"
    home.mkdir()

    where = _run(
        [venv / "bin" / "python", "-c", "import beamline, beamline_plugins as p; "
         "print(beamline.__file__); print(p.__file__)"],
        timeout=120, cwd=home, env=env,
    ).stdout.split()  # fmt: skip
    site = venv / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}"
    for file in where:
        assert Path(file).is_relative_to(site / "site-packages"), where
        assert not Path(file).is_relative_to(PROJECT), where

    listing = json.loads(
        _run(
            [venv / "bin" / "pipeline", "plugins", "--json"], timeout=120, cwd=home, env=env
        ).stdout
    )
    from beamline_plugins import BUILTIN_PLUGINS

    assert listing["failed"] == []
    loaded = {p["name"] for p in listing["plugins"] if p["source"] == "built-in"}
    assert loaded == set(BUILTIN_PLUGINS)
    # every built-in registers components, but those that add only commands (explain, serve)
    command_only = {"explain": "explain", "serving": "serve"}
    assert {c["plugin"] for c in listing["components"]} >= set(BUILTIN_PLUGINS) - set(command_only)
    for command in command_only.values():
        _run([venv / "bin" / "pipeline", command, "--help"], timeout=120, cwd=home, env=env)

    runs, demo_file = tmp_path / "runs", PROJECT / "pipelines" / "digits.yaml"
    demo = _run(
        [venv / "bin" / "pipeline", "--runs-dir", runs, "run", demo_file,
         "--set", "steps.train.epochs=1", "--set", "steps.evaluate.thresholds={}", "--json"],
        timeout=600, cwd=home, env=env,
    )  # fmt: skip
    outcome = json.loads(demo.stdout)  # exit status 0: every step ran (checked by _run)
    assert Path(outcome["run"]).is_relative_to(runs), outcome
    assert (Path(outcome["run"]) / "export").is_dir(), outcome
    print(
        f"wheel test: install {installed:.1f} s, all {time.perf_counter() - started:.1f} s; "
        f"beamline from {where[0]}"
    )
