"""Sequence helpers the sequence plugins share (a library, not a plugin: it registers nothing).

Speech-to-text (``audio``), sequence-to-sequence and forecasting plugins import from here on
purpose; nothing here imports a plugin, TensorFlow or numpy. Import the modules themselves
(``from beamline_plugins.sequences.metrics import error_rate``).

Public surface, by module:

``metrics``
    Edit distance between token sequences and the error rates built on it:
    ``edit_distance``, ``ErrorCounts``, ``error_counts``, ``error_rate``, ``word_error_rate``,
    ``char_error_rate``, ``words``, ``chars``.
"""
