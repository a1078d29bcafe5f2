"""Writing a trained Keras model with one serving endpoint as a SavedModel.

Keras is imported inside the function. (Byte-stable exports: ``stable_save``.)
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
    serves ``endpoint``.

    ``input_signature`` (``tf.TensorSpec`` structures) is required unless ``endpoint`` is a
    ``tf.function`` with its own."""
    import keras

    archive = keras.export.ExportArchive()
    archive.track(model)
    if input_signature is None:
        archive.add_endpoint(signature, endpoint)
    else:
        archive.add_endpoint(signature, endpoint, input_signature=input_signature)
    archive.write_out(str(directory), verbose=False)
