"""Supervision labels: did an adverse outcome happen in the horizon after the as-of date?

Labels are about what happened, so they use the raw events: a penalty repaired or exempted later
still was an adverse outcome. Only revocations (the legal basis was voided: the event did not
legally happen) remove an event, and only those decided by the end of the horizon. The default
definition is exactly the contract's (docs/data-contract.md, ``truth/true_risk.parquet``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import duckdb
import pandas as pd
from dateutil.relativedelta import relativedelta

from features.profiles import conform_records, conform_subjects
from features.store import has_table, latest_sql


@dataclass(frozen=True)
class AdverseOutcome:
    """One kind of adverse outcome: records of ``kind`` whose ``field`` is one of ``values``."""

    kind: str
    field: str | None = None
    values: tuple[str, ...] = ()

    def sql(self) -> str:
        cond = f"kind = '{self.kind}'"
        if self.field:
            vals = ", ".join(f"'{v}'" for v in self.values)
            cond += f" AND {self.field} IN ({vals})"
        return f"({cond})"


@dataclass(frozen=True)
class LabelDefinition:
    """Which events count as adverse, and whether revoked events are dropped."""

    name: str
    outcomes: tuple[AdverseOutcome, ...] = field(default_factory=tuple)
    drop_revoked: bool = True


CONTRACT_ADVERSE = LabelDefinition(
    name="contract_adverse_v1",
    outcomes=(
        AdverseOutcome("inspection", "subkind", ("corrected", "case_opened")),
        AdverseOutcome("admin_penalty", "severity", ("serious",)),
        AdverseOutcome("list_serious_dishonesty"),
        AdverseOutcome("list_abnormal_operation"),
    ),
)


def build_labels(
    store_or_frames: str | Path | tuple[pd.DataFrame, pd.DataFrame],
    as_of: date,
    horizon_months: int = 12,
    definition: LabelDefinition = CONTRACT_ADVERSE,
) -> pd.DataFrame:
    """One row per subject: ``uscc``, ``as_of``, ``horizon_end``, ``label`` (0/1), ``n_adverse``.

    ``label`` is 1 if an adverse outcome is decided in ``(as_of, as_of + horizon_months]``.
    Subjects are those registered on or before ``as_of`` and not closed by then (the population
    :func:`features.profiles.build_profiles` profiles).
    ``store_or_frames`` is a store directory or a ``(records, subjects)`` pair of frames.
    """
    if horizon_months < 1:
        raise ValueError(f"horizon_months {horizon_months} must be ≥ 1")
    if not definition.outcomes:
        raise ValueError(f"label definition {definition.name!r} has no adverse outcomes")
    horizon_end = as_of + relativedelta(months=horizon_months)
    con = duckdb.connect()
    try:
        if isinstance(store_or_frames, (str, Path)):
            store = Path(store_or_frames)
            con.execute(f"CREATE VIEW subjects AS {latest_sql(store, 'subjects')}")
            if has_table(store, "records"):
                con.execute(f"CREATE VIEW records AS {latest_sql(store, 'records')}")
            else:
                con.register("records", conform_records(pd.DataFrame(columns=["record_id"])))
        else:
            records, subjects = store_or_frames
            con.register("records", conform_records(records))
            con.register("subjects", conform_subjects(subjects))
        adverse = " OR ".join(o.sql() for o in definition.outcomes)
        revoked_filter = (
            f"AND r.record_id NOT IN (SELECT ref_record_id FROM records WHERE kind = 'revocation' "
            f"AND ref_record_id IS NOT NULL AND decision_date <= DATE '{horizon_end}')"
            if definition.drop_revoked else ""
        )
        sql = f"""
        WITH adverse AS (
            SELECT r.uscc, COUNT(*) AS n_adverse FROM records r
            WHERE ({adverse}) AND r.decision_date > DATE '{as_of}' AND r.decision_date <= DATE '{horizon_end}'
            {revoked_filter}
            GROUP BY r.uscc
        )
        SELECT s.uscc, DATE '{as_of}' AS as_of, DATE '{horizon_end}' AS horizon_end,
               CAST(COALESCE(a.n_adverse, 0) > 0 AS INTEGER) AS label, COALESCE(a.n_adverse, 0) AS n_adverse
        FROM subjects s
        LEFT JOIN adverse a ON s.uscc = a.uscc
        WHERE CAST(s.registered_on AS DATE) <= DATE '{as_of}'
          AND NOT (s.status <> 'active' AND s.status_date IS NOT NULL AND CAST(s.status_date AS DATE) <= DATE '{as_of}')
        ORDER BY s.uscc
        """
        out = con.sql(sql).df()
    finally:
        con.close()
    out["as_of"] = pd.to_datetime(out["as_of"]).dt.date
    out["horizon_end"] = pd.to_datetime(out["horizon_end"]).dt.date
    out["label"] = out["label"].astype("int64")
    out["n_adverse"] = out["n_adverse"].astype("int64")
    return out
