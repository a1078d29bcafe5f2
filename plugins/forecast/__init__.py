"""Time-series forecasting: windows split in time order, forecasters, MASE, raw-window export.

Modules: ``sources`` and ``series`` (``time_series``: an ordered table, CSV or a statsmodels
series, into windows, split in time order), ``inputs`` (``window_input``: batches and the
train statistics), ``models`` (``rnn_forecaster``: LSTM/GRU, ``cnn_forecaster``: dilated
causal 1-D convolutions), ``trainer`` (``forecast_trainer``), ``evaluator``
(``forecast_evaluator``: MAE, RMSE, MASE against seasonal naive, forecast plot), ``exporter``
(``forecast_exporter``). Importing this package imports neither TensorFlow, Keras, pandas nor
Beam.
"""

from __future__ import annotations

from typing import Any

from beamline import hookimpl

from .evaluator import ForecastEvaluator
from .exporter import ForecastExporter
from .inputs import WindowInput
from .models import CnnForecaster, RnnForecaster
from .sources import TimeSeries
from .trainer import ForecastTrainer

__all__ = [
    "CnnForecaster",
    "ForecastEvaluator",
    "ForecastExporter",
    "ForecastTrainer",
    "RnnForecaster",
    "TimeSeries",
    "WindowInput",
]


@hookimpl
def register_sources(register: Any) -> None:
    """Register ``time_series``."""
    register(TimeSeries)


@hookimpl
def register_input_pipelines(register: Any) -> None:
    """Register ``window_input``."""
    register(WindowInput)


@hookimpl
def register_models(register: Any) -> None:
    """Register ``rnn_forecaster`` and ``cnn_forecaster``."""
    register(RnnForecaster)
    register(CnnForecaster)


@hookimpl
def register_trainers(register: Any) -> None:
    """Register ``forecast_trainer``."""
    register(ForecastTrainer)


@hookimpl
def register_evaluators(register: Any) -> None:
    """Register ``forecast_evaluator``."""
    register(ForecastEvaluator)


@hookimpl
def register_exporters(register: Any) -> None:
    """Register ``forecast_exporter``."""
    register(ForecastExporter)
