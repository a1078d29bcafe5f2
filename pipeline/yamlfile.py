"""Safe YAML loading that remembers where every key stands, for errors that name the line."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import SpecError, closest

KeyPath = tuple[str | int, ...]
#: Mappings whose keys name things of the file (its steps): ``--set`` may change them, not invent
#: them (``--set steps.trian.epochs=3`` is a typo of ``train``, not a new step).
NAMED_KEYS: dict[KeyPath, str] = {("steps",): "step"}
_PLAIN_TAGS = ("tag:yaml.org,2002:map", "tag:yaml.org,2002:seq", "tag:yaml.org,2002:omap")


@dataclass
class Document:
    """A YAML document as plain Python values plus the line of every key path in it."""

    data: Any
    source: str
    lines: dict[KeyPath, int | str] = field(default_factory=dict)

    def where(self, path: KeyPath) -> str:
        """Return ``file:line`` for the deepest known prefix of ``path`` (or just the file).

        Values set on the command line are reported as ``--set key=value``."""
        for end in range(len(path), -1, -1):
            line = self.lines.get(tuple(path[:end]))
            if isinstance(line, str):
                return line
            if line is not None:
                return f"{self.source}:{line}"
        return self.source

    def override(self, assignment: str) -> None:
        """Apply ``a.b.c=value`` (value parsed as YAML) to the data, creating mappings as needed.

        Keys it creates are reported as ``--set a.b.c=value`` in errors. Under a mapping of
        ``NAMED_KEYS`` it creates nothing but a new entry's ``component``: an unknown name there
        is an error with the closest existing one."""
        key, sep, raw = assignment.partition("=")
        if not sep or not key.strip():
            raise SpecError(
                f"--set {assignment}: expected KEY=VALUE, for example steps.train.epochs=3"
            )
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError as exc:
            raise SpecError(f"--set {assignment}: the value is not valid YAML: {exc}") from None
        if self.data is None:
            self.data = {}
        node: Any = self.data
        path: list[str | int] = []
        parts = key.strip().split(".")
        for depth, part in enumerate(parts):
            last = depth == len(parts) - 1
            if isinstance(node, list) and part.isdigit() and int(part) < len(node):
                index: str | int = int(part)
            elif isinstance(node, dict):
                index = part
            else:
                raise SpecError(
                    f"--set {assignment}: {dotted(tuple(path))} is not a mapping, "
                    f"so it has no key '{part}'"
                )
            if isinstance(node, dict) and index not in node:
                self._check_new_key(tuple(path), str(index), parts[depth + 1 :], assignment, node)
            path.append(index)
            if last:
                node[index] = value
            else:
                if isinstance(node, dict) and index not in node:
                    node[index] = {}
                    self.lines[tuple(path)] = f"--set {assignment}"
                node = node[index]
        self.lines[tuple(path)] = f"--set {assignment}"

    def _check_new_key(
        self, parent: KeyPath, key: str, rest: list[str], assignment: str, node: dict
    ) -> None:
        noun = NAMED_KEYS.get(parent)
        if noun is None or rest == ["component"]:
            return
        names = [str(k) for k in node]
        raise SpecError(
            f"--set {assignment}: no {noun} named '{key}' in {self.source}"
            f"{closest(key, names) or ' (' + noun + 's: ' + ', '.join(names) + ')'}"
        )


def dotted(path: KeyPath) -> str:
    """Render a key path as users write it in ``--set``: ``steps.train.epochs`` or ``a.b[0]``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


def load_yaml(text: str, source: str) -> Document:
    """Parse ``text`` with the safe loader; raise ``SpecError`` naming ``source`` and the line."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise SpecError(f"{source}{line}: malformed YAML: {problem}") from None
    finally:
        loader.dispose()
    doc = Document(data=None, source=source)
    if node is not None:
        doc.data = _convert(node, (), doc, yaml.SafeLoader(""))
    return doc


def load_yaml_file(path: str | Path) -> Document:
    """Read and parse a YAML file; a missing or unreadable file is a ``SpecError``."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"{path}: cannot read: {exc}") from None
    return load_yaml(text, str(path))


def _convert(node: yaml.Node, path: KeyPath, doc: Document, constructor: yaml.SafeLoader) -> Any:
    doc.lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode | yaml.SequenceNode) and node.tag not in _PLAIN_TAGS:
        raise SpecError(
            f"{doc.source}:{node.start_mark.line + 1}: unsupported YAML tag {node.tag} "
            "(pipeline files hold plain mappings, lists and values)"
        )
    if isinstance(node, yaml.MappingNode):
        constructor.flatten_mapping(node)
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = constructor.construct_object(key_node, deep=True)
            if not isinstance(key, str | int | float | bool):
                raise SpecError(
                    f"{doc.source}:{key_node.start_mark.line + 1}: keys must be scalars"
                )
            key = str(key)
            if key in out:
                raise SpecError(
                    f"{doc.source}:{key_node.start_mark.line + 1}: duplicate key '{key}' "
                    f"in {dotted(path)}"
                )
            doc.lines[path + (key,)] = key_node.start_mark.line + 1
            out[key] = _convert(value_node, path + (key,), doc, constructor)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_convert(item, path + (i,), doc, constructor) for i, item in enumerate(node.value)]
    try:
        return constructor.construct_object(node, deep=True)
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None) or str(exc)
        raise SpecError(f"{doc.source}:{node.start_mark.line + 1}: {problem}") from None
