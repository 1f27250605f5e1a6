"""Which subjects have an open lead (complaint, data-monitoring lead, referral) for a plan period.

A lead lifts the A-grade 无事不扰 shield: an A subject with an open lead is drawn in the
``A_lead`` stratum at ``a_with_lead_ratio`` instead of the floor. A lead is *open* when

- it concerns the task's department (its ``department`` is that department or empty),
- it was raised within ``lead_window_days`` before the period starts (or during the period), and
- it has not been answered yet: the department has not inspected the subject on or after the
  lead's date. An inspection that followed the complaint was the department's response to it;
  counting the complaint again would keep an A subject out of its shield for a year.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd


def open_leads(
    leads: pd.DataFrame | None,
    history: pd.DataFrame | None,
    *,
    department: str,
    period_start: dt.date,
    period_end: dt.date,
    window_days: int,
) -> set[str]:
    """USCCs with at least one open lead for ``department`` in the plan period (see module doc).

    ``leads`` has columns ``uscc``, ``lead_date`` and optionally ``department``; ``history`` (past
    inspections) has ``uscc``, ``department`` and ``inspected_on``. Rows with an unreadable date
    never count as a lead and never answer one.
    """
    if leads is None or leads.empty:
        return set()
    lead_dates = _calendar_dates(leads["lead_date"])
    in_window = (lead_dates >= pd.Timestamp(period_start - dt.timedelta(days=window_days))) & (
        lead_dates <= pd.Timestamp(period_end)
    )
    if "department" in leads.columns:
        dept = leads["department"]
        in_window &= dept.isna() | dept.isin(["", department])
    current = pd.DataFrame({"uscc": leads["uscc"], "lead_date": lead_dates})[in_window.to_numpy()]
    if history is not None and not history.empty:
        ours = history[history["department"] == department]
        inspected_on = _calendar_dates(ours["inspected_on"])
        # Only inspections up to the period's end answer a lead: no look-ahead past the plan.
        last_inspected = inspected_on[inspected_on <= pd.Timestamp(period_end)].groupby(ours["uscc"]).max()
        # NaT (never inspected by the department) compares False: the lead stays open.
        answered = current["lead_date"] <= current["uscc"].map(last_inspected)
        current = current[~answered.to_numpy(dtype=bool)]
    return set(current["uscc"])


def _calendar_dates(values: pd.Series) -> pd.Series:
    """Calendar days in China (midnight, no zone): leads and inspections compare by date only,
    whether a file carries times or zones. ISO 8601 text, dates or timestamps; a value without a
    zone is local time. Unreadable values become NaT (never a lead, never an answer)."""
    text = values.astype("string")
    # pandas guesses one format from the first value and turns the rest into NaT: say ISO 8601.
    aware = text.str.contains(r"(?:Z|[+-]\d\d:?\d\d)$", regex=True, na=False).to_numpy(dtype=bool)
    days = pd.Series(pd.NaT, index=values.index, dtype="datetime64[ns]")
    if (~aware).any():
        days[~aware] = pd.to_datetime(text[~aware], errors="coerce", format="ISO8601")
    if aware.any():
        zoned = pd.to_datetime(text[aware], errors="coerce", format="ISO8601", utc=True)
        days[aware] = zoned.dt.tz_convert("Asia/Shanghai").dt.tz_localize(None)
    return days.dt.normalize()
