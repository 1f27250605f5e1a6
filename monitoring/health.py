"""Data health: records per department per month, quarantined share, silent feeds."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class FeedStatus:
    """One department's volume in the evaluated month against its own trailing median."""

    department: str
    records: int
    trailing_median: float
    history_months: int
    ratio_to_median: float | None
    silent: bool


@dataclass(frozen=True)
class DataHealth:
    """Health of the inputs for one month (the last complete month at the current as-of)."""

    month: str
    feeds: list[FeedStatus]
    quarantined: int
    ingested: int
    quarantine_share: float
    quarantine_share_by_department: dict[str, float]
    volume_by_month: dict[str, dict[str, int]]  # department → month → records, for the analyst chart


def evaluated_month(as_of: date) -> pd.Period:
    """The last complete calendar month at ``as_of`` (its own month if ``as_of`` is a month end)."""
    ts = pd.Timestamp(as_of)
    month = ts.to_period("M")
    return month if ts.is_month_end else month - 1


def monthly_volume(records: pd.DataFrame, *, date_column: str = "decision_date") -> pd.DataFrame:
    """Records per department per month from a records frame: columns ``department``, ``month``, ``records``."""
    for col in ("department", date_column):
        if col not in records.columns:
            raise ValueError(f"records frame has no column {col!r} (needed for the monthly volume)")
    months = pd.to_datetime(records[date_column], errors="coerce").dt.to_period("M")
    out = (
        pd.DataFrame({"department": records["department"].astype(str), "month": months})
        .dropna()
        .groupby(["department", "month"], observed=True)
        .size()
        .rename("records")
        .reset_index()
    )
    return out


def _volume_matrix(volume: pd.DataFrame) -> pd.DataFrame:
    """Department × month matrix of records; months with no row count 0 once a department has appeared."""
    for col in ("department", "month", "records"):
        if col not in volume.columns:
            raise ValueError(f"volume frame has no column {col!r}")
    v = volume.assign(month=pd.PeriodIndex(volume["month"].astype(str), freq="M"))
    matrix = v.pivot_table(index="department", columns="month", values="records", aggfunc="sum", fill_value=0)
    full = pd.period_range(matrix.columns.min(), matrix.columns.max(), freq="M")
    matrix = matrix.reindex(columns=full, fill_value=0)
    # before a department's first month it did not exist yet: that is not a silent feed
    first_seen = (matrix > 0).to_numpy().argmax(axis=1)
    mask = np.arange(matrix.shape[1])[None, :] < first_seen[:, None]
    return matrix.astype(float).mask(mask)


def feed_status(
    volume: pd.DataFrame,
    *,
    month: pd.Period,
    trailing_months: int = 12,
    fraction_of_median: float = 0.10,
    min_history_months: int = 3,
    min_median_records: float = 20.0,
) -> list[FeedStatus]:
    """Silent-feed check: a department is silent in ``month`` when its records fall below
    ``fraction_of_median`` × the median of its previous ``trailing_months`` months.

    The median is robust to one busy or quiet month; departments with fewer than
    ``min_history_months`` months of history, or a median below ``min_median_records`` (too
    small for a ratio to mean anything), are reported but never flagged.
    """
    matrix = _volume_matrix(volume)
    if month not in matrix.columns:
        matrix[month] = 0.0
        matrix = matrix.reindex(columns=sorted(matrix.columns))
    history_cols = [m for m in matrix.columns if month - trailing_months <= m < month]
    out: list[FeedStatus] = []
    for dept, row in matrix.iterrows():
        history = row[history_cols].dropna()
        current = row[month]
        current = 0.0 if np.isnan(current) else float(current)
        median = float(history.median()) if len(history) else 0.0
        eligible = len(history) >= min_history_months and median >= min_median_records
        out.append(
            FeedStatus(
                department=str(dept),
                records=int(current),
                trailing_median=median,
                history_months=len(history),
                ratio_to_median=current / median if median > 0 else None,
                silent=bool(eligible and current < fraction_of_median * median),
            )
        )
    return out


def data_health(
    volume: pd.DataFrame,
    *,
    as_of: date,
    quarantine: pd.DataFrame | None = None,
    ingested: pd.DataFrame | None = None,
    trailing_months: int = 12,
    fraction_of_median: float = 0.10,
    min_history_months: int = 3,
    min_median_records: float = 20.0,
    chart_months: int = 13,
) -> DataHealth:
    """Health report for the last complete month at ``as_of``.

    ``volume``: ingested records per ``department`` and ``month`` (see :func:`monthly_volume`).
    ``quarantine``: one row per quarantined row with a ``month`` (or ``decision_date``) column and,
    when known, a ``department`` column; the share is quarantined / (ingested + quarantined).
    ``ingested``: accepted rows per ``month`` (and ``department``) when the quarantine is dated by
    ingestion batch rather than by decision date; defaults to ``volume``, so both sides of the
    share are counted on the same calendar.
    """
    month = evaluated_month(as_of)
    feeds = feed_status(
        volume, month=month, trailing_months=trailing_months, fraction_of_median=fraction_of_median,
        min_history_months=min_history_months, min_median_records=min_median_records,
    )
    base = volume if ingested is None else ingested
    b_month = pd.PeriodIndex(base["month"].astype(str), freq="M")
    this_month = base[np.asarray(b_month == month)]
    if "department" in this_month.columns:
        ingested_by_dept = this_month.groupby("department")["records"].sum()
    else:
        ingested_by_dept = pd.Series(dtype="int64")
    n_ingested = int(this_month["records"].sum())
    quarantined, by_dept = 0, {}
    if quarantine is not None and len(quarantine):
        if "month" in quarantine.columns:
            q_month = pd.PeriodIndex(quarantine["month"].astype(str), freq="M")
        elif "decision_date" in quarantine.columns:
            q_month = pd.to_datetime(quarantine["decision_date"], errors="coerce").dt.to_period("M")
        else:
            raise ValueError("quarantine frame needs a 'month' or 'decision_date' column")
        q = quarantine[np.asarray(q_month == month)]
        quarantined = len(q)
        if "department" in q.columns:
            q_by_dept = q["department"].astype(str).value_counts()
            for dept, n_q in q_by_dept.items():
                total = n_q + int(ingested_by_dept.get(dept, 0))
                by_dept[str(dept)] = float(n_q / total)
    total = n_ingested + quarantined
    matrix = _volume_matrix(volume)
    recent = [m for m in matrix.columns if month - chart_months < m <= month]
    chart = {
        str(dept): {str(m): int(0 if np.isnan(row[m]) else row[m]) for m in recent}
        for dept, row in matrix.iterrows()
    }
    return DataHealth(
        month=str(month),
        feeds=feeds,
        quarantined=quarantined,
        ingested=n_ingested,
        quarantine_share=float(quarantined / total) if total else 0.0,
        quarantine_share_by_department=by_dept,
        volume_by_month=chart,
    )
