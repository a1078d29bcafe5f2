"""``pipeline init``: write a new plugin package or a new pipeline file from a template.

The templates are package data in ``templates/`` beside this module: ``templates/plugin/`` holds
the files of an installable third-party plugin, ``templates/pipeline/`` one commented pipeline
file per kind of data. They use ``string.Template`` placeholders (``$name``), so a missing value
is an error, never a silent blank. A written pipeline file is checked with the spec loader
before it is kept: a template that no longer matches the components fails here, not at run time.
Nothing heavy is imported: no TensorFlow, TFDV or Beam.
"""

from __future__ import annotations

import keyword
import os
import re
import secrets
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib import resources
from importlib.util import find_spec
from pathlib import Path
from string import Template
from typing import TYPE_CHECKING, Any

import yaml

from ..errors import PipelineError

if TYPE_CHECKING:
    from ..plugins import Plugins

#: Top-level packages of the framework itself: a plugin with one of these names would hide it.
FRAMEWORK_PACKAGES = ("beamline", "beamline_plugins", "pipeline", "plugins", "bench", "tests")
_ALLOWED = re.compile(r"[A-Za-z0-9_.-]")
_SEPARATORS = re.compile(r"[-_.]+")
_PIPELINE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")


class ScaffoldError(PipelineError):
    """``pipeline init`` cannot write what was asked (bad name, existing file, unknown template)."""

    exit_code = 2


@dataclass(frozen=True)
class PipelineTemplate:
    """A pipeline template: its file, what ``--data`` names, and the placeholder without it."""

    summary: str
    data: str
    default_data: str
    folder: bool


PIPELINE_TEMPLATES: dict[str, PipelineTemplate] = {
    "images": PipelineTemplate(
        "image classification from class sub-folders (like pipelines/digits.yaml)",
        "a folder with one sub-folder of images per class",
        "data/images",
        folder=True,
    ),
    "text": PipelineTemplate(
        "text classification from a CSV of texts and labels (like pipelines/sms_spam.yaml)",
        "a CSV (or JSON Lines) file with 'text' and 'label' columns",
        "data/texts.csv",
        folder=False,
    ),
    "audio": PipelineTemplate(
        "audio classification from WAV clips in class sub-folders "
        "(like pipelines/spoken_digits.yaml)",
        "a folder with one sub-folder of WAV clips per class",
        "data/audio",
        folder=True,
    ),
    "table": PipelineTemplate(
        "classification of CSV rows with csv_table and table_input (like pipelines/diabetes.yaml)",
        "a CSV file with a header row and a 'label' column",
        "data/table.csv",
        folder=False,
    ),
}


@dataclass(frozen=True)
class PluginNames:
    """The names derived from ``pipeline init plugin NAME``."""

    distribution: str  # the pip name and the folder: acme-text
    package: str  # the import name: acme_text
    entry_point: str  # the plugin's name in 'pipeline plugins' and --disable-plugin
    component: str  # the example transform: acme_text_clean_text


