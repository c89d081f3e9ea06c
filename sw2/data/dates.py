"""Dates as a model reads them: parsed once with a format inferred from the training rows (and kept for new
rows), then a few numbers each (DATE_PARTS) instead of a category of hundreds of values."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd

MAX_DATE_CHARS = 64  # a longer value is no date (and would hold a parser for minutes)
YEARS = (1800, 2200)  # the years a date of a table may fall in
RELATIVE = ("now", "today")  # words pandas reads as the moment of parsing: no date of a row
DATE_PARTS = ("year", "month_sin", "month_cos", "weekday_sin", "weekday_cos", "yearday_sin", "yearday_cos", "days")


def parse_dates(values: pd.Series, fmt: str | None = None) -> tuple[pd.Series, str]:
    """`values` as UTC timestamps (NaT where one does not parse) and the format read: `fmt`, else one inferred
    from the first value, else each value on its own ("mixed"); a column already of dates reads as "ISO8601"
    (what its text is, in a CSV or a served request). No value longer than MAX_DATE_CHARS is parsed (the
    parsers take quadratic time on a long string), "now" and "today" are no dates, and neither is a year
    outside YEARS."""
    if pd.api.types.is_datetime64_any_dtype(values):
        return _plausible(pd.to_datetime(values, utc=True)), fmt or "ISO8601"
    strs = values.astype("string")
    strs = strs.where((strs.str.len() <= MAX_DATE_CHARS) & ~strs.str.strip().str.lower().isin(RELATIVE))
    if fmt is not None:
        return _plausible(pd.to_datetime(strs, errors="coerce", utc=True, format=fmt)), fmt
    present = strs.dropna()
    best: tuple[int, pd.Series, str] | None = None
    first = str(present.iloc[0]) if len(present) else ""
    for dayfirst in (False, True):  # 01/02/2020: the format under which more values parse
        with warnings.catch_warnings():  # "parsing in %Y-%m-%d format when dayfirst=True": the other try
            warnings.simplefilter("ignore", UserWarning)
            guessed = pd.tseries.api.guess_datetime_format(first, dayfirst=dayfirst) if first else None
        if guessed and (best is None or guessed != best[2]):
            parsed = _plausible(pd.to_datetime(strs, errors="coerce", utc=True, format=guessed))
            if best is None or parsed.notna().sum() > best[0]:
                best = (int(parsed.notna().sum()), parsed, guessed)
    if best is not None and best[0] >= 0.9 * len(present):
        return best[1], best[2]
    return _plausible(pd.to_datetime(strs, errors="coerce", utc=True, format="mixed")), "mixed"  # one by one


def _plausible(parsed: pd.Series) -> pd.Series:
    """`parsed` with the dates outside YEARS missing ("-1" read as the year -1 is no date of a table)."""
    return parsed.where(parsed.dt.year.between(*YEARS))


def date_features(parsed: pd.Series, origin: float) -> pd.DataFrame:
    """The numbers a date becomes (DATE_PARTS): its year, the month, weekday and day of the year as points on a
    circle (December sits beside January), and the days since `origin` (days since 1970 of the train's first
    date). Missing dates stay missing."""
    days = (parsed - pd.Timestamp(0, tz="UTC")).dt.total_seconds() / 86400.0
    month = 2 * math.pi * (parsed.dt.month - 1) / 12
    weekday = 2 * math.pi * parsed.dt.day_of_week / 7
    yearday = 2 * math.pi * (parsed.dt.day_of_year - 1) / 365.25
    parts = {
        "year": parsed.dt.year,
        "month_sin": np.sin(month),
        "month_cos": np.cos(month),
        "weekday_sin": np.sin(weekday),
        "weekday_cos": np.cos(weekday),
        "yearday_sin": np.sin(yearday),
        "yearday_cos": np.cos(yearday),
        "days": days - origin,
    }
    return pd.DataFrame({k: pd.Series(v, index=parsed.index, dtype=float) for k, v in parts.items()})


def days_since_1970(parsed: pd.Series) -> float:
    """The earliest date of `parsed` in days since 1970 (0 if none parsed): the origin of elapsed days."""
    first = parsed.min()
    return 0.0 if pd.isna(first) else float((first - pd.Timestamp(0, tz="UTC")).total_seconds() / 86400.0)
