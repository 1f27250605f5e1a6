"""信用修复 repair: after a record's minimum publicity period the subject may apply; approval
marks the record repaired (it stops counting) and regrades. Repair is free of charge.

Which records are repairable, and from when, is the catalogue policy's rule
(``features.catalogue``: ``Policy.repair_eligible_on``), never a copy of it here."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from serving.db.tables import Record, RepairApplication
from serving.errors import RepairNotEligible, UnknownRepair
from serving.schemas import RepairCreate, RepairDecisionIn
from serving.security import Principal
from serving.services.applications import (
    ApplicationKind,
    decide_application,
    file_application,
    list_applications,
    pending_conflict,
)
from serving.services.grades import Regrader
from serving.services.subjects import current_record


@dataclass(frozen=True)
class Eligibility:
    """From when a record may be repaired (None: never under this rule) and the rule applied."""

    eligible_from: dt.date | None
    rule: str


RepairEligibility = Callable[[Record], Eligibility]


def catalogue_repair_eligibility(policy: Any = None) -> RepairEligibility:
    """Repair eligibility from a catalogue policy (``Policy.repair_eligible_on``; the packaged
    default when ``policy`` is None): the one rule, with or without a feature store."""
    from features.catalogue import default_policy

    def eligibility(record: Record) -> Eligibility:
        catalogue = policy or default_policy()
        row = {"kind": record.kind, "severity": record.severity, "decision_date": record.decision_date}
        eligible = catalogue.repair_eligible_on(row)
        if eligible is None:
            return Eligibility(None, f"{record.kind}/{record.severity or '-'}: not repairable under the catalogue")
        return Eligibility(eligible, f"{record.kind}/{record.severity or '-'}: after the minimum publicity period "
                                     f"(from {eligible.isoformat()})")

    return eligibility


# The service's default: the packaged catalogue (its policy is loaded on first use and cached).
default_repair_eligibility: RepairEligibility = catalogue_repair_eligibility()


def check_eligibility(record: Record, today: dt.date, eligibility: RepairEligibility) -> tuple[bool, Eligibility]:
    if record.repaired:
        return False, Eligibility(None, "already repaired")
    if record.revoked:
        return False, Eligibility(None, "record revoked; it no longer counts")
    verdict = eligibility(record)
    return verdict.eligible_from is not None and today >= verdict.eligible_from, verdict


REPAIRS = ApplicationKind(model=RepairApplication, label="repair application", short="repair", grant="approved",
                          flag="repaired", decided_by="reviewer", id_field="application_id", unknown=UnknownRepair,
                          order_by="applied_on")


def apply_for_repair(session: Session, principal: Principal, uscc: str, body: RepairCreate, today: dt.date,
                     eligibility: RepairEligibility) -> RepairApplication:
    """Register a repair application for an eligible record; one transaction."""
    record = current_record(session, body.record_id, uscc)
    eligible, verdict = check_eligibility(record, today, eligibility)
    if not eligible:
        when = f"; eligible from {verdict.eligible_from}" if verdict.eligible_from else ""
        zh_when = f"，{verdict.eligible_from} 起可申请" if verdict.eligible_from else ""
        raise RepairNotEligible(f"record {body.record_id} cannot be repaired on {today}: {verdict.rule}{when}",
                                field="record_id", zh=f"记录 {body.record_id} 目前不能申请信用修复{zh_when}。")
    from serving.services.credit_reports import record_ids_in_force

    if record.record_id not in record_ids_in_force(session, uscc, today):  # publicity ended, list left
        raise RepairNotEligible(f"record {body.record_id} no longer counts on {today} (publicity ended or list "
                                "left): nothing to repair", field="record_id",
                                zh=f"记录 {body.record_id} 已不再计入（公示期满或已移出名录），无需申请信用修复。")
    pending_conflict(session, REPAIRS, uscc, body.record_id)
    return file_application(session, RepairApplication(
        uscc=uscc, record_id=record.record_id, record_version=record.version, department=record.department,
        statement=body.statement, applied_by=principal.username, applied_on=today,
        eligible_from=verdict.eligible_from, fee_cny=0.0, status="pending",
    ))


def list_repairs(session: Session, *, uscc: str | None = None, department: str | None = None,
                 status: str | None = None, limit: int = 200) -> list[RepairApplication]:
    return list_applications(session, REPAIRS, uscc=uscc, department=department, status=status, limit=limit)


def decide_repair(session: Session, principal: Principal, application_id: int, body: RepairDecisionIn,
                  today: dt.date, regrader: Regrader) -> RepairApplication:
    """Approve or reject; approval writes a repaired version of the record and regrades.

    Reviewer, reason and date are recorded; everything is one transaction.
    """
    return decide_application(session, REPAIRS, principal, application_id, body.decision, body.reason, today,
                              regrader)
