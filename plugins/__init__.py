"""The built-in plugins. Each module registers its components through the public hooks only.

``BUILTIN_PLUGINS`` maps a plugin's name (what ``--disable-plugin`` takes) to its module."""

BUILTIN_PLUGINS: dict[str, str] = {
    "images": "plugins.images",
    "tables": "plugins.tables",
    "validation": "plugins.validation",
    "keras": "plugins.keras",
    "text": "plugins.text",
    "audio": "plugins.audio",
    "generative": "plugins.generative",
    "streaming": "plugins.streaming",
}
