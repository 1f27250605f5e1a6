"""Training data from the feature store: point-in-time profiles + labels for several as-of dates."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path

import pandas as pd
from dateutil.relativedelta import relativedelta

from training.pipeline import assemble_dataset


def quarter_end_on_or_before(day: date) -> date:
    """The last quarter end (03-31, 06-30, 09-30, 12-31) on or before ``day``."""
    q_month = ((day.month - 1) // 3) * 3 + 3
    end = date(day.year, q_month, 1) + relativedelta(months=1, days=-1)
    if end <= day:
        return end
    prev = date(day.year, q_month, 1) + relativedelta(months=-2, days=-1)
    return prev


def latest_record_date(store: str | Path) -> date:
    """Latest ``decision_date`` among the stored records (the end of the observed data)."""
    import duckdb

    from features.store import has_table, latest_sql

    if not has_table(store, "records"):
        raise ValueError(f"store {store} holds no records: ingest a city first (tiers ingest)")
    con = duckdb.connect()
    try:
        found = con.execute(f"SELECT max(CAST(decision_date AS DATE)) FROM ({latest_sql(store, 'records')})").fetchone()[0]
    finally:
        con.close()
    if found is None:
        raise ValueError(f"store {store}: records carry no decision_date")
    return found if isinstance(found, date) else pd.Timestamp(found).date()


def default_dates(data_end: date, *, horizon_months: int = 12, n_train: int = 3, step_months: int = 6) -> tuple[tuple[date, ...], date]:
    """Default (train as-of dates, validation as-of) for data observed up to ``data_end``.

    The validation date is the last quarter end whose label window closes by ``data_end``; the
    training dates are ``step_months`` apart, the latest one a full horizon before validation,
    so feature and label windows never overlap.
    """
    def back(day: date, months: int) -> date:
        # Month arithmetic from the day after, so 09-30 minus 6 months is 03-31, not 03-30.
        return quarter_end_on_or_before(day + relativedelta(days=1) - relativedelta(months=months) - relativedelta(days=1))

    validate = back(data_end, horizon_months)
    last_train = back(validate, horizon_months)
    train = tuple(back(last_train, step_months * k) for k in reversed(range(n_train)))
    return train, validate


def load_dataset(
    store: str | Path,
    as_of_dates: Sequence[date],
    *,
    horizon_months: int = 12,
    on_date: Callable[[date], None] | None = None,
) -> pd.DataFrame:
    """Profiles and labels of every subject at each as-of date, joined (see `assemble_dataset`)."""
    from features.labels import build_labels
    from features.profiles import build_profiles

    profiles, labels = [], []
    for day in as_of_dates:
        profiles.append(build_profiles(store, as_of=day))
        labels.append(build_labels(store, day, horizon_months))
        if on_date is not None:
            on_date(day)
    return assemble_dataset(pd.concat(profiles, ignore_index=True), pd.concat(labels, ignore_index=True))


def load_profiles(store: str | Path, as_of: date) -> pd.DataFrame:
    """Profiles of every subject at ``as_of`` (for the grading job)."""
    from features.profiles import build_profiles

    return build_profiles(store, as_of=as_of)
