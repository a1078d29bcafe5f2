"""Streaming ingest: watch a folder (or a TestStream), windowed shards, windowed statistics, drift alarms."""
