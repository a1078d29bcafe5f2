"""Text: sources (CSV/JSONL columns, folders of text files), Beam text stages, tokenising input, sequence models."""
