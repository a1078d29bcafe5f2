"""Byte-stable model files: equal weights give equal bytes, so a file's digest identifies it.

Two things make Keras' files differ when nothing in them does:

* a ``.keras`` file is a zip whose ``model.weights.h5`` entry carries the time of saving and whose
  ``metadata.json`` says when it was saved (``date_saved``); ``normalise_keras_file`` rewrites
  the zip with the fixed zip epoch (1980-01-01) for both, entries and compression unchanged;
* ``keras.export.ExportArchive`` lists the variables its endpoints use in the order of a set of
  object ids, so the SavedModel's object graph (``saved_model.pb``) and its variables'
  checkpoint order them differently on every export; ``stable_export_archive`` orders them as
  the tracked models list their variables, and zeroes the dropout layers' random-generator
  states, which loading a model draws anew and serving never uses.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import Any

#: The earliest time a zip entry can carry; what every entry of a normalised file says.
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
FIXED_DATE_SAVED = "1980-01-01@00:00:00"


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
            fixed = zipfile.ZipInfo(entry.filename, date_time=ZIP_EPOCH)
            fixed.compress_type = entry.compress_type
            fixed.external_attr = entry.external_attr
            target.writestr(fixed, data)
    os.replace(tmp, path)


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
