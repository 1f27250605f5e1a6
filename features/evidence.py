"""The records behind a feature value, so a reason code can cite them (record, date, department, document).

Reads the same per-record rules as the profiles (``features/sql/counted_records.sql``); the
conditions below mirror the aggregates of ``profiles.sql`` feature by feature, and a test checks
that the number of records cited equals the count feature.
"""

from __future__ import annotations

from datetime import date

import duckdb
import pandas as pd

from features.catalogue import Policy, default_policy
from features.profiles import (
    _DUCKDB_MACROS,
    WINDOWED_CLASSES,
    conform_records,
    current_state_sql,
    policy_tables,
    render_counted_sql,
)

EVIDENCE_COLUMNS = ["record_id", "kind", "subkind", "severity", "decision_date", "department", "document_no"]



def _conditions() -> dict[str, str]:
    cond: dict[str, str] = {}
    for key in WINDOWED_CLASSES:
        for months in (12, 36):
            cond[f"n_{key}_{months}m"] = f"counts AND negative_class = '{key}' AND in_{months}m"
            cond[f"w_{key}_{months}m"] = f"counts AND negative_class = '{key}' AND in_{months}m"
    cond.update(
        n_serious_penalty_36m="counts AND negative_class = 'penalty' AND in_36m AND severity = 'serious'",
        n_list_entry_36m="counts AND negative_class = 'list' AND in_36m",
        w_list_active="counts AND negative_class = 'list'",
        max_penalty_severity="counts AND negative_class = 'penalty'",
        days_since_last_negative="counts",
        fines_36m="counts AND negative_class = 'penalty' AND in_36m",
        commitment_breach_rate="((counts AND negative_class = 'commitment_broken') "
        "OR (kind = 'commitment_kept' AND NOT is_revoked)) AND in_36m",
        inspection_failure_rate="kind = 'inspection' AND NOT is_revoked AND in_36m",
        n_inspection_36m="kind = 'inspection' AND NOT is_revoked AND in_36m",
        n_repaired_36m="polarity = 'negative' AND negative_class IS NOT NULL AND is_repaired AND NOT is_revoked AND in_36m",
        n_exempted_36m="polarity = 'negative' AND negative_class IS NOT NULL AND is_exempt AND NOT is_revoked AND in_36m",
        n_arrears_unsettled="counts AND negative_class = 'arrears'",
        amount_arrears_unsettled="counts AND negative_class = 'arrears'",
        n_reward_36m="kind = 'admin_reward' AND polarity = 'positive' AND NOT is_revoked AND in_36m",
        n_self_declared_verified_36m="kind = 'self_declared' AND polarity = 'positive' AND NOT is_revoked AND in_36m "
        "AND (NOT $requires_verification OR (verified AND verified_on <= DATE '$as_of'))",
        n_commitment_kept_36m="kind = 'commitment_kept' AND NOT is_revoked AND in_36m",
        # profiles.sql: context_kind > 0; actions on a record (0) and signed commitments (10) are
        # not among the subject's records (current_records.sql, profiles.sql say why)
        n_records_36m="context_class NOT IN (0, 10) AND NOT is_revoked AND in_36m",
    )
    cond.update(
        n_minor_penalty_12m="counts AND negative_class = 'penalty' AND in_12m AND severity = 'minor'",
        n_general_penalty_12m="counts AND negative_class = 'penalty' AND in_12m AND severity = 'general'",
        n_admin_check_12m="kind = 'admin_check' AND NOT is_revoked AND in_12m",
        n_admin_check_36m="kind = 'admin_check' AND NOT is_revoked AND in_36m",
    )
    arrears_types = {"tax": "subkind = 'tax'", "social_insurance": "subkind = 'social_insurance'",
                     "utility": "subkind IN ('water', 'power', 'gas')"}
    for name, subkind in arrears_types.items():
        for months in (12, 36):
            cond[f"n_arrears_{name}_{months}m"] = (f"kind = 'arrears' AND {subkind} AND in_{months}m "
                                                   "AND NOT is_exempt AND ($repaired_counts OR NOT is_repaired) AND NOT is_revoked")
    for lst in ("list_serious_dishonesty", "list_key_attention", "list_abnormal_operation", "list_dishonest_debtor"):
        cond[f"on_{lst}"] = f"counts AND kind = '{lst}'"
    return cond


EVIDENCE_CONDITIONS: dict[str, str] = _conditions()


def evidence_condition(feature: str, as_of: date, policy: Policy) -> str | None:
    """The SQL filter (over counted_records.sql's columns) selecting the records behind ``feature``
    on ``as_of`` under ``policy``; None for features not computed from records (age, size, …)."""
    condition = EVIDENCE_CONDITIONS.get(feature)
    return None if condition is None else _bind(condition, as_of, policy)


def _bind(condition: str, as_of: date, policy: Policy, *, neutral: bool = False) -> str:
    """``condition`` with its parameters ($as_of, the policy's switches, $neutral) written in."""
    flags = {"$requires_verification": policy.self_declared_requires_verification,
             "$repaired_counts": policy.repaired_counts, "$neutral": neutral}
    for name, value in flags.items():
        condition = condition.replace(name, "TRUE" if value else "FALSE")
    return condition.replace("$as_of", as_of.isoformat())


