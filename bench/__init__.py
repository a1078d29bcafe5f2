"""Benchmarks, run on demand: ``python -m bench [--smoke] [--json FILE]``."""
