"""Plugin discovery: built-ins, entry points, --plugin, pipeline files; failures by name."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
import textwrap
from collections import Counter

import pytest
from data_paths import PROJECT_DIR

from beamline.errors import PluginError
from beamline.plugins import load_plugins


def write_module(directory, name, text):
    (directory / f"{name}.py").write_text(textwrap.dedent(text), encoding="utf-8")


def cli(*args, env=None, cwd=PROJECT_DIR):
    return subprocess.run(
        [sys.executable, "-m", "beamline", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=120,
    )


GOOD = """
    from beamline import Model, hookimpl

    class Tiny(Model):
        '''A tiny model.'''
        name = "tiny_{suffix}"

        def build(self, inputs, num_classes):
            return None

    @hookimpl
    def register_models(register):
        register(Tiny)
"""


def test_builtin_plugins_load_and_register_through_the_public_hooks():
    plugins = load_plugins(entry_points=False)
    from beamline_plugins import BUILTIN_PLUGINS

    assert plugins.failed == {}  # a built-in that fails to import names its error here
    assert {name: plugins.sources.get(name) for name in BUILTIN_PLUGINS} == dict.fromkeys(
        BUILTIN_PLUGINS, "built-in"
    )
    registered = Counter(c.plugin for c in plugins.registry.components.values())
    # a plugin that only adds commands (explain, serving) registers them, not components
    for name, module in BUILTIN_PLUGINS.items():
        registered[name] += hasattr(importlib.import_module(module), "register_commands")
    assert {name: registered[name] > 0 for name in BUILTIN_PLUGINS} == dict.fromkeys(
        BUILTIN_PLUGINS, True
    )


def test_plugin_that_fails_to_import_is_named_and_others_still_load(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    write_module(tmp_path, "broken_plugin", "import no_such_module_anywhere\n")
    write_module(tmp_path, "good_plugin", GOOD.format(suffix="a"))
    plugins = load_plugins(["broken_plugin", "good_plugin"])
    assert "No module named 'no_such_module_anywhere'" in plugins.failed["broken_plugin"]
    assert plugins.registry.components["tiny_a"].plugin == "good_plugin"


def test_misspelt_hook_is_reported_by_plugin_name(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    write_module(
        tmp_path,
        "typo_plugin",
        """
        from beamline import hookimpl

        @hookimpl
        def register_model(register):
            pass
    """,
    )
    plugins = load_plugins(["typo_plugin"])
    assert "register_model" in plugins.failed["typo_plugin"]
    assert "typo_plugin" not in plugins.sources


def test_hook_with_wrong_arguments_is_reported(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    write_module(
        tmp_path,
        "args_plugin",
        """
        from beamline import hookimpl

        @hookimpl
        def register_models(registry):
            pass
    """,
    )
    assert "registry" in load_plugins(["args_plugin"]).failed["args_plugin"]


def test_duplicate_component_name_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    write_module(tmp_path, "first_plugin", GOOD.format(suffix="dup"))
    write_module(tmp_path, "second_plugin", GOOD.format(suffix="dup"))
    with pytest.raises(
        PluginError,
        match=r"'tiny_dup' is registered twice.*'first_plugin'.*"
        r"'second_plugin'.*--disable-plugin",
    ):
        load_plugins(["first_plugin", "second_plugin"])


def test_component_without_docstring_or_of_wrong_kind_is_refused(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    write_module(
        tmp_path,
        "nodoc_plugin",
        """
        from beamline import Model, hookimpl

        class Bare(Model):
            name = "bare"

        @hookimpl
        def register_models(register):
            register(Bare)
    """,
    )
    with pytest.raises(PluginError, match="plugin 'nodoc_plugin'.*needs a docstring"):
        load_plugins(["nodoc_plugin"])
    write_module(
        tmp_path,
        "kind_plugin",
        GOOD.format(suffix="k").replace("register_models", "register_sources"),
    )
    with pytest.raises(
        PluginError, match="plugin 'kind_plugin'.*not a subclass of beamline.Source"
    ):
        load_plugins(["kind_plugin"])


def test_disable_plugin_and_environment_variable(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    write_module(tmp_path, "env_plugin", GOOD.format(suffix="env"))
    monkeypatch.setenv("PIPELINE_PLUGINS", "env_plugin")
    assert "tiny_env" in load_plugins().registry.components
    assert "tiny_env" not in load_plugins(disabled=["env_plugin"]).registry.components
    monkeypatch.setenv("PIPELINE_DISABLE_PLUGINS", "env_plugin")
    assert "tiny_env" not in load_plugins().registry.components


def test_pipeline_file_plugins_list_loads_modules(fixtures_plugin, write_pipeline):
    import beamline

    path = write_pipeline("""
        plugins: [core_plugin]
        steps:
          data: {component: numbers}
    """)
    spec, plugins = beamline.load(path)
    assert plugins.sources["core_plugin"] == "pipeline file p.yaml"


def test_third_party_distribution_is_found_through_its_entry_point(tmp_path):
    dist = tmp_path / "acme-dist"
    (dist / "acme_plugin").mkdir(parents=True)
    (dist / "pyproject.toml").write_text(
        textwrap.dedent("""
        [build-system]
        requires = ["setuptools"]
        build-backend = "setuptools.build_meta"

        [project]
        name = "acme-pipeline-plugin"
        version = "1.0"

        [project.entry-points.pipeline]
        acme = "acme_plugin"
    """)
    )
    (dist / "acme_plugin" / "__init__.py").write_text(
        textwrap.dedent("""
        from beamline import Source, StepResult, hookimpl, param

        class Greeting(Source):
            '''Writes a greeting: a third-party source.'''
            name = "acme_greeting"
            text: str = param("hello", help="what to write")

            def run(self, ctx):
                (ctx.output_dir / "greeting.txt").write_text(self.text)
                return StepResult(counts={"read": 1, "written": 1, "rejected": 0})

        @hookimpl
        def register_sources(register):
            register(Greeting)
    """)
    )
    site = tmp_path / "site"
    install = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-index",
            "--no-build-isolation",
            "--target",
            str(site),
            str(dist),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert install.returncode == 0, install.stderr
    assert list(site.glob("acme_pipeline_plugin-1.0.dist-info/entry_points.txt"))
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(site), "HOME": str(tmp_path)}
    listing = cli("plugins", "--json", env=env)
    assert listing.returncode == 0, listing.stderr
    found = json.loads(listing.stdout)
    component = next(c for c in found["components"] if c["name"] == "acme_greeting")
    assert component["plugin"] == "acme" and component["kind"] == "source"
    assert {"name": "acme", "source": "entry point (acme-pipeline-plugin)"} in found["plugins"]
    (tmp_path / "p.yaml").write_text("steps:\n  hello: {component: acme_greeting, text: hi}\n")
    ran = cli("--runs-dir", str(tmp_path / "runs"), "run", str(tmp_path / "p.yaml"), env=env)
    assert ran.returncode == 0, ran.stderr
    assert [p.read_text() for p in (tmp_path / "runs").glob("p/*/hello/greeting.txt")] == ["hi"]
    disabled = json.loads(cli("--disable-plugin", "acme", "plugins", "--json", env=env).stdout)
    assert "acme_greeting" not in {c["name"] for c in disabled["components"]}


def test_plugin_raising_while_adding_commands_is_reported_and_cli_still_works(tmp_path):
    (tmp_path / "bad_commands.py").write_text(
        "from beamline import hookimpl\n\n"
        "@hookimpl\ndef register_commands(cli):\n    raise RuntimeError('boom')\n"
    )
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(tmp_path), "HOME": str(tmp_path)}
    out = cli("--plugin", "bad_commands", "runs", "--json", env=env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "plugin 'bad_commands' raised in register_commands: RuntimeError('boom')" in out.stderr
    assert out.stdout.strip() == "[]"


def test_component_missing_a_method_of_its_contract_is_refused_naming_the_plugin(
    tmp_path, monkeypatch
):
    monkeypatch.syspath_prepend(str(tmp_path))
    write_module(
        tmp_path,
        "half_plugin",
        """
        from beamline import InputPipeline, hookimpl

        class Half(InputPipeline):
            '''Reads examples but cannot serve.'''
            name = "half_input"

            def model_inputs(self, examples):
                return {}

            def dataset(self, examples, split, *, inputs=None, training=False, batch_size=32,
                        seed=0, with_ids=False):
                return None

        @hookimpl
        def register_input_pipelines(register):
            register(Half)
    """,
    )
    with pytest.raises(
        PluginError,
        match=r"plugin 'half_plugin': cannot register input_pipeline: Half \(half_input\) does "
        r"not implement serving\(inputs\) of the input pipeline contract "
        r"\(beamline.InputPipeline\)",
    ):
        load_plugins(["half_plugin"])


def test_method_whose_signature_breaks_the_contract_is_refused(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    write_module(
        tmp_path,
        "drift_plugin",
        GOOD.format(suffix="d").replace(
            "def build(self, inputs, num_classes):", "def build(self, inputs):"
        ),
    )
    with pytest.raises(
        PluginError,
        match=r"plugin 'drift_plugin'.*Tiny.build\(inputs\): takes 1 argument\(s\); the "
        r"contract passes 2: \(inputs, num_classes\)",
    ):
        load_plugins(["drift_plugin"])
    write_module(
        tmp_path,
        "renamed_plugin",
        GOOD.format(suffix="n").replace(
            "def build(self, inputs, num_classes):", "def build(self, features, classes):"
        ),
    )
    assert "tiny_n" in load_plugins(["renamed_plugin"]).registry.components  # names are free


def test_gan_builders_register_as_their_own_kinds_through_register_models():
    registry = load_plugins(entry_points=False).registry
    assert registry.components["dcgan_generator"].kind == "generator_model"
    assert registry.components["dcgan_discriminator"].kind == "discriminator_model"
    assert registry.components["cnn"].kind == "model"


OBSERVERS = """
    from beamline import hookimpl

    @hookimpl
    def register_models(register):
        {register}

    @hookimpl
    def before_step_run(run, step):
        {observe}
