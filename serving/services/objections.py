"""异议 objections: an enterprise disputes a record; its department answers within
``OBJECTION_WORKING_DAYS`` working days; an upheld objection revokes the record and regrades."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from serving.db.models import Objection
from serving.errors import AlreadyDecided, Conflict, UnknownObjection
from serving.schemas import DecisionIn, ObjectionCreate
from serving.security import Principal
from serving.services.grades import Regrader, run_regrader
from serving.services.subjects import current_record, new_record_version
from serving.services.workdays import add_working_days

# 宁信用〔2021〕1号 (docs/domain.md §6): the department answers within 10 working days
OBJECTION_WORKING_DAYS = 10


def file_objection(session: Session, principal: Principal, uscc: str, body: ObjectionCreate,
                   today: dt.date) -> Objection:
    """Register an objection to the current version of a record; one transaction."""
    record = current_record(session, body.record_id, uscc)
    if record.revoked:
        raise Conflict(f"record {body.record_id} is already revoked", field="record_id")
    pending = session.scalars(select(Objection.id).where(
        Objection.uscc == uscc, Objection.record_id == body.record_id, Objection.status == "pending")).first()
    if pending is not None:
        raise Conflict(f"record {body.record_id} already has pending objection #{pending}", field="record_id")
    due_on, approximate = add_working_days(today, OBJECTION_WORKING_DAYS)
    objection = Objection(
        uscc=uscc, record_id=record.record_id, record_version=record.version, department=record.department,
        reason=body.reason, filed_by=principal.username, filed_on=today, due_on=due_on,
        due_on_approximate=approximate, status="pending",
    )
    session.add(objection)
    session.commit()
    return objection


def list_objections(session: Session, *, uscc: str | None = None, department: str | None = None,
                    status: str | None = None, limit: int = 200) -> list[Objection]:
    stmt = select(Objection)
    if uscc:
        stmt = stmt.where(Objection.uscc == uscc)
    if department:
        stmt = stmt.where(Objection.department == department)
    if status:
        stmt = stmt.where(Objection.status == status)
    return list(session.scalars(stmt.order_by(Objection.due_on, Objection.id).limit(limit)))


def _mine(principal: Principal, department: str) -> bool:
    return principal.role == "admin" or principal.department == department


def decide_objection(session: Session, principal: Principal, objection_id: int, body: DecisionIn,
                     today: dt.date, regrader: Regrader) -> Objection:
    """Answer an objection. Upheld: the record gets a revoked version and the subject is regraded.

    Decision, revocation and regrade are one transaction: all or nothing.
    """
    objection = session.scalars(select(Objection).where(Objection.id == objection_id).with_for_update()).first()
    if objection is None or not _mine(principal, objection.department):  # one 404: no existence oracle
        raise UnknownObjection(f"no objection #{objection_id} addressed to your department", field="objection_id")
    if objection.status != "pending":
        raise AlreadyDecided(f"objection #{objection_id} was already {objection.status}")
    try:
        if body.decision == "upheld":
            record = current_record(session, objection.record_id, objection.uscc, for_update=True)
            reason = f"objection #{objection.id} upheld: {body.reason}"
            new_record_version(session, record, reason[:200], revoked=True, revoked_on=today)
            run_regrader(regrader, session, objection.uscc, reason)
        objection.status = body.decision
        objection.decided_by, objection.decided_on = principal.username, today
        objection.decision_reason = body.reason
        session.commit()
    except Exception:
        session.rollback()
        raise
    return objection


def is_overdue(objection: Objection, today: dt.date) -> bool:
    if objection.status == "pending":
        return today > objection.due_on
    return objection.decided_on is not None and objection.decided_on > objection.due_on

