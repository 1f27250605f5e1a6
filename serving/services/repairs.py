"""信用修复 repair: after a record's minimum publicity period the subject may apply; approval
marks the record repaired (it stops counting) and regrades. Repair is free of charge.

Which records are repairable, and from when, is the catalogue policy's rule
(``features.catalogue``: ``Policy.repair_eligible_on``), never a copy of it here."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from serving.db.models import Record, RepairApplication
from serving.errors import (
    AlreadyDecided,
    Conflict,
    RepairNotEligible,
    UnknownRepair,
)
from serving.schemas import RepairCreate, RepairDecisionIn
from serving.security import Principal
from serving.services.grades import Regrader, run_regrader
from serving.services.subjects import current_record, new_record_version


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


def apply_for_repair(session: Session, principal: Principal, uscc: str, body: RepairCreate, today: dt.date,
                     eligibility: RepairEligibility) -> RepairApplication:
    """Register a repair application for an eligible record; one transaction."""
    record = current_record(session, body.record_id, uscc)
    eligible, verdict = check_eligibility(record, today, eligibility)
    if not eligible:
        when = f"; eligible from {verdict.eligible_from}" if verdict.eligible_from else ""
        raise RepairNotEligible(f"record {body.record_id} cannot be repaired on {today}: {verdict.rule}{when}",
                                field="record_id")
    pending = session.scalars(select(RepairApplication.id).where(
        RepairApplication.uscc == uscc, RepairApplication.record_id == body.record_id,
        RepairApplication.status == "pending")).first()
    if pending is not None:
        raise Conflict(f"record {body.record_id} already has pending repair application #{pending}",
                       field="record_id")
    application = RepairApplication(
        uscc=uscc, record_id=record.record_id, record_version=record.version, department=record.department,
        statement=body.statement, applied_by=principal.username, applied_on=today,
        eligible_from=verdict.eligible_from, fee_cny=0.0, status="pending",
    )
    session.add(application)
    session.commit()
    return application


def list_repairs(session: Session, *, uscc: str | None = None, department: str | None = None,
                 status: str | None = None, limit: int = 200) -> list[RepairApplication]:
    stmt = select(RepairApplication)
    if uscc:
        stmt = stmt.where(RepairApplication.uscc == uscc)
    if department:
        stmt = stmt.where(RepairApplication.department == department)
    if status:
        stmt = stmt.where(RepairApplication.status == status)
    return list(session.scalars(stmt.order_by(RepairApplication.applied_on, RepairApplication.id).limit(limit)))


def decide_repair(session: Session, principal: Principal, application_id: int, body: RepairDecisionIn,
                  today: dt.date, regrader: Regrader) -> RepairApplication:
    """Approve or reject; approval writes a repaired version of the record and regrades.

    Reviewer, reason and date are recorded; everything is one transaction.
    """
    application = session.scalars(select(RepairApplication).where(
        RepairApplication.id == application_id).with_for_update()).first()
    if application is None or (principal.role != "admin" and principal.department != application.department):
        # one 404 for absent and another department's: no existence oracle
        raise UnknownRepair(f"no repair application #{application_id} addressed to your department",
                            field="application_id")
    if application.status != "pending":
        raise AlreadyDecided(f"repair application #{application_id} was already {application.status}")
    try:
        if body.decision == "approved":
            record = current_record(session, application.record_id, application.uscc, for_update=True)
            reason = f"repair #{application.id} approved: {body.reason}"
            new_record_version(session, record, reason[:200], repaired=True, repaired_on=today)
            run_regrader(regrader, session, application.uscc, reason)
        application.status = body.decision
        application.reviewer, application.decided_on = principal.username, today
        application.decision_reason = body.reason
        session.commit()
    except Exception:
        session.rollback()
        raise
    return application

