"""Byte-stable model files: equal weights give equal bytes, so a file's digest identifies it.

These make Keras' files differ when nothing in them does:

* a ``.keras`` file is a zip whose ``model.weights.h5`` entry carries the time of saving and whose
  ``metadata.json`` says when it was saved (``date_saved``); its ``config.json`` gives an object
  that two layers share (a ``Bidirectional`` layer's initializers) the object's ``id()`` as
  ``shared_object_id``; ``normalise_keras_file`` rewrites the zip with the fixed zip epoch
  (1980-01-01) for both and those ids numbered 1, 2, ..., entries and compression unchanged;
* ``keras.export.ExportArchive`` lists the variables its endpoints use in the order of a set of
  object ids, so the SavedModel's object graph (``saved_model.pb``) and its variables'
  checkpoint order them differently on every export; ``stable_export_archive`` orders them as
  the tracked models list their variables, and zeroes the dropout layers' random-generator
  states, which loading a model draws anew and serving never uses;
* Keras names some objects of a loaded model with a per-process counter (the dropout layers'
  seed generators: ``seed_generator_3`` in a process that built two models before), and the
  name reaches the SavedModel's graph and checkpoint: ``fresh_names`` counts from zero, as a
  fresh process does, so an export made in the process that trained equals a re-export;
* TensorFlow names the traced functions of a SavedModel with a per-process counter
  (``__inference_signature_wrapper_serve_2306``), and some functions' inputs after the tensor
  they capture and that counter (``shape_12427``, in a ``tf.while_loop`` of the seq2seq
  decoder); ``canonical_function_names`` renumbers them in ``saved_model.pb`` (1, 2, ... in the
  order they were made) and rewrites ``fingerprint.pb``.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

#: The earliest time a zip entry can carry; what every entry of a normalised file says.
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
FIXED_DATE_SAVED = "1980-01-01@00:00:00"
SHARED_OBJECT_ID = "shared_object_id"


def normalise_keras_file(path: str | Path) -> None:
    """Rewrite the ``.keras`` zip at ``path`` with fixed entry times and ``date_saved``
    (written beside it, then renamed over it)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.normalised")
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(tmp, "w") as target:
        for entry in source.infolist():
            data = source.read(entry)
            if entry.filename == "metadata.json":
                metadata = json.loads(data)
                if "date_saved" in metadata:
                    metadata["date_saved"] = FIXED_DATE_SAVED
                data = json.dumps(metadata).encode()
            elif entry.filename == "config.json" and SHARED_OBJECT_ID.encode() in data:
                config = json.loads(data)
                _number_shared_objects(config, {})
                data = json.dumps(config).encode()
            fixed = zipfile.ZipInfo(entry.filename, date_time=ZIP_EPOCH)
            fixed.compress_type = entry.compress_type
            fixed.external_attr = entry.external_attr
            target.writestr(fixed, data)
    os.replace(tmp, path)


def _number_shared_objects(node: Any, numbers: dict[Any, int]) -> None:
    """Replace every ``shared_object_id`` in ``node`` (a config's JSON) by 1, 2, ... in the
    order the ids first appear: Keras writes the object's ``id()`` there, and reads it only to
    give the configs that carry one id one object."""
    if isinstance(node, dict):
        if SHARED_OBJECT_ID in node:
            old = node[SHARED_OBJECT_ID]
            node[SHARED_OBJECT_ID] = numbers.setdefault(old, len(numbers) + 1)
        children = node.values()
    elif isinstance(node, list):
        children = node
    else:
        return
    for child in children:
        _number_shared_objects(child, numbers)


@contextlib.contextmanager
def fresh_names() -> Iterator[None]:
    """Inside, Keras' automatic names are counted from zero, as in a fresh process (the
    counters of the process are put back after): load the model to export inside."""
    # Keras keeps the counters in its global state only (keras.utils.clear_session resets
    # them with everything else); this swaps them alone.
    from keras.src.backend.common import global_state

    key = "object_name_uids"
    saved = global_state.get_global_attribute(key)
    global_state.set_global_attribute(key, collections.defaultdict(int))
    try:
        yield
    finally:
        global_state.set_global_attribute(key, saved)


def stable_export_archive(*models: Any) -> Any:
    """A ``keras.export.ExportArchive`` tracking ``models`` that writes its variables in a
    stable order: that of the models' ``variables``, then any others by name and shape."""
    import keras

    archive = keras.export.ExportArchive()  # a backend's class: wrapped, not subclassed
    for model in models:
        for variable in model.variables:
            if "seed_generator_state" in variable.path:  # drawn at load; unused when serving
                variable.assign(keras.ops.zeros_like(variable))
        archive.track(model)
    rank: dict[int, int] = {}
    for model in models:
        for variable in model.variables:
            rank.setdefault(id(getattr(variable, "value", variable)), len(rank))
    collect = archive._filter_and_track_resources

    def key(variable: Any) -> tuple[int, str, str]:
        return rank.get(id(variable), len(rank)), variable.name, str(variable.shape)

    def filter_and_track_in_order() -> None:
        collect()
        found = list(archive._tf_trackable._all_variables)
        archive._tf_trackable._all_variables = sorted(found, key=key)

    archive._filter_and_track_resources = filter_and_track_in_order
    return archive


SAVED_MODEL_PB = "saved_model.pb"
_NUMBERED = re.compile(r"^(.*)_(\d+)$")


