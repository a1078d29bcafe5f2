"""Ordered tables into forecasting windows, split in time order (pure Python and pandas).

A series is a table of timestamps and value columns, sorted by time. Optionally it is resampled
to a regular frequency (the mean of each period) and gaps are filled by linear interpolation in
time (a gap at either end takes the nearest value). Windows: ``lookback`` rows of every value
column, the target column first (the history), and the next ``horizon`` values of the target
column (the future), starting every ``stride`` rows.

Time order split: the first ``train`` share of the series' rows is the train period, the next
``eval`` share the eval period, the rest the test period. A window belongs to the period that
holds its whole future; its history may reach back into earlier periods (that is the past). A
window whose future straddles two periods is rejected with the reason, so that no split ever
holds values of a later split as targets.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from beamline.ingest import SOURCE_KEY, Reject

PERIODS = ("train", "eval", "test")


@dataclass(frozen=True)
class Windowing:
    """How a series becomes windows: sizes and the time-order shares."""

    lookback: int
    horizon: int
    stride: int
    shares: tuple[float, float, float]


def period_bounds(rows: int, shares: tuple[float, float, float]) -> tuple[int, int]:
    """``(first eval row, first test row)`` of a series of ``rows`` rows."""
    total = sum(shares)
    first_eval = int(round(rows * shares[0] / total))
    first_test = int(round(rows * (shares[0] + shares[1]) / total))
    return first_eval, first_test


def period_of(row: int, bounds: tuple[int, int]) -> str:
    """The period (train, eval, test) of a row."""
    return "train" if row < bounds[0] else "eval" if row < bounds[1] else "test"


def regular(frame: Any, time_column: str, columns: list[str], frequency: str) -> Any:
    """The table sorted by time, resampled to ``frequency`` (period means) with gaps filled.

    ``frequency`` is a pandas offset alias (``MS``: month starts, ``W``, ``D``...) or ``""``
    for the rows as they are (then missing values are filled the same way)."""
    import pandas as pd

    frame = frame.copy()
    frame[time_column] = pd.to_datetime(frame[time_column])
    series = frame.set_index(time_column)[columns].astype("float64").sort_index()
    if frequency:
        series = series.resample(frequency).mean()
    series = series.interpolate(method="time", limit_direction="both")
    return series


def windows(series: Any, target: str, windowing: Windowing, where: str) -> Iterator[Any]:
    """Yield window records (and ``Reject`` for windows straddling two periods)."""
    values = series.to_numpy(dtype="float64")
    target_values = series[target].to_numpy(dtype="float64")
    times = [t.isoformat() for t in series.index]
    rows = len(values)
    bounds = period_bounds(rows, windowing.shares)
    lookback, horizon = windowing.lookback, windowing.horizon
    for start in range(lookback, rows - horizon + 1, windowing.stride):
        first, last = period_of(start, bounds), period_of(start + horizon - 1, bounds)
        source = f"{where}:{times[start]}"
        if first != last:
            yield Reject(
                f"forecast period {times[start]}..{times[start + horizon - 1]} straddles the "
                f"{first}/{last} boundary (kept out so that no split holds another's targets)",
                source,
            )
            continue
        yield {
            SOURCE_KEY: source,
            "time": times[start],
            "row": start,
            "history": values[start - lookback : start].reshape(-1).tolist(),
            "future": target_values[start : start + horizon].tolist(),
            "split": first,
        }


def read_table(item: tuple[Any, ...]) -> Iterator[Any]:
    """Read one table (``csv`` file or ``statsmodels`` data set) and yield its windows."""
    import pandas as pd

    kind, location, time_column, columns, target, frequency, windowing = item
    if kind == "statsmodels":
        frame = statsmodels_frame(location)
        time_column = "timestamp"
    else:
        frame = pd.read_csv(location)
        missing = [c for c in [time_column, *columns] if c not in frame.columns]
        if missing:
            yield Reject(
                f"no column {', '.join(missing)} (columns: {list(frame.columns)})", location
            )
            return
    columns = columns or [c for c in frame.columns if c != time_column]
    target = target or columns[0]
    if target not in columns:
        yield Reject(f"target column {target!r} is not a value column ({columns})", location)
        return
    columns = [target] + [c for c in columns if c != target]  # the target is always first
    series = regular(frame, time_column, columns, frequency)
    yield from windows(series, target, windowing, location)


#: The statsmodels data sets this source reads by name: loader module and value columns.
STATSMODELS_SETS = {"co2": ("statsmodels.datasets.co2", ["co2"])}


def statsmodels_frame(name: str) -> Any:
    """A statsmodels data set as a table with a ``timestamp`` column."""
    import importlib

    module, _ = STATSMODELS_SETS[name]
    data = importlib.import_module(module).load_pandas().data
    frame = data.reset_index()
    return frame.rename(columns={frame.columns[0]: "timestamp"})
