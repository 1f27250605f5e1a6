"""Open leads: window, department, answered by a later inspection (无事不扰 lifts only on an open lead)."""

from __future__ import annotations

import datetime as dt

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from supervision.inspection_policy import load_policy, policy_from_dict
from supervision.leads import open_leads

START, END = dt.date(2026, 12, 1), dt.date(2026, 12, 31)


def _leads(*rows: tuple[str, str, str]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["uscc", "lead_date", "department"]).assign(lead_type="complaint")


def _history(*rows: tuple[str, str, str]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["uscc", "inspected_on", "department"])


def _open(leads: pd.DataFrame, history: pd.DataFrame | None = None, window_days: int = 365) -> set[str]:
    return open_leads(
        leads, history, department="market", period_start=START, period_end=END, window_days=window_days
    )


def test_a_lead_answered_by_a_later_inspection_of_the_department_is_closed() -> None:
    leads = _leads(("S1", "2026-06-01", ""), ("S2", "2026-06-01", ""), ("S3", "2026-06-01", ""))
    history = _history(
        ("S1", "2026-07-15", "market"),  # after the complaint: answered
        ("S2", "2026-05-01", "market"),  # before the complaint: still open
        ("S3", "2026-07-15", "fire"),  # another department's visit does not answer a market lead
    )
    assert _open(leads) == {"S1", "S2", "S3"}
    assert _open(leads, history) == {"S2", "S3"}
    # an inspection on the lead's own day is its answer
    assert _open(leads, _history(("S1", "2026-06-01", "market"))) == {"S2", "S3"}


def test_window_department_and_unreadable_dates() -> None:
    leads = _leads(
        ("OLD", "2025-11-30", ""),  # one day before the window
        ("EDGE", "2025-12-01", ""),  # first day of a 365-day window
        ("FIRE", "2026-10-01", "fire"),  # another department's lead
        ("BAD", "not a date", ""),
        ("LATER", "2027-01-01", ""),  # after the period: not raised yet
    )
    assert _open(leads) == {"EDGE"}
    assert _open(leads, window_days=90) == set()
    assert _open(pd.DataFrame(columns=["uscc", "lead_date"])) == set()
    assert _open(None) == set()


def test_lead_window_is_policy_with_item_overrides() -> None:
    base = load_policy().model_dump(mode="json")
    base["items"] = {"MKT-01": {"lead_window_days": 90}}
    policy = policy_from_dict(base)
    assert policy.rules_for("market", "MKT-02").lead_window_days == load_policy().defaults.lead_window_days
    assert policy.rules_for("market", "MKT-01").lead_window_days == 90


day = st.integers(min_value=0, max_value=800).map(lambda d: str(dt.date(2025, 1, 1) + dt.timedelta(days=d)))
subject = st.sampled_from(["S1", "S2", "S3", "S4"])


@settings(max_examples=60, deadline=None)
@given(
    lead_rows=st.lists(st.tuples(subject, day, st.sampled_from(["", "market", "fire"])), max_size=12),
    hist_rows=st.lists(st.tuples(subject, day, st.sampled_from(["market", "fire"])), max_size=12),
    extra=st.tuples(subject, day, st.sampled_from(["market", "fire"])),
    windows=st.tuples(st.integers(1, 800), st.integers(1, 800)),
)
def test_open_leads_properties(lead_rows, hist_rows, extra, windows) -> None:
    leads, history = _leads(*lead_rows), _history(*hist_rows)
    short, long = sorted(windows)
    opened = _open(leads, history, window_days=long)
    assert opened <= set(leads["uscc"])
    # a longer window never closes a lead; one more inspection never opens one
    assert _open(leads, history, window_days=short) <= opened
    assert _open(leads, _history(*hist_rows, extra), window_days=long) <= opened
    assert opened <= _open(leads, None, window_days=long)


def test_leads_and_inspections_compare_by_calendar_day_in_china_whatever_the_format() -> None:
    leads = _leads(
        ("S1", "2026-12-31 10:00", ""),  # a time on the period's last day: still in the period
        ("S2", "2026-06-01T15:00:00", ""),  # answered by an inspection the same day, whatever the hour
        ("S3", "2026-06-01T10:00:00+08:00", ""),  # a zone is converted, not an error
        ("S4", "2026-06-01T20:00:00Z", ""),  # 04:00 on 2 June in China: after the 1 June visit
    )
    history = _history(("S2", "2026-06-01", "market"), ("S4", "2026-06-01", "market"))
    assert _open(leads, history) == {"S1", "S3", "S4"}


def test_an_inspection_after_the_period_answers_no_lead_of_this_plan() -> None:
    leads = _leads(("S1", "2026-06-01", ""))
    assert _open(leads, _history(("S1", "2027-02-01", "market"))) == {"S1"}  # no look-ahead
    assert _open(leads, _history(("S1", "2026-12-15", "market"))) == set()
