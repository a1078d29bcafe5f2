"""Writing a trained Keras model with one serving endpoint as a byte-stable SavedModel.

Keras is imported inside the function. Equal weights give equal files (see ``stable_save``):
load the model inside ``stable_save.fresh_names()`` and write it with ``write_saved_model``
in that same block::

    with fresh_names():
        model = load_keras_model(artifact)
        write_saved_model(model, out / "saved_model", "serving_default", serve, [signature])
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any


def write_saved_model(
    model: Any,
    directory: Path,
    signature: str,
    endpoint: Callable[..., Any],
    input_signature: list[Any] | None = None,
) -> None:
    """Write ``model`` to ``directory`` as a SavedModel whose one signature ``signature``
    serves ``endpoint``, byte for byte the same for the same weights: variables in the model's
    order, dropout generator states zeroed (``stable_save.stable_export_archive``), traced
    functions numbered from 1 and ``fingerprint.pb`` rewritten
    (``stable_save.canonical_function_names``).

    ``input_signature`` (``tf.TensorSpec`` structures) is required unless ``endpoint`` is a
    ``tf.function`` with its own. Call it inside the ``stable_save.fresh_names()`` block that
    loaded ``model``, or the names Keras gave it depend on what the process built before."""
    from .stable_save import canonical_function_names, stable_export_archive

    archive = stable_export_archive(model)
    if input_signature is None:
        archive.add_endpoint(signature, endpoint)
    else:
        archive.add_endpoint(signature, endpoint, input_signature=input_signature)
    archive.write_out(str(directory), verbose=False)
    canonical_function_names(directory)
