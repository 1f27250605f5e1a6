"""Reads of one subject's credit data, for every role that may cover a subject.

Access and query logging are done by the ``subject_access`` dependency.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Response
from sqlalchemy import Connection

from serving.deps import EligibilityDep, SessionDep, SubjectAccessDep, TodayDep, subject_read
from serving.errors import (
    GradeUnavailable,
    InvalidInput,
    NotAllowed,
    NotAuthenticated,
    UnknownRecord,
    UnknownSubject,
    error_responses,
)
from serving.presenters import grade_json, objection_out, subject_out
from serving.routes._routers import CallerFirstRoute
from serving.schemas import EligibilityOut, GradeOut, ObjectionOut, RecordOut, RepairOut, SubjectOut
from serving.services import grades, objections, repairs, subjects
from serving.validation import NoControlChars

router = APIRouter(prefix="/api/v1/subjects", tags=["subjects"], route_class=CallerFirstRoute)
_READ_ERRORS = (NotAuthenticated, NotAllowed, InvalidInput, UnknownSubject)


@router.get("/{uscc}", response_model=SubjectOut, responses=error_responses(*_READ_ERRORS))
def get_subject(access: SubjectAccessDep, session: SessionDep) -> SubjectOut:
    """The subject's registration facts; the legal representative is masked."""
    return subject_out(subjects.get_subject(session, access.uscc))


def _latest_grade_json(conn: Connection, uscc: str) -> bytes:
    return grade_json(grades.latest_grade_values(conn, uscc))


@router.get("/{uscc}/grade", response_model=GradeOut,
            responses=error_responses(*_READ_ERRORS, GradeUnavailable))
async def get_grade(body: Annotated[bytes, Depends(subject_read(_latest_grade_json))]) -> Response:
    """The latest grade with its reasons and what-if scenarios (not public)."""
    # the hot read: checked, logged and read by `subject_read`, then answered with the body
    # `grade_json` validated against GradeOut (the model this route declares)
    return Response(body, media_type="application/json")


@router.get("/{uscc}/records", response_model=list[RecordOut], responses=error_responses(*_READ_ERRORS))
def get_records(access: SubjectAccessDep, session: SessionDep, include_history: bool = False) -> list[RecordOut]:
    """The subject's records (current versions; ``include_history`` adds superseded ones)."""
    rows = subjects.list_records(session, access.uscc, include_history=include_history)
    return [RecordOut.model_validate(r) for r in rows]


@router.get("/{uscc}/objections", response_model=list[ObjectionOut], responses=error_responses(*_READ_ERRORS))
def get_objections(access: SubjectAccessDep, session: SessionDep, today: TodayDep) -> list[ObjectionOut]:
    return [objection_out(o, today) for o in objections.list_objections(session, uscc=access.uscc)]


@router.get("/{uscc}/repairs", response_model=list[RepairOut], responses=error_responses(*_READ_ERRORS))
def get_repairs(access: SubjectAccessDep, session: SessionDep) -> list[RepairOut]:
    return [RepairOut.model_validate(r) for r in repairs.list_repairs(session, uscc=access.uscc)]


@router.get("/{uscc}/records/{record_id}/repair-eligibility", response_model=EligibilityOut,
            responses=error_responses(*_READ_ERRORS, UnknownRecord))
def repair_eligibility(access: SubjectAccessDep, session: SessionDep, today: TodayDep,
                       eligibility: EligibilityDep,
                       record_id: Annotated[str, Path(min_length=1, max_length=40), NoControlChars]) -> EligibilityOut:
    record = subjects.current_record(session, record_id, access.uscc)
    eligible, verdict = repairs.check_eligibility(record, today, eligibility)
    return EligibilityOut(record_id=record_id, eligible=eligible, eligible_from=verdict.eligible_from,
                          rule=verdict.rule)
