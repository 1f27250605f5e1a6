"""Regulators: grades of the subjects their department covers, and answering objections and
repair applications addressed to their department."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Response
from pydantic import TypeAdapter

from serving.deps import Decider, ReadLogDep, RegraderDep, Regulator, RowIdPath, SessionDep, TodayDep
from serving.errors import (
    ROLE_ERRORS,
    AlreadyDecided,
    InvalidInput,
    ModelUnavailable,
    UnknownObjection,
    UnknownRepair,
    error_responses,
)
from serving.presenters import objection_out
from serving.routes._lists import SubjectListDep, logged_subject_page
from serving.routes._routers import CallerFirstRoute
from serving.schemas import (
    DecisionIn,
    GradeBatchIn,
    GradeBatchOut,
    ObjectionOut,
    RepairDecisionIn,
    RepairOut,
    SubjectPage,
)
from serving.services import grades, objections, repairs
from serving.services.access import readable_subset

router = APIRouter(prefix="/api/v1/regulator", tags=["regulator"], route_class=CallerFirstRoute)


@router.post("/grades/batch", response_model=GradeBatchOut, responses=error_responses(*ROLE_ERRORS))
def batch_grades(body: GradeBatchIn, principal: Regulator, session: SessionDep, log: ReadLogDep) -> Response:
    """Latest grades of up to 1000 subjects; those not covered or not graded are listed apart,
    without saying which (so existence is not revealed). Each read is logged."""
    wanted = list(dict.fromkeys(body.usccs))
    readable = readable_subset(session, principal, wanted)
    covered = [u for u in wanted if u in readable]
    log.reads(principal, body.purpose, [(u, "allowed" if u in readable else "denied") for u in wanted])
    found = grades.latest_grades(session, covered)
    # the grades were validated as GradeOut when read: serialised once here, not validated and
    # serialised again by FastAPI against the response model (which the route still declares)
    out = GradeBatchOut(grades=[found[u] for u in covered if u in found],
                        unavailable=[u for u in wanted if u not in found])
    return Response(_BATCH_OUT.dump_json(out), media_type="application/json")


_BATCH_OUT = TypeAdapter(GradeBatchOut)


@router.get("/subjects", response_model=SubjectPage, responses=error_responses(*ROLE_ERRORS, InvalidInput))
def list_subjects(principal: Regulator, log: ReadLogDep, query: SubjectListDep) -> SubjectPage:
    """Covered subjects with their latest grade, riskiest first (each shown subject is logged)."""
    return logged_subject_page(log, principal, query)


@router.get("/objections", response_model=list[ObjectionOut], responses=error_responses(*ROLE_ERRORS))
def department_objections(principal: Regulator, session: SessionDep, today: TodayDep,
                          status: Literal["pending", "upheld", "rejected"] | None = None) -> list[ObjectionOut]:
    rows = objections.list_objections(session, department=principal.department, status=status)
    return [objection_out(o, today) for o in rows]


@router.post("/objections/{objection_id}/decision", response_model=ObjectionOut,
             responses=error_responses(*ROLE_ERRORS, UnknownObjection, AlreadyDecided, ModelUnavailable))
def decide_objection(body: DecisionIn, principal: Decider, session: SessionDep, today: TodayDep,
                     regrader: RegraderDep,
                     objection_id: RowIdPath) -> ObjectionOut:
    """Uphold (the record is revoked and the subject regraded) or reject an objection."""
    return objection_out(objections.decide_objection(session, principal, objection_id, body, today, regrader),
                         today)


@router.get("/repairs", response_model=list[RepairOut], responses=error_responses(*ROLE_ERRORS))
def department_repairs(principal: Regulator, session: SessionDep,
                       status: Literal["pending", "approved", "rejected"] | None = None) -> list[RepairOut]:
    rows = repairs.list_repairs(session, department=principal.department, status=status)
    return [RepairOut.model_validate(r) for r in rows]


@router.post("/repairs/{application_id}/decision", response_model=RepairOut,
             responses=error_responses(*ROLE_ERRORS, UnknownRepair, AlreadyDecided, ModelUnavailable))
def decide_repair(body: RepairDecisionIn, principal: Decider, session: SessionDep, today: TodayDep,
                  regrader: RegraderDep,
                  application_id: RowIdPath) -> RepairOut:
    """Approve (the record is marked repaired and the subject regraded) or reject, with a reason."""
    return RepairOut.model_validate(
        repairs.decide_repair(session, principal, application_id, body, today, regrader))