@dataclass
class Created:
    """What ``pipeline init`` wrote: the new folder or file, every file in it, and details."""

    kind: str
    path: Path
    files: list[Path]
    details: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (what ``--json`` prints)."""
        return {
            "kind": self.kind,
            "path": str(self.path),
            "files": [str(f) for f in self.files],
            **self.details,
            "warnings": list(self.warnings),
        }


# --- plugin packages --------------------------------------------------------------------------


def plugin_names(name: str) -> PluginNames:
    """Check a plugin NAME and derive its names; ``ScaffoldError`` says what is wrong.

    Runs of ``-``, ``_`` and ``.`` become ``_`` and letters are lowered (``Acme-Text`` gives the
    package ``acme_text``); the result must be a Python package name that starts with a letter
    and hides neither a keyword, a standard-library module, the framework nor an importable
    module."""
    raw = name.strip()
    if not raw:
        raise ScaffoldError("plugin name is empty: give a name such as 'acme-text'")
    bad = sorted({c for c in raw if not _ALLOWED.match(c)})
    if bad:
        shown = ", ".join(repr(c) for c in bad)
        raise ScaffoldError(
            f"plugin name {raw!r}: only letters, digits, '-', '_' and '.' are allowed "
            f"(found {shown})"
        )
    package = _SEPARATORS.sub("_", raw).lower()
    where = f"plugin name {raw!r} (package name {package!r})"
    if not package[0].isalpha():
        raise ScaffoldError(f"{where}: a Python package name must start with a letter")
    if not package.isidentifier() or not package.isascii():
        raise ScaffoldError(f"{where}: not a valid Python package name")
    if keyword.iskeyword(package):
        raise ScaffoldError(f"{where}: {package!r} is a Python keyword and cannot be imported")
    if package in FRAMEWORK_PACKAGES:
        raise ScaffoldError(f"{where}: it would hide the framework's own package {package!r}")
    if package in sys.stdlib_module_names:
        raise ScaffoldError(f"{where}: it would hide the standard-library module {package!r}")
    spec = _find_module(package)
    if spec is not None:
        raise ScaffoldError(
            f"{where}: a module {package!r} is already importable here ({spec}); choose a name "
            f"that is not taken"
        )
    distribution = _SEPARATORS.sub("-", raw).lower()
    return PluginNames(distribution, package, package, f"{package}_clean_text")


def _find_module(package: str) -> str | None:
    try:
        spec = find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    return str(spec.origin or (list(spec.submodule_search_locations or []) or ["?"])[0])


def create_plugin(name: str, directory: str | Path = ".") -> Created:
    """Write an installable plugin package ``NAME`` in ``directory`` and return what was written.

    The package (src layout) declares an entry point in the group ``pipeline``, registers one
    documented transform (``<package>_clean_text``, built with ``beamline.ingest.record_stage``)
    and ships a README and a pytest module. An existing folder is never overwritten."""
    names = plugin_names(name)
    parent = Path(directory)
    target = parent / names.distribution
    _refuse_existing(target)
    values = {
        "distribution": names.distribution,
        "package": names.package,
        "entry_point": names.entry_point,
        "component": names.component,
    }
    layout = {
        "pyproject.toml": "pyproject.toml.tmpl",
        "README.md": "README.md.tmpl",
        ".gitignore": "gitignore.tmpl",
        f"src/{names.package}/__init__.py": "__init__.py.tmpl",
        f"src/{names.package}/transforms.py": "transforms.py.tmpl",
        "tests/test_transforms.py": "test_transforms.py.tmpl",
    }
    parent.mkdir(parents=True, exist_ok=True)
    staging = _staging(parent, names.distribution)
    staging.mkdir()  # not tempfile.mkdtemp: its folders are private (0700)
    try:
        for relative, template in layout.items():
            path = staging / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(render(f"plugin/{template}", values), encoding="utf-8")
        _refuse_existing(target)
        staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return Created(
        kind="plugin",
        path=target,
        files=[target / relative for relative in layout],
        details={
            "distribution": names.distribution,
            "package": names.package,
            "entry_point": names.entry_point,
            "component": names.component,
        },
    )


# --- pipeline files ---------------------------------------------------------------------------


def create_pipeline(
    name: str,
    template: str,
    plugins: Plugins,
    data: str | Path | None = None,
    directory: str | Path = ".",
) -> Created:
    """Write ``directory/NAME.yaml`` from ``template`` and check it with the spec loader.

    ``data`` becomes the ingest step's ``root``/``path``, written relative to the new file's
    folder (paths in a pipeline file resolve from there); without it a placeholder is written.
    Every component the template uses must be registered in ``plugins``: when one is not (say
    ``table_input`` for ``table``), nothing is written and the error names it."""
    if template not in PIPELINE_TEMPLATES:
        raise ScaffoldError(
            f"unknown template {template!r}; choose one of {', '.join(PIPELINE_TEMPLATES)}"
        )
    info = PIPELINE_TEMPLATES[template]
    name = name.removesuffix(".yaml").removesuffix(".yml")
    if not _PIPELINE_NAME.match(name):
        raise ScaffoldError(
            f"pipeline name {name!r}: use a letter, then letters, digits, '_' or '-' "
            f"(it names the file and the runs folder runs/<name>/)"
        )
    folder = Path(directory)
    target = folder / f"{name}.yaml"
    _refuse_existing(target)
    warnings: list[str] = []
    if data is None:
        data_value = info.default_data
        warnings.append(
            f"no --data given: the ingest step reads {data_value!r} (relative to the folder of "
            f"{target}); point it at {info.data}"
        )
    else:
        data_value = _relative_data(Path(data), folder)
        warnings.extend(_check_data(Path(data), info))
    text = render(
        f"pipeline/{template}.yaml.tmpl",
        {"name": name, "data": _yaml_scalar(data_value), "file": _shown(target)},
    )
    _check_components(template, yaml.safe_load(text), plugins)
    folder.mkdir(parents=True, exist_ok=True)
    staging = _staging(folder, f"{name}.yaml")
    try:
        with staging.open("x", encoding="utf-8") as out:
            out.write(text)
        spec = _load(staging, template, plugins)
        _refuse_existing(target)
        staging.rename(target)
    except BaseException:
        staging.unlink(missing_ok=True)
        raise
    return Created(
        kind="pipeline",
        path=target,
        files=[target],
        details={
            "name": name,
            "template": template,
            "data": data_value,
            "steps": {s.name: s.component.name for s in spec.steps},
        },
        warnings=warnings,
    )


def _relative_data(data: Path, folder: Path) -> str:
    """``data`` as the pipeline file in ``folder`` must write it: relative to that folder."""
    if data.is_absolute():
        return data.as_posix()
    relative = os.path.relpath(data.resolve(), folder.resolve())
    return Path(relative).as_posix()


def _check_data(data: Path, info: PipelineTemplate) -> list[str]:
    if not data.exists() and not any(c in str(data) for c in "*?["):
        return [f"--data {data} does not exist (yet): the ingest step expects {info.data}"]
    if data.exists() and info.folder and not data.is_dir():
        return [f"--data {data} is a file: the ingest step expects {info.data}"]
    if data.exists() and not info.folder and data.is_dir():
        return [f"--data {data} is a folder: the ingest step expects {info.data}"]
    return []


def _check_components(template: str, data: Any, plugins: Plugins) -> None:
    """Refuse a template whose components are not all registered, naming the missing ones."""
    registry = plugins.registry.components
    missing = [c for c in dict.fromkeys(_components_in(data)) if c not in registry]
    if not missing:
        return
    what = ", ".join(f"'{c}'" for c in missing)
    failed = "".join(
        f"\n  note: plugin '{p}' failed to load: {why}" for p, why in plugins.failed.items()
    )
    raise ScaffoldError(
        f"template {template!r} needs the component{'s' if len(missing) > 1 else ''} {what}, "
        f"which no loaded plugin registers (see 'pipeline plugins'; is the plugin that provides "
        f"{'them' if len(missing) > 1 else 'it'} installed and not disabled?); nothing was "
        f"written{failed}"
    )


def _components_in(value: Any, key: str = "") -> Iterator[str]:
    """Component names used in a pipeline document: ``component:`` values, bare transforms."""
    if isinstance(value, dict):
        if isinstance(value.get("component"), str):
            yield value["component"]
        for k, item in value.items():
            yield from _components_in(item, str(k))
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, str) and key == "transforms":
                yield item
            else:
                yield from _components_in(item, key)


def _load(path: Path, template: str, plugins: Plugins) -> Any:
    from ..spec import load_spec

    try:
        return load_spec(path, plugins, check_paths=False)  # the data may come later
    except PipelineError as exc:
        raise ScaffoldError(
            f"template {template!r} does not match the loaded components (nothing was "
            f"written): {exc}"
        ) from exc


# --- shared -----------------------------------------------------------------------------------


def render(template: str, values: dict[str, str]) -> str:
    """The text of ``templates/<template>`` with its ``$placeholders`` filled in."""
    source = resources.files(__package__).joinpath("templates", *template.split("/"))
    return Template(source.read_text(encoding="utf-8")).substitute(values)


def _staging(parent: Path, name: str) -> Path:
    """A hidden sibling path to write into before renaming it into place."""
    return parent / f".{name}.{secrets.token_hex(4)}.partial"


def _refuse_existing(path: Path) -> None:
    if path.exists() or path.is_symlink():
        what = "folder" if path.is_dir() else "file"
        raise ScaffoldError(
            f"{path} already exists (a {what}); refusing to overwrite it: choose another NAME "
            f"or --dir, or remove it first"
        )


def _yaml_scalar(value: str) -> str:
    """``value`` as one YAML scalar, quoted only where YAML needs it."""
    text = yaml.safe_dump(value, default_flow_style=True, width=10_000).strip()
    return text.removesuffix("...").strip()


def _shown(path: Path) -> str:
    """``path`` as a user would type it from the current folder."""
    relative = os.path.relpath(path.resolve(), Path.cwd())
    return path.resolve().as_posix() if relative.startswith("..") else Path(relative).as_posix()
