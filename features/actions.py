"""What a subject can do about its profile as of a date, and the what-if records if it did.

Only actions the rules offer: repair a record already eligible (past its minimum publicity period,
not yet repaired), settle unsettled arrears, fulfil a broken commitment where the policy allows it.
Never anything the subject cannot change (age, sector, size).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import pandas as pd

from features.catalogue import Policy, default_policy
from features.evidence import record_status


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
    subject_records = records.loc[records["uscc"] == uscc]
    if subject_records.empty:
        return []
    return candidate_actions_by_subject(subject_records, as_of, policy).get(uscc, [])


def candidate_actions_by_subject(records: pd.DataFrame, as_of: date,
                                 policy: Policy | None = None) -> dict[str, list[Action]]:
    """`candidate_actions` of every subject in ``records`` (uscc → actions; subjects without any
    are left out), from one ``record_status`` pass over all of them."""
    policy = policy or default_policy()
    if records.empty:
        return {}
    status = record_status(records, as_of, policy)
    counted = status.loc[status["counts"].fillna(False).astype(bool)]
    out: dict[str, list[Action]] = {}
    for row in counted.sort_values(["uscc", "decision_date", "record_id"]).to_dict("records"):
        actions = _actions_on(row, str(row["uscc"]), as_of, policy)
        if actions:
            out.setdefault(str(row["uscc"]), []).extend(actions)
    return out


def _actions_on(row: dict, uscc: str, as_of: date, policy: Policy) -> list[Action]:
    """The actions one counted record offers."""
    decision = pd.Timestamp(row["decision_date"]).date()
    if row["negative_class"] == "arrears":
        return [Action("settle_arrears", row["record_id"], uscc, row["kind"], as_of,
                       f"缴清欠款 {row['amount'] or 0:,.2f} 元", f"settle arrears of CNY {row['amount'] or 0:,.2f}",
                       amount=row["amount"])]
    actions: list[Action] = []
    if row["negative_class"] == "commitment_broken" and policy.commitment_fulfilment_allowed:
        actions.append(Action("fulfil_commitment", row["record_id"], uscc, row["kind"], as_of,
                              "履行所违背的信用承诺", "fulfil the broken commitment"))
    eligible = policy.repair_eligible_on({**row, "decision_date": decision})
    if eligible is not None and eligible <= as_of and not row["is_repaired"]:
        actions.append(Action("repair", row["record_id"], uscc, row["kind"], eligible,
                              f"申请信用修复（{eligible.isoformat()} 起可申请，免费）",
                              f"apply for credit repair (eligible since {eligible.isoformat()}, free of charge)"))
    return actions


def hypothetical_repair(action: Action, as_of: date) -> dict:
    """The ``repair`` record that repairing (or fulfilling) ``action``'s record on ``as_of`` adds."""
    return {"record_id": f"WHATIF-REPAIR-{action.record_id}", "uscc": action.uscc, "kind": "repair",
            "decision_date": as_of, "ref_record_id": action.record_id, "document_no": "(what-if)",
            "department": None, "description": "假设修复 / hypothetical repair"}


def apply_actions(records: pd.DataFrame, actions: list[Action], as_of: date) -> pd.DataFrame:
    """The records as they would be had ``actions`` been taken on ``as_of`` (input is not modified).

    Repair and fulfilment add a ``repair`` record dated ``as_of`` referring to the record; settling
    sets the arrears' ``end_date`` to ``as_of``. ``build_profiles`` on the result is the what-if profile.
    """
    out = records.copy()
    added = []
    for act in actions:
        if act.action in ("repair", "fulfil_commitment"):
            added.append(hypothetical_repair(act, as_of))
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


def apply_scenarios(records: pd.DataFrame, scenarios: Sequence[tuple[str, str, Sequence[Action]]], as_of: date,
                    *, separator: str = "~") -> pd.DataFrame:
    """`apply_actions` for many scenarios at once, each under its own subject key.

    A scenario ``(key, uscc, actions)`` is ``uscc``'s records after ``actions``, with ``uscc`` set
    to ``key`` and every record id (and ``ref_record_id``) suffixed ``separator + key``, because
    record versions are resolved by record id across the whole frame. One ``build_profiles``
    call on the result (with subjects keyed the same way) gives every scenario's profile.
    """
    columns = list(records.columns)
    keys = pd.DataFrame([(key, uscc) for key, uscc, _ in scenarios], columns=["_key", "uscc"])
    out = keys.merge(records, on="uscc", how="inner")
    settled = {(key, a.record_id) for key, _, actions in scenarios for a in actions if a.action == "settle_arrears"}
    unknown = {a.action for _, _, actions in scenarios for a in actions} - {"repair", "fulfil_commitment",
                                                                            "settle_arrears"}
    if unknown:
        raise ValueError(f"unknown action {sorted(unknown)[0]!r}")
    if settled:
        mask = pd.MultiIndex.from_frame(out[["_key", "record_id"]]).isin(list(settled))
        out["end_date"] = out["end_date"].astype(object)
        out.loc[mask, "end_date"] = as_of
    added = [hypothetical_repair(a, as_of) | {"_key": key} for key, _, actions in scenarios for a in actions
             if a.action in ("repair", "fulfil_commitment")]
    if added:
        extra = pd.DataFrame(added).drop_duplicates(subset=["_key", "record_id"])
        if "version" in columns:
            extra["version"] = 1
        out = pd.concat([out, extra.reindex(columns=["_key", *columns])], ignore_index=True)
    out["uscc"] = out["_key"]
    suffix = separator + out["_key"].astype(str)
    out["record_id"] = out["record_id"].astype(str) + suffix
    if "ref_record_id" in out.columns:
        ref = out["ref_record_id"]
        out["ref_record_id"] = (ref.astype(str) + suffix).where(ref.notna(), ref)
    return out[columns]
