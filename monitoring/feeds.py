"""The record-level view of each feed (department × kind) for one month: the ingestion gates' rules.

:func:`feed_findings` runs :func:`features.quality.check_feeds` (the one copy of the rules) on the
records decided in the evaluated month against the feed's trailing months: volume surges and
silence, amounts on a log scale (a change of unit, a tail in another unit, a change of level: what a
decile PSI of ``fines_36m`` cannot see beyond its top decile), categories, dates and duplicates. At
ingestion a batch is compared with what was published before it; here a month with the months before
it, so a batch released after a hold, or an error no gate caught, is still seen at month end.
"""

from __future__ import annotations

from datetime import date, timedelta

import duckdb
import pandas as pd

from features.quality import GATE_COLUMNS, Finding, QualityConfig
from features.quality_rules_extra import check_all
from monitoring.health import evaluated_month


def feed_findings(records: pd.DataFrame, *, as_of: date, subjects: pd.DataFrame | None = None,
                  config: QualityConfig | None = None) -> list[Finding]:
    """Findings of the month evaluated at ``as_of`` (:func:`monitoring.health.evaluated_month`).

    ``records``: one row per record (its latest version) with the record contract's columns;
    ``subjects`` (``uscc``, ``district_code``), when given, places records in districts."""
    month = evaluated_month(as_of)
    start, end = month.start_time.date(), month.end_time.date()
    frame = records.copy()
    frame["decision_date"] = pd.to_datetime(frame["decision_date"], errors="coerce").dt.date
    frame = frame[frame["decision_date"].notna() & (frame["decision_date"] <= end)]
    if subjects is not None and "district_code" in subjects.columns:
        frame = frame.drop(columns=["district_code"], errors="ignore").merge(
            subjects[["uscc", "district_code"]].drop_duplicates("uscc"), on="uscc", how="left")
    for col in GATE_COLUMNS:
        if col not in frame.columns:
            frame[col] = None
    frame = frame[list(GATE_COLUMNS)]
    frame["amount"] = pd.to_numeric(frame["amount"], errors="coerce")
    for col in ("record_id", "uscc", "kind", "subkind", "severity", "department", "document_no", "district_code"):
        frame[col] = frame[col].astype("string")
    con = duckdb.connect()
    try:
        con.register("month_df", frame[frame["decision_date"] >= start])
        con.register("before_df", frame[frame["decision_date"] < start])
        for view, source in (("qb", "month_df"), ("qh", "before_df")):
            con.execute(f"CREATE VIEW {view} AS SELECT * REPLACE (CAST(decision_date AS DATE) AS decision_date) "  # noqa: S608 (two fixed view names)
                        f"FROM {source}")
        return check_all(con, as_of=end + timedelta(days=1), config=config)
    finally:
        con.close()
