"""What an enterprise does about its own records: objections (异议) and repair (信用修复)."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from serving.deps import EligibilityDep, SessionDep, SubjectAccessDep, TodayDep, require_role
from serving.errors import (
    Conflict,
    InvalidInput,
    NotAllowed,
    NotAuthenticated,
    RepairNotEligible,
    UnknownRecord,
    UnknownSubject,
    error_responses,
)
from serving.presenters import objection_out
from serving.routes._routers import CallerFirstRoute
from serving.schemas import ObjectionCreate, ObjectionOut, RepairCreate, RepairOut
from serving.services import objections, repairs

router = APIRouter(prefix="/api/v1/subjects", tags=["enterprise"], route_class=CallerFirstRoute,
                   dependencies=[Depends(require_role("enterprise"))])
_ERRORS = (NotAuthenticated, NotAllowed, InvalidInput, UnknownRecord, UnknownSubject)


@router.post("/{uscc}/objections", response_model=ObjectionOut, status_code=201,
             responses=error_responses(*_ERRORS, Conflict))
def file_objection(body: ObjectionCreate, access: SubjectAccessDep, session: SessionDep,
                   today: TodayDep) -> ObjectionOut:
    """Dispute one of the subject's own records; the answer is due in 10 working days."""
    objection = objections.file_objection(session, access.principal, access.uscc, body, today)
    return objection_out(objection, today)


@router.post("/{uscc}/repairs", response_model=RepairOut, status_code=201,
             responses=error_responses(*_ERRORS, Conflict, RepairNotEligible))
def apply_for_repair(body: RepairCreate, access: SubjectAccessDep, session: SessionDep, today: TodayDep,
                     eligibility: EligibilityDep) -> RepairOut:
    """Apply (free of charge) to repair a record past its minimum publicity period."""
    application = repairs.apply_for_repair(session, access.principal, access.uscc, body, today, eligibility)
    return RepairOut.model_validate(application)
