"""An application against a record: the one workflow behind 异议 objections and 信用修复 repairs.

A subject files it against the current version of one of its records (one pending application per
record and kind); the record's department lists and decides it; a granted application writes a new
version of the record (revoked, or repaired) and regrades the subject, all in one transaction.
What differs between the two kinds is data (:class:`ApplicationKind`), not code.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from serving.db.byte_order import prefix_range
from serving.errors import AlreadyDecided, Conflict, ServiceError
from serving.security import Principal
from serving.services.grades import Regrader, run_regrader
from serving.services.subjects import current_record, new_record_version


@dataclass(frozen=True)
class ApplicationKind:
    """How one kind of application is stored, named and granted."""

    model: Any  # the ORM class (Objection, RepairApplication)
    label: str  # in messages: "objection", "repair application"
    short: str  # in the new record version's reason: "objection", "repair"
    grant: str  # the decision that changes the record: "upheld", "approved"
    flag: str  # the record's flag a grant sets: "revoked", "repaired" (with "<flag>_on")
    decided_by: str  # the column naming who decided: "decided_by", "reviewer"
    id_field: str  # the field an unknown id is reported on
    unknown: type[ServiceError]  # raised for an absent id and another department's alike
    order_by: str  # list order (then id)


def pending_conflict(session: Session, kind: ApplicationKind, uscc: str, record_id: str) -> None:
    """Raise Conflict if the record already has a pending application of this kind."""
    model = kind.model
    pending = session.scalars(select(model.id).where(
        model.uscc == uscc, model.record_id == record_id, model.status == "pending")).first()
    if pending is not None:
        what = "异议" if kind.short == "objection" else "修复申请"
        raise Conflict(f"record {record_id} already has pending {kind.label} #{pending}", field="record_id",
                       zh=f"记录 {record_id} 已有一份处理中的{what}（#{pending}），请等待答复后再提交。")


def file_application(session: Session, application: Any) -> Any:
    """Store a new application; one transaction."""
    session.add(application)
    session.commit()
    return application


def list_applications(session: Session, kind: ApplicationKind, *, uscc: str | None = None,
                      department: str | None = None, status: str | None = None, limit: int = 200) -> list[Any]:
    model = kind.model
    stmt = select(model)
    if uscc:
        stmt = stmt.where(model.uscc == uscc)
    if department:
        stmt = stmt.where(model.department == department)
    if status:
        stmt = stmt.where(model.status == status)
    return list(session.scalars(stmt.order_by(getattr(model, kind.order_by), model.id).limit(limit)))


def application_page(session: Session, kind: ApplicationKind, *, department: str | None = None,
                     status: str | None = "pending", search: str | None = None, newest_first: bool = False,
                     offset: int = 0, limit: int = 50) -> tuple[int, list[Any]]:
    """A page of a department's queue (``department`` None: every department's) and its total:
    ``status`` "pending", "decided" (any other) or None (all); ``search`` a USCC prefix; oldest
    first by the kind's date (objections: due date), or newest first. A queue is one department's
    applications (indexed by department), so counting it does not scan the population."""
    model = kind.model
    where = []
    if department:
        where.append(model.department == department)
    if status == "decided":
        where.append(model.status != "pending")
    elif status:
        where.append(model.status == status)
    if search:
        where += prefix_range(model.uscc, search, "~")  # byte order, whatever the collation
    total = session.scalar(select(func.count()).select_from(model).where(*where)) or 0
    order = (model.id.desc(),) if newest_first else (getattr(model, kind.order_by), model.id)
    rows = list(session.scalars(select(model).where(*where).order_by(*order).offset(offset).limit(limit)))
    return total, rows


def decide_application(session: Session, kind: ApplicationKind, principal: Principal, application_id: int,
                       decision: str, reason: str, today: dt.date, regrader: Regrader) -> Any:
    """Decide a pending application addressed to the principal's department (an admin decides any).

    Granted: the record gets a new version with ``kind.flag`` set and the subject is regraded.
    Decision, new version and regrade are one transaction: all or nothing.
    """
    model = kind.model
    application = session.scalars(select(model).where(model.id == application_id).with_for_update()).first()
    if application is None or (principal.role != "admin" and principal.department != application.department):
        # one 404 for absent and another department's: no existence oracle
        raise kind.unknown(f"no {kind.label} #{application_id} addressed to your department", field=kind.id_field)
    if application.status != "pending":
        raise AlreadyDecided(f"{kind.label} #{application_id} was already {application.status}")
    try:
        if decision == kind.grant:
            record = current_record(session, application.record_id, application.uscc, for_update=True)
            why = f"{kind.short} #{application.id} {kind.grant}: {reason}"
            new_record_version(session, record, why[:200], **{kind.flag: True, f"{kind.flag}_on": today})
            run_regrader(regrader, session, application.uscc, why)
        application.status = decision
        setattr(application, kind.decided_by, principal.username)
        application.decided_on = today
        application.decision_reason = reason
        session.commit()
    except Exception:
        session.rollback()
        raise
    return application
