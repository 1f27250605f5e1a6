"""Statutory working days (法定工作日) for deadlines: the one place they are counted.

The Chinese statutory calendar (chinesecalendar: weekends, public holidays and the weekend days
worked in their place); for a year it does not cover, Monday–Friday, and the answer says it is
approximate so the caller can warn or flag it. Publication deadlines (``supervision.results``) and
objection deadlines (``serving.services.objections``) both count here.
"""

from __future__ import annotations

import datetime as dt

import chinese_calendar


def is_working_day(day: dt.date) -> tuple[bool, bool]:
    """(working day?, exact?). Years chinesecalendar does not cover fall back to Monday–Friday."""
    try:
        return bool(chinese_calendar.is_workday(day)), True
    except NotImplementedError:
        return day.weekday() < 5, False


def add_working_days(start: dt.date, days: int) -> tuple[dt.date, bool]:
    """The date ``days`` working days after ``start`` (``start`` itself not counted), and whether it
    is approximate: True when any day counted fell in a year the statutory calendar does not cover."""
    if days < 0:
        raise ValueError(f"days must be ≥ 0, got {days}")
    current, counted, approximate = start, 0, False
    while counted < days:
        current += dt.timedelta(days=1)
        working, exact = is_working_day(current)
        approximate |= not exact
        counted += working
    return current, approximate