def _register(con: duckdb.DuckDBPyConnection, records: pd.DataFrame, policy: Policy) -> None:
    con.execute(_DUCKDB_MACROS)
    con.register("record_versions", conform_records(records))
    con.execute(f"CREATE VIEW current_records AS {current_state_sql('records')}")
    for name, frame in policy_tables(policy).items():
        con.register(name, frame)


def _select_counted(records: pd.DataFrame, as_of: date, policy: Policy, columns: list[str] | None = None,
                    condition: str | None = None, order: str | None = None) -> pd.DataFrame:
    """``columns`` (None: all) of counted_records.sql's rows for ``records`` on ``as_of`` under
    ``policy`` that meet the SQL ``condition``, in ``order``: the one DuckDB pass of this module."""
    query = (f"SELECT {', '.join(columns) if columns else '*'} FROM ({render_counted_sql(as_of, policy)}) AS status"
             + (f" WHERE {condition}" if condition else "") + (f" ORDER BY {order}" if order else ""))
    con = duckdb.connect()
    try:
        _register(con, records, policy)
        return con.sql(query).df()
    finally:
        con.close()


def record_status(records: pd.DataFrame, as_of: date, policy: Policy | None = None) -> pd.DataFrame:
    """Every record decided on or before ``as_of`` with its status flags on that date
    (``counts``, ``negative_class``, ``is_repaired``, ``is_revoked``, ``is_exempt``, ``in_period``…)."""
    return _select_counted(records, as_of, policy or default_policy())


def records_behind(
    records: pd.DataFrame, uscc: str, as_of: date, feature: str, policy: Policy | None = None
) -> pd.DataFrame:
    """The records that make ``feature``'s value for ``uscc`` on ``as_of``, newest first.

    Columns: record_id, kind, subkind, severity, decision_date, department, document_no. Features
    not computed from records (age, size, sector…) give an empty frame. Raises KeyError for an
    unknown feature name.
    """
    from features.specs import FEATURES_BY_NAME

    if feature not in FEATURES_BY_NAME:
        raise KeyError(f"feature {feature!r} is not in FEATURE_SPECS")
    policy = policy or default_policy()
    subject_records = records.loc[records["uscc"] == uscc]
    condition = evidence_condition(feature, as_of, policy)
    if condition is None or subject_records.empty:
        return pd.DataFrame(columns=EVIDENCE_COLUMNS)
    out = _select_counted(subject_records, as_of, policy, EVIDENCE_COLUMNS, condition, "decision_date DESC, record_id")
    out["decision_date"] = pd.to_datetime(out["decision_date"]).dt.date
    return out


# Whether a record is in force on the as-of date (联合奖惩: the joint checks cite exactly these; the
# credit report shows those of the public kinds). A record of a negative class (penalty,
# enforcement, broken commitment, inspection with findings, complaint, list entry, arrears) is in
# force when it counts (counted_records.sql's ``counts``: in its publicity period or window, not
# repaired unless the policy keeps repaired records, not revoked or exempted, a list entry until its
# exit, arrears until settled). Any other record while it is in its window, not revoked or
# exempted, a licence until its term ends (end_date, 有效期至), and, if self-declared, verified when
# the policy asks for it (the same test as the feature ``n_self_declared_verified_36m``). Neutral
# records (licences and the other administrative decisions, commitments made, inspections without
# findings) are context: only ``neutral=True`` readers (the report) ask for them. A repair or a
# revocation is never in force: it is an action on a record, not a record (current_records.sql's
# context_class 0), whatever polarity a policy gives its kind.
IN_FORCE_CONDITION = (
    "(counts OR (context_class > 0 AND (is_positive OR ($neutral AND negative_class_code = 0)) "
    "AND NOT is_revoked AND NOT is_exempt AND in_period "
    "AND (kind <> 'admin_license' OR end_date IS NULL OR end_date > DATE '$as_of') "
    "AND (kind <> 'self_declared' OR NOT $requires_verification "
    "OR (verified AND verified_on <= DATE '$as_of'))))")
IN_FORCE_COLUMNS = ["uscc", "record_id", "kind", "subkind", "severity", "decision_date", "end_date", "publicity_end",
                    "department", "document_no", "polarity", "negative_class", "is_repaired"]


def records_in_force(records: pd.DataFrame, as_of: date, policy: Policy | None = None, *,
                     neutral: bool = False) -> pd.DataFrame:
    """The records of ``records`` (contract columns; any number of subjects) in force on ``as_of``
    under ``policy`` (``IN_FORCE_CONDITION``), one DuckDB pass: columns ``IN_FORCE_COLUMNS``, dates
    as ``date``, by subject, newest first. ``neutral``: the neutral records in force too."""
    policy = policy or default_policy()
    if records.empty:
        return pd.DataFrame(columns=IN_FORCE_COLUMNS)
    out = _select_counted(records, as_of, policy, IN_FORCE_COLUMNS, _bind(IN_FORCE_CONDITION, as_of, policy, neutral=neutral),
                          "uscc, decision_date DESC, record_id")
    for column in ("decision_date", "end_date", "publicity_end"):
        out[column] = [None if pd.isna(v) else pd.Timestamp(v).date() for v in out[column]]
    return out