def canonical_function_names(export_dir: str | Path) -> None:
    """Rename the functions of the SavedModel in ``export_dir`` from TensorFlow's per-process
    counter to ``<name>_<n>``, n counting its functions in the order they were traced,
    everywhere they are named (and number captured inputs the same way, and the function
    inputs named after a captured tensor and that counter); sort the function library by the
    new names; write ``saved_model.pb`` whole, then its ``fingerprint.pb`` anew."""
    from tensorflow.core.protobuf import saved_model_pb2
    from tensorflow.python.saved_model import fingerprinting_utils

    path = Path(export_dir) / SAVED_MODEL_PB
    saved = saved_model_pb2.SavedModel()
    saved.ParseFromString(path.read_bytes())
    found: list[tuple[int, str, str]] = []
    for meta_graph in saved.meta_graphs:
        for function in meta_graph.graph_def.library.function:
            match = _NUMBERED.match(function.signature.name)
            if match:
                found.append((int(match.group(2)), match.group(1), match.group(0)))
    # one number per function, in the order they were traced (TensorFlow's fingerprint orders
    # the functions by that number: two with one number would hash in a random order)
    mapping = {old: f"{base}_{rank}" for rank, (_, base, old) in enumerate(sorted(found), 1)}
    # captured inputs are named with the same counter (``_user_specified_name: "2288"``)
    captured = [v for v in _attrs_named(saved, "_user_specified_name") if v.s.isdigit()]
    ranks = {n: str(i) for i, n in enumerate(sorted({int(v.s) for v in captured}), start=1)}
    for value in captured:
        value.s = ranks[int(value.s)].encode()
    for meta_graph in saved.meta_graphs:
        for function in meta_graph.graph_def.library.function:
            _number_counted_args(function)
    if mapping:
        pattern = re.compile(
            "|".join(re.escape(n) for n in sorted(mapping, key=len, reverse=True)) + r"(?!\d)"
        )
        _rename_in(saved, lambda text: pattern.sub(lambda m: mapping[m.group(0)], text))
        for meta_graph in saved.meta_graphs:
            library = meta_graph.graph_def.library
            functions = sorted(library.function, key=lambda f: f.signature.name)
            del library.function[:]
            library.function.extend(functions)
            gradients = sorted(library.gradient, key=lambda g: (g.function_name, g.gradient_func))
            del library.gradient[:]
            library.gradient.extend(gradients)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_bytes(saved.SerializeToString(deterministic=True))
    os.replace(tmp, path)
    fingerprinting_utils.write_fingerprint(str(export_dir))


def _number_counted_args(function: Any) -> None:
    """Rename the inputs of ``function`` (a ``FunctionDef``) that TensorFlow named after a
    captured tensor and a per-process counter (``shape_12427``: no ``_user_specified_name``)
    to ``<name>_captured<n>``, n counting them in argument order, wherever the function names
    them. (TensorFlow's own unnamed inputs, ``unknown_<n>``, are numbered per function.)"""
    found = []
    for index, arg in enumerate(function.signature.input_arg):
        match = _NUMBERED.match(arg.name)
        named = index in function.arg_attr and "_user_specified_name" in (
            function.arg_attr[index].attr
        )
        if match and match.group(1) != "unknown" and not named:
            found.append((match.group(0), match.group(1)))
    if not found:
        return
    mapping = {old: f"{base}_captured{n}" for n, (old, base) in enumerate(found, 1)}
    pattern = re.compile(r"(?<![\w/])(" + "|".join(map(re.escape, mapping)) + r")(?!\w)")
    _rename_in(function, lambda text: pattern.sub(lambda m: mapping[m.group(1)], text))


def _rename_in(message: Any, rename: Any) -> None:
    """Apply ``rename`` to every string (and UTF-8 bytes) field, map key and value of
    ``message``, recursively."""
    for field, value in message.ListFields():
        entry = field.message_type
        if entry is not None and entry.GetOptions().map_entry:
            items = [(_renamed(k, rename), v) for k, v in value.items()]
            if entry.fields_by_name["value"].message_type is not None:
                copies = []
                for key, item in items:
                    _rename_in(item, rename)
                    copy = type(item)()
                    copy.CopyFrom(item)
                    copies.append((key, copy))
                value.clear()
                for key, copy in copies:
                    value[key].CopyFrom(copy)
            else:
                value.clear()
                value.update({k: _renamed(v, rename) for k, v in items})
        elif entry is not None:
            for item in value if _repeated(field) else [value]:
                _rename_in(item, rename)
        elif field.type in (field.TYPE_STRING, field.TYPE_BYTES):
            if _repeated(field):
                value[:] = [_renamed(v, rename) for v in value]
            else:
                setattr(message, field.name, _renamed(value, rename))


def _attrs_named(message: Any, key: str) -> Any:
    """Every value under ``key`` in the ``attr`` maps (of ``AttrValue``) within ``message``."""
    for field, value in message.ListFields():
        entry = field.message_type
        if entry is None:
            continue
        if entry.GetOptions().map_entry:
            if field.name == "attr" and key in value:
                yield value[key]
            if entry.fields_by_name["value"].message_type is not None:
                for item in value.values():
                    yield from _attrs_named(item, key)
        else:
            for item in value if _repeated(field) else [value]:
                yield from _attrs_named(item, key)


def _repeated(field: Any) -> bool:
    return field.label == field.LABEL_REPEATED


def _renamed(value: Any, rename: Any) -> Any:
    if isinstance(value, str):
        return rename(value)
    if isinstance(value, bytes):
        try:
            return rename(value.decode("utf-8")).encode("utf-8")
        except UnicodeDecodeError:
            return value
    return value
