"""Time-series forecasting (components follow)."""
