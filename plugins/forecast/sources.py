"""The ``time_series`` source: an ordered table (CSV or a statsmodels series) into windows."""

from __future__ import annotations

from typing import Any, Literal

from beamline import ParamError, Source, StepContext, param
from beamline.components import Split
from beamline.fingerprint import files_digest
from beamline.ingest import create_source

from . import series

SPLIT_FEATURE = "split"


class TimeSeries(Source):
    """Forecasting windows from an ordered table, split in time order (never at random).

    Reads a CSV file (``path``: a ``time_column`` and value columns) or a series statsmodels
    ships (``dataset: co2``, the Mauna Loa CO2 series: weekly, 1958-2001). With ``frequency``
    (a pandas offset alias, ``MS`` for months) the rows are resampled to period means; gaps are
    filled by linear interpolation in time. Each record is one window: ``history`` (the
    ``lookback`` rows of every value column, flattened row by row), ``future`` (the next
    ``horizon`` values of ``target``), ``time`` (the first forecast time) and ``row``.

    Time order: the first ``train`` share of the rows is the train period, the next ``eval``
    share the eval period, the rest the test period; a window goes to the period holding its
    whole future, and a window whose future straddles two periods is rejected with the reason.
    The split is written as the feature ``split`` and kept by the core (``split.from_feature``,
    the default here)."""

    name = "time_series"
    path: str = param("", help="CSV file (relative to the pipeline file); '' with dataset")
    dataset: Literal["", "co2"] = param("", help="a statsmodels series instead of path")
    time_column: str = param("timestamp", help="the CSV column of timestamps")
    value_columns: list[str] = param([], help="value columns ([]: every other column)")
    target: str = param("", help="the column to forecast (default: the first value column)")
    frequency: str = param("", help="resample to this pandas frequency ('' keeps the rows)")
    lookback: int = param(24, help="rows of history per window", ge=1)
    horizon: int = param(12, help="values forecast per window", ge=1)
    stride: int = param(1, help="rows between window starts", ge=1)
    train: float = param(0.7, help="share of the rows (oldest first) for training", gt=0, lt=1)
    eval: float = param(0.15, help="share of the rows after train for evaluation", ge=0, lt=1)
    test: float = param(0.15, help="share of the rows at the end for the final test", gt=0, lt=1)
    split: Split = param(
        Split(from_feature=SPLIT_FEATURE), help="keep the time-order split this source writes"
    )

    def check(self) -> None:
        """One of path or dataset; shares sum to 1; the split is the time-order one."""
        super().check()
        if bool(self.path) == bool(self.dataset):
            raise ParamError("path", "give either path (a CSV file) or dataset, not both")
        total = self.train + self.eval + self.test
        if abs(total - 1.0) > 1e-6:
            raise ParamError("train", f"train + eval + test is {total:g}, not 1")
        if self.split.from_feature != SPLIT_FEATURE:
            raise ParamError(
                "split",
                f"a time series is split in time order: keep split.from_feature "
                f"'{SPLIT_FEATURE}' (set the shares with train, eval and test)",
            )

    def location(self, ctx: StepContext) -> str:
        """The file or data set this source reads."""
        return str(ctx.resolve(self.path)) if self.path else f"statsmodels:{self.dataset}"

    def read(self, ctx: StepContext) -> Any:
        """Read the table and cut it into windows in Beam (one reader: the series is small)."""
        windowing = series.Windowing(
            self.lookback, self.horizon, self.stride, (self.train, self.eval, self.test)
        )
        kind = "csv" if self.path else "statsmodels"
        where = str(ctx.resolve(self.path)) if self.path else self.dataset
        columns = list(self.value_columns)
        item = (kind, where, self.time_column, columns, self.target, self.frequency, windowing)
        return create_source(self.name, [item], series.read_table)

    def feature_info(self, ctx: StepContext) -> dict[str, Any]:
        """Features: ``history``, ``future`` (numeric lists), ``time`` and ``row`` (ids)."""
        features = {
            "history": {"modality": "numeric", "length": self.lookback},
            "future": {"modality": "numeric", "length": self.horizon},
            "time": {"modality": "id"},
            "row": {"modality": "id"},
        }
        return {"features": features, "label": None, "warnings": []}

    def data_fingerprint(self, ctx: StepContext) -> str | None:
        """A digest of the CSV file, or the data set's name and statsmodels' version."""
        if self.path:
            path = ctx.resolve(self.path)
            return files_digest([path]) if path.exists() else "missing"
        from importlib.metadata import version

        return f"statsmodels {version('statsmodels')}:{self.dataset}"
