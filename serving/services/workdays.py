"""Working days for statutory deadlines (chinesecalendar, with a Monday–Friday fallback)."""

from __future__ import annotations

import datetime as dt
import logging

import chinese_calendar

logger = logging.getLogger(__name__)


def is_working_day(day: dt.date) -> tuple[bool, bool]:
    """(working day?, exact?). Years chinesecalendar does not cover fall back to Monday–Friday."""
    try:
        return chinese_calendar.is_workday(day), True
    except NotImplementedError:
        return day.weekday() < 5, False


def add_working_days(start: dt.date, days: int) -> tuple[dt.date, bool]:
    """The date ``days`` working days after ``start`` (``start`` itself not counted).

    Returns (date, approximate): approximate is True when any day counted fell in a year the
    statutory calendar does not cover, in which case a warning is logged.
    """
    if days < 0:
        raise ValueError(f"days must be ≥ 0, got {days}")
    current, counted, approximate = start, 0, False
    while counted < days:
        current += dt.timedelta(days=1)
        working, exact = is_working_day(current)
        approximate |= not exact
        counted += working
    if approximate:
        logger.warning("chinesecalendar has no holiday data for %s; counted Monday–Friday from %s",
                       current.year, start)
    return current, approximate
