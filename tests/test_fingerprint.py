"""Step fingerprints follow the code a step really imports, and the libraries that shape it.

The main test is generated: for every step of every ready pipeline, every project module its
fingerprint depends on is edited in turn (through the import graph's source overrides, so the
tree is never touched) and the step's fingerprint must change; editing all the other project
modules at once must not change it.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from data_paths import PIPELINES, PROJECT_DIR

import beamline
from beamline import fingerprint
from beamline.fingerprint import code_modules, library_versions, step_fingerprint
from beamline.import_graph import ImportGraph

READY = sorted(PIPELINES.glob("*.yaml"))


def _ready_steps() -> list:
    params = []
    for path in READY:
        spec, _ = beamline.load(path)
        for step in spec.steps:
            params.append(pytest.param(step.component, id=f"{path.stem}-{step.name}"))
    return params


def _project_modules() -> set[str]:
    """Every module of the framework and the built-in plugins, from the files on disk."""
    names = set()
    for folder, package in (
        (PROJECT_DIR / "pipeline", "beamline"),
        (PROJECT_DIR / "plugins", "beamline_plugins"),
    ):
        for path in folder.rglob("*.py"):
            parts = path.relative_to(folder).with_suffix("").parts
            if "scaffold" in parts:
                continue
            parts = parts[:-1] if parts[-1] == "__init__" else parts
            names.add(".".join((package, *parts)))
    return names


STEPS = _ready_steps()
GRAPH = ImportGraph()


def edited(module: str) -> bytes:
    source = GRAPH.source(module)
    assert source is not None, module
    return source + b"\n# edited\n"


def test_every_ready_pipeline_has_steps_to_check():
    assert len(READY) >= 8 and len(STEPS) >= 30


@pytest.mark.parametrize("component", STEPS)
def test_editing_any_module_a_ready_step_imports_reruns_it(component):
    base = step_fingerprint(component, {}, None, GRAPH)
    modules = set(base.modules)
    own = {type(component).__module__} | {type(c).__module__ for c in component.children()}
    assert own <= modules
    assert len(modules) > len(own)  # what those modules import is followed too
    for module in sorted(modules):
        graph = GRAPH.with_overrides({module: edited(module)})
        changed = step_fingerprint(component, {}, None, graph)
        assert changed.value != base.value, f"editing {module} would reuse the step"
        assert changed.modules[module] != base.modules[module]


@pytest.mark.parametrize("component", STEPS)
def test_editing_modules_a_ready_step_does_not_import_reuses_it(component):
    base = step_fingerprint(component, {}, None, GRAPH)
    unrelated = sorted(_project_modules() - set(base.modules))
    assert unrelated
    graph = GRAPH.with_overrides({m: edited(m) for m in unrelated if GRAPH.source(m)})
    assert step_fingerprint(component, {}, None, graph).value == base.value


def test_the_digits_trainer_does_not_depend_on_the_audio_plugin():
    spec, _ = beamline.load(PIPELINES / "digits.yaml")
    train = spec.step("train").component
    audio = sorted(m for m in _project_modules() if m.startswith("beamline_plugins.audio."))
    assert "beamline_plugins.audio.sources" in audio
    assert not set(audio) & set(code_modules(train, GRAPH))
    graph = GRAPH.with_overrides({m: edited(m) for m in audio})
    before = step_fingerprint(train, {}, None, GRAPH).value
    assert step_fingerprint(train, {}, None, graph).value == before


def test_a_new_library_version_changes_every_step(monkeypatch):
    spec, _ = beamline.load(PIPELINES / "digits.yaml")
    before = {s.name: step_fingerprint(s.component, {}, None).value for s in spec.steps}
    real = fingerprint._version
    monkeypatch.setattr(
        fingerprint, "_version", lambda name: "99.0" if name == "tensorflow" else real(name)
    )
    for step in spec.steps:
        after = step_fingerprint(step.component, {}, None)
        assert after.libraries["tensorflow"] == "99.0"
        assert after.value != before[step.name], step.name


def test_library_versions_are_read_without_importing_the_libraries(heavy_imports):
    code = (
        "import beamline\n"
        "from beamline.fingerprint import step_fingerprint\n"
        "spec, _ = beamline.load('pipelines/digits.yaml')\n"
        "parts = [step_fingerprint(s.component, {}, None) for s in spec.steps]\n"
        "assert all(p.libraries['tensorflow'] != 'not installed' for p in parts)\n"
    )
    assert heavy_imports(code) == []


def _write_package(root: Path, name: str, files: dict[str, str]) -> None:
    package = root / name
    package.mkdir(parents=True, exist_ok=True)
    for file, text in files.items():
        (package / file).write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")


def test_import_graph_follows_what_code_can_run_and_nothing_else(tmp_path, monkeypatch):
    _write_package(
        tmp_path,
        "graphpkg",
        {
            "__init__.py": "from .api import Thing\n",
            "api.py": """
                from typing import TYPE_CHECKING
                from . import sub
                from .sub import helper as _helper

                if TYPE_CHECKING:
                    from . import typing_only

                class Thing:
                    def run(self):
                        from .lazy import work
                        return work()
            """,
            "sub.py": "import graphpkg.deep.leaf\n\ndef helper():\n    return 1\n",
            "lazy.py": "def work():\n    return 2\n",
            "typing_only.py": "X = 1\n",
            "unused.py": "Y = 2\n",
            "user.py": "from graphpkg import Thing\n",
        },
    )
    _write_package(tmp_path / "graphpkg", "deep", {"__init__.py": "", "leaf.py": "Z = 3\n"})
    monkeypatch.syspath_prepend(str(tmp_path))
    graph = ImportGraph()
    found = graph.closure(["graphpkg.user"], roots={"graphpkg"})
    assert set(found) == {
        "graphpkg.user",
        "graphpkg.api",  # the re-exported name is followed to the module that defines it
        "graphpkg.sub",
        "graphpkg.lazy",  # function-level imports count
        "graphpkg.deep.leaf",
    }


PLUGIN = {
    "__init__.py": """
        from beamline import hookimpl

        from .steps import Doubled


        @hookimpl
        def register_sources(register):
            register(Doubled)
    """,
    "steps.py": """
        import json

        from beamline import Source, StepResult, param


        class Doubled(Source):
            \"\"\"Writes each number of ``count`` through the helper.\"\"\"

            name = "doubled"
            count: int = param(3, help="how many numbers")

            def run(self, ctx):
                from .helpers import transform

                values = [transform(n) for n in range(self.count)]
                (ctx.output_dir / "values.json").write_text(json.dumps(values))
                return StepResult(counts={"read": self.count, "written": self.count})
    """,
    "helpers.py": "def transform(n):\n    return 2 * n\n",
    "unrelated.py": "def other():\n    return 0\n",
}


def test_a_plugin_step_reruns_when_its_helper_module_changes(tmp_path, monkeypatch):
    _write_package(tmp_path / "src", "acme_fp_plugin", PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path / "src"))
    path = tmp_path / "p.yaml"
    path.write_text(
        "name: acme\nplugins: [acme_fp_plugin]\nsteps:\n  make:\n    component: doubled\n"
    )
    runs = tmp_path / "runs"
    package = tmp_path / "src" / "acme_fp_plugin"
    assert beamline.run(path, runs_dir=runs).records[0].status == "ran"
    (package / "unrelated.py").write_text("def other():\n    return 1\n")
    assert beamline.run(path, runs_dir=runs).records[0].status == "reused"
    (package / "helpers.py").write_text("def transform(n):\n    return 3 * n\n")
    why = beamline.api.explain(path, runs_dir=runs)[0]
    assert why.decision == "run" and why.reasons == ["module acme_fp_plugin.helpers changed"]
    result = beamline.run(path, runs_dir=runs)
    assert result.records[0].status == "ran"
    parts = result.run.artifact("make").meta["fingerprint_parts"]
    assert {"acme_fp_plugin.steps", "acme_fp_plugin.helpers"} <= set(parts["modules"])
    assert "acme_fp_plugin.unrelated" not in parts["modules"]


def test_a_third_party_plugins_distribution_version_is_part_of_its_steps(tmp_path, monkeypatch):
    _write_package(tmp_path, "acme_dist_plugin", PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    from acme_dist_plugin.steps import Doubled

    real = fingerprint._version
    monkeypatch.setattr(fingerprint, "_distributions", lambda: {"acme_dist_plugin": ["acme"]})
    monkeypatch.setattr(fingerprint, "_version", lambda n: "1.2.3" if n == "acme" else real(n))
    assert library_versions(Doubled())["acme"] == "1.2.3"
    assert "acme_dist_plugin.helpers" in code_modules(Doubled())


SCRIPT = """
from beamline import Source, StepResult, param
from beamline.fingerprint import code_modules


class Local(Source):
    \"\"\"A source defined in a script, as in a notebook.\"\"\"

    name = "local_source"
    count: int = param(1, help="how many")

    def run(self, ctx):
        return StepResult(counts={"read": FACTOR, "written": FACTOR})


print(code_modules(Local())["__main__:Local"])
"""


def test_a_component_defined_in_a_script_is_digested_by_its_class_source(tmp_path):
    digests = []
    for factor in ("1", "2"):
        script = tmp_path / "script.py"
        script.write_text(SCRIPT.replace("FACTOR", factor))
        out = subprocess.run(
            [sys.executable, str(script)], capture_output=True, text=True, timeout=120
        )
        assert out.returncode == 0, out.stderr
        digests.append(out.stdout.strip())
    assert len(digests[0]) == 16 and digests[0] != digests[1]
