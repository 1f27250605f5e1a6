"""What a subject can do about its profile as of a date, and the what-if records if it did.

Only actions the rules offer: repair a record already eligible (past its minimum publicity period,
not yet repaired), settle unsettled arrears, fulfil a broken commitment where the policy allows it.
Never anything the subject cannot change (age, sector, size).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import pandas as pd

from features.evidence import record_status
from features.policy import Policy, default_policy


@dataclass(frozen=True)
class Action:
    """One actionable change: ``action`` on ``record_id``, possible from ``available_on``."""

    action: str  # "repair" | "settle_arrears" | "fulfil_commitment"
    record_id: str
    uscc: str
    kind: str
    available_on: date
    description_zh: str
    description_en: str
    amount: float | None = None


def candidate_actions(records: pd.DataFrame, uscc: str, as_of: date, policy: Policy | None = None) -> list[Action]:
    """Actions available to ``uscc`` on ``as_of`` that would change a counted negative record."""
    policy = policy or default_policy()
    subject_records = records.loc[records["uscc"] == uscc]
    if subject_records.empty:
        return []
    status = record_status(subject_records, as_of, policy)
    counted = status.loc[status["counts"].fillna(False).astype(bool)]
    actions: list[Action] = []
    for row in counted.sort_values(["decision_date", "record_id"]).to_dict("records"):
        decision = pd.Timestamp(row["decision_date"]).date()
        if row["negative_class"] == "arrears":
            actions.append(Action("settle_arrears", row["record_id"], uscc, row["kind"], as_of,
                                  f"缴清欠款 {row['amount'] or 0:,.2f} 元", f"settle arrears of CNY {row['amount'] or 0:,.2f}",
                                  amount=row["amount"]))
            continue
        if row["negative_class"] == "commitment_broken" and policy.commitment_fulfilment_allowed:
            actions.append(Action("fulfil_commitment", row["record_id"], uscc, row["kind"], as_of,
                                  "履行所违背的信用承诺", "fulfil the broken commitment"))
        eligible = policy.repair_eligible_on({**row, "decision_date": decision})
        if eligible is not None and eligible <= as_of and not row["is_repaired"]:
            actions.append(Action("repair", row["record_id"], uscc, row["kind"], eligible,
                                  f"申请信用修复（{eligible.isoformat()} 起可申请，免费）",
                                  f"apply for credit repair (eligible since {eligible.isoformat()}, free of charge)"))
    return actions


def apply_actions(records: pd.DataFrame, actions: list[Action], as_of: date) -> pd.DataFrame:
    """The records as they would be had ``actions`` been taken on ``as_of`` (input is not modified).

    Repair and fulfilment add a ``repair`` record dated ``as_of`` referring to the record; settling
    sets the arrears' ``end_date`` to ``as_of``. ``build_profiles`` on the result is the what-if profile.
    """
    out = records.copy()
    added = []
    for act in actions:
        if act.action in ("repair", "fulfil_commitment"):
            added.append({"record_id": f"WHATIF-REPAIR-{act.record_id}", "uscc": act.uscc, "kind": "repair",
                          "decision_date": as_of, "ref_record_id": act.record_id, "document_no": "(what-if)",
                          "department": None, "description": "假设修复 / hypothetical repair"})
        elif act.action == "settle_arrears":
            mask = out["record_id"] == act.record_id
            out["end_date"] = out["end_date"].astype(object)
            out.loc[mask, "end_date"] = as_of
        else:
            raise ValueError(f"unknown action {act.action!r}")
    if added:
        extra = pd.DataFrame(added)
        if "version" in out.columns:
            extra["version"] = 1
        out = pd.concat([out, extra.reindex(columns=out.columns)], ignore_index=True)
        out = out.drop_duplicates(subset=["record_id"] + (["version"] if "version" in out.columns else []))
    return out
