"""The TFX side of case 5; runs in TFX's own virtual environment, never imported by bench."""
