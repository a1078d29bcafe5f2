"""The built-in plugins. Each module registers its components through the public hooks only.

``BUILTIN_PLUGINS`` maps a plugin's name (what ``--disable-plugin`` takes) to its module."""

BUILTIN_PLUGINS: dict[str, str] = {
    "images": "beamline_plugins.images",
    "tables": "beamline_plugins.tables",
    "validation": "beamline_plugins.validation",
    "keras": "beamline_plugins.keras",
    "text": "beamline_plugins.text",
    "audio": "beamline_plugins.audio",
    "generative": "beamline_plugins.generative",
    "streaming": "beamline_plugins.streaming",
    "explain": "beamline_plugins.explain",
    "broker": "beamline_plugins.broker",
    "serving": "beamline_plugins.serving",
    "seq2seq": "beamline_plugins.seq2seq",
    "forecast": "beamline_plugins.forecast",
    "tuning": "beamline_plugins.tuning",
}
