"""Statutory working days (chinesecalendar), with a Monday–Friday fallback where it has no data."""

from __future__ import annotations

import warnings
from datetime import date, timedelta

import numpy as np


def working_days(start: date, end: date) -> np.ndarray:
    """Sorted datetime64[D] array of working days in [start, end].

    Uses chinesecalendar (holidays and make-up working days); for years it does not cover (it stops
    at 2026) falls back to Monday–Friday and warns.
    """
    import chinese_calendar

    covered_until = date(2026, 12, 31)
    days: list[date] = []
    if start <= covered_until:
        days += chinese_calendar.get_workdays(start, min(end, covered_until), include_weekends=True)
    if end > covered_until:
        warnings.warn(
            f"chinesecalendar has no statutory calendar after {covered_until}; using Monday–Friday until {end}",
            stacklevel=2,
        )
        first = max(start, covered_until + timedelta(days=1))
        span = np.arange(np.datetime64(first), np.datetime64(end) + 1)
        days_np = span[np.is_busday(span)]
        return np.concatenate([np.array(days, dtype="datetime64[D]"), days_np])
    return np.array(days, dtype="datetime64[D]")
