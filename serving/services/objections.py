"""异议 objections: an enterprise disputes a record; its department answers within
``OBJECTION_WORKING_DAYS`` working days; an upheld objection revokes the record and regrades."""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy.orm import Session

from serving.db.tables import Objection
from serving.errors import Conflict, UnknownObjection
from serving.schemas import DecisionIn, ObjectionCreate
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
from supervision.workdays import add_working_days

# 宁信用〔2021〕1号 (docs/domain.md §6): the department answers within 10 working days
OBJECTION_WORKING_DAYS = 10

logger = logging.getLogger(__name__)


OBJECTIONS = ApplicationKind(model=Objection, label="objection", short="objection", grant="upheld",
                             flag="revoked", decided_by="decided_by", id_field="objection_id",
                             unknown=UnknownObjection, order_by="due_on")


def file_objection(session: Session, principal: Principal, uscc: str, body: ObjectionCreate,
                   today: dt.date) -> Objection:
    """Register an objection to the current version of a record; one transaction."""
    record = current_record(session, body.record_id, uscc)
    if record.revoked:
        raise Conflict(f"record {body.record_id} is already revoked", field="record_id",
                       zh=f"记录 {body.record_id} 已撤销，无需再提出异议。")
    pending_conflict(session, OBJECTIONS, uscc, body.record_id)
    due_on, approximate = add_working_days(today, OBJECTION_WORKING_DAYS)
    if approximate:
        logger.warning("chinesecalendar has no holiday data up to %s; counted Monday–Friday from %s", due_on, today)
    return file_application(session, Objection(
        uscc=uscc, record_id=record.record_id, record_version=record.version, department=record.department,
        reason=body.reason, filed_by=principal.username, filed_on=today, due_on=due_on,
        due_on_approximate=approximate, status="pending",
    ))


def list_objections(session: Session, *, uscc: str | None = None, department: str | None = None,
                    status: str | None = None, limit: int = 200) -> list[Objection]:
    return list_applications(session, OBJECTIONS, uscc=uscc, department=department, status=status, limit=limit)


def decide_objection(session: Session, principal: Principal, objection_id: int, body: DecisionIn,
                     today: dt.date, regrader: Regrader) -> Objection:
    """Answer an objection. Upheld: the record gets a revoked version and the subject is regraded.

    Decision, revocation and regrade are one transaction: all or nothing.
    """
    return decide_application(session, OBJECTIONS, principal, objection_id, body.decision, body.reason, today,
                              regrader)


def is_overdue(objection: Objection, today: dt.date) -> bool:
    if objection.status == "pending":
        return today > objection.due_on
    return objection.decided_on is not None and objection.decided_on > objection.due_on