"""


def test_hook_relay_attributes_components_and_errors_to_each_plugin(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    write_module(tmp_path, "maker_a", GOOD.format(suffix="ra"))
    write_module(tmp_path, "maker_b", GOOD.format(suffix="rb"))
    write_module(
        tmp_path,
        "loud_observer",
        OBSERVERS.format(register="pass", observe="raise RuntimeError('observer broke')"),
    )
    write_module(
        tmp_path,
        "quiet_observer",
        OBSERVERS.format(register="pass", observe="step.append('seen')"),
    )
    plugins = load_plugins(["maker_a", "maker_b", "loud_observer", "quiet_observer"])
    assert plugins.registry.components["tiny_ra"].plugin == "maker_a"
    assert plugins.registry.components["tiny_rb"].plugin == "maker_b"
    seen: list[str] = []
    plugins.notify("before_step_run", run=None, step=seen)
    assert seen == ["seen"]  # the observer after the one that raised still ran


def test_lifecycle_hook_that_raises_is_reported_by_plugin_name(tmp_path, monkeypatch, capsys):
    monkeypatch.syspath_prepend(str(tmp_path))
    write_module(
        tmp_path,
        "noisy_observer",
        OBSERVERS.format(register="pass", observe="raise RuntimeError('observer broke')"),
    )
    load_plugins(["noisy_observer"]).notify("before_step_run", run=None, step=None)
    assert (
        "warning: plugin 'noisy_observer' raised in before_step_run: "
        "RuntimeError('observer broke')" in capsys.readouterr().err
    )


def test_plugin_raising_while_registering_is_named(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    write_module(tmp_path, "fine_plugin", GOOD.format(suffix="f"))
    write_module(
        tmp_path,
        "raising_plugin",
        OBSERVERS.format(register="raise KeyError('oops')", observe="pass"),
    )
    with pytest.raises(
        PluginError,
        match=r"plugin 'raising_plugin' raised in register_models while registering "
        r"components: KeyError\('oops'\)",
    ):
        load_plugins(["fine_plugin", "raising_plugin"])


def test_input_pipeline_missing_a_keyword_of_the_contract_is_refused(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    write_module(
        tmp_path,
        "nokw_plugin",
        """
        from beamline import InputPipeline, hookimpl

        class NoIds(InputPipeline):
            '''Cannot return ids.'''
            name = "no_ids_input"

            def model_inputs(self, examples):
                return {}

            def dataset(self, examples, split, *, inputs=None, training=False, batch_size=32,
                        seed=0):
                return None

            def serving(self, inputs):
                return {}, None

        @hookimpl
        def register_input_pipelines(register):
            register(NoIds)
    """,
    )
    with pytest.raises(
        PluginError, match=r"plugin 'nokw_plugin'.*NoIds.dataset.*takes no 'with_ids=' argument"
    ):
        load_plugins(["nokw_plugin"])


def test_every_hook_spec_has_types_that_name_real_classes():
    import importlib
    import typing

    import click

    hookspecs = importlib.import_module("beamline.hookspecs")
    names = {
        **vars(importlib.import_module("beamline.components")),
        "Run": importlib.import_module("beamline.artifacts").Run,
        "StepRecord": importlib.import_module("beamline.progress").StepRecord,
        "Step": importlib.import_module("beamline.spec").Step,
        "click": click,
    }
    specs = [f for f in vars(hookspecs).values() if hasattr(f, "pipeline_spec")]
    assert len(specs) >= 15
    for spec in specs:
        hints = typing.get_type_hints(spec, globalns={**vars(hookspecs), **names})
        assert typing.Any not in hints.values(), spec.__name__
        assert spec.__doc__, spec.__name__


def test_plugin_module_beside_the_pipeline_file_or_in_the_current_folder_loads(tmp_path):
    write_module(tmp_path, "beside_plugin", GOOD.format(suffix="beside"))
    (tmp_path / "p.yaml").write_text(
        "plugins: [beside_plugin]\nsteps:\n  ingest: {component: csv_table, path: '*.csv'}\n",
        encoding="utf-8",
    )
    (tmp_path / "rows.csv").write_text("a,label\n1,x\n", encoding="utf-8")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}

    from_file = cli("run", str(tmp_path / "p.yaml"), "--explain", "--json", env=env, cwd=elsewhere)
    from_cwd = cli("--plugin", "beside_plugin", "describe", "tiny_beside", env=env, cwd=tmp_path)
    missing = cli("--plugin", "beside_plugin", "plugins", "--json", env=env, cwd=elsewhere)
    (tmp_path / "beside_plugin.py").unlink()
    gone = cli("run", str(tmp_path / "p.yaml"), "--explain", env=env, cwd=elsewhere)

    assert from_file.returncode == 0, from_file.stdout + from_file.stderr
    assert from_cwd.returncode == 0 and "A tiny model." in from_cwd.stdout, from_cwd.stderr
    failed = json.loads(missing.stdout)["failed"]
    assert [f["name"] for f in failed] == ["beside_plugin"]
    assert "No module named 'beside_plugin'" in failed[0]["error"]
    assert gone.returncode == 2
    assert "p.yaml:1: plugins: 'beside_plugin' failed to load: ModuleNotFoundError" in gone.stderr
