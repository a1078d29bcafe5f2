"""The taxi tables of the taxi benchmark cases, built once into ``bench/.cache``.

``taxi_table(rows)`` is a folder with the same rows in two layouts: ``all.csv`` with a ``split``
column (ours reads it with ``split.from_feature``) and ``train/``, ``eval/``, ``test/`` holding
the rows without it (TFX's CsvExampleGen input splits). Each row's split is drawn once here
(2/3 train, 1/6 eval, 1/6 test, numpy seed 0), so both sides train and test on the same rows.

At the sample's own size (15,002 rows) the rows are TFX's sample as shipped
(``pipelines/data/chicago_taxi/data.csv``). Larger tables tile it: copy 0 is the sample, every
later copy ``k`` (numpy seed ``k``) perturbs the numeric columns (fare, tips, trip_miles:
x (1 + N(0, 0.05)), clipped at 0, 2 decimals; trip_seconds likewise, whole seconds; the four
coordinates + N(0, 0.002) degrees, 6 decimals) and shuffles the timestamps across the copy's
rows (``trip_start_timestamp`` with its hour, day and month, so they stay consistent). Empty
cells stay empty; text and code columns are kept.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from .common import CACHE, ROOT

SAMPLE = ROOT / "pipelines" / "data" / "chicago_taxi" / "data.csv"
SAMPLE_ROWS = 15_002
SPLITS = (("train", 2 / 3), ("eval", 1 / 6), ("test", 1 / 6))
SCALED = {"fare": 2, "tips": 2, "trip_miles": 2, "trip_seconds": 0}
COORDINATES = ["pickup_latitude", "pickup_longitude", "dropoff_latitude", "dropoff_longitude"]
TIME = ["trip_start_timestamp", "trip_start_hour", "trip_start_day", "trip_start_month"]


def _tiled(rows: int) -> object:
    import numpy as np
    import pandas as pd

    sample = pd.read_csv(SAMPLE, dtype=str, keep_default_na=False)
    index = np.arange(rows) % len(sample)
    copy = np.arange(rows) // len(sample)
    table = sample.iloc[index].reset_index(drop=True)
    later = copy > 0
    if not later.any():
        return table
    noise = np.zeros(rows)
    shift = np.zeros((rows, len(COORDINATES)))
    order = np.arange(rows)
    for k in range(1, int(copy.max()) + 1):
        rng = np.random.default_rng(k)
        where = np.flatnonzero(copy == k)
        noise[where] = rng.normal(0, 0.05, len(where))
        shift[where] = rng.normal(0, 0.002, (len(where), len(COORDINATES)))
        order[where] = where[rng.permutation(len(where))]
    for column, decimals in SCALED.items():
        values = pd.to_numeric(table[column].replace("", np.nan))
        moved = np.where(later, np.clip(values * (1 + noise), 0, None), values)
        text = pd.Series(moved).map(lambda v, d=decimals: "" if v != v else f"{v:.{d}f}")
        table[column] = np.where(later, text, table[column])
    for i, column in enumerate(COORDINATES):
        values = pd.to_numeric(table[column].replace("", np.nan))
        text = pd.Series(values + shift[:, i]).map(lambda v: "" if v != v else f"{v:.6f}")
        table[column] = np.where(later, text, table[column])
    for column in TIME:
        table[column] = table[column].to_numpy()[order]
    return table


def taxi_table(rows: int = SAMPLE_ROWS) -> Path:
    """The folder of a ``rows``-row taxi table (see the module docstring); built once."""
    target = CACHE / f"taxi-{rows}"
    if (target / "all.csv").exists():
        return target
    import numpy as np

    table = _tiled(rows)
    draw = np.random.default_rng(0).random(rows)
    edges = np.cumsum([share for _, share in SPLITS])
    split = np.array([name for name, _ in SPLITS])[np.searchsorted(edges, draw, side="right")]
    tmp = target.with_name(target.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    for name, _ in SPLITS:
        (tmp / name).mkdir(parents=True)
        table[split == name].to_csv(tmp / name / "data.csv", index=False)
    table.assign(split=split).to_csv(tmp / "all.csv", index=False)
    shutil.rmtree(target, ignore_errors=True)
    tmp.replace(target)
    return target


def split_rows(folder: Path, split: str) -> int:
    """The number of rows of one split of a ``taxi_table`` folder."""
    with (folder / split / "data.csv").open() as handle:
        return sum(1 for _ in handle) - 1
