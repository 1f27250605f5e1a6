"""Analysts: aggregates and alerts only (no subject-level credit data)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from sqlalchemy import select

from serving.db.models import Alert
from serving.deps import SessionDep, require_role
from serving.errors import NotAllowed, NotAuthenticated, error_responses
from serving.schemas import AlertOut, GradeShareOut
from serving.security import Principal
from serving.services import grades

router = APIRouter(prefix="/api/v1/analyst", tags=["analyst"])
Analyst = Annotated[Principal, Depends(require_role("analyst", "admin"))]


@router.get("/alerts", response_model=list[AlertOut], responses=error_responses(NotAuthenticated, NotAllowed))
def alerts(principal: Analyst, session: SessionDep, include_acknowledged: bool = False,
           limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[AlertOut]:
    stmt = select(Alert)
    if not include_acknowledged:
        stmt = stmt.where(Alert.acknowledged.is_(False))
    return [AlertOut.model_validate(a) for a in session.scalars(stmt.order_by(Alert.id.desc()).limit(limit))]


@router.get("/grade-shares", response_model=list[GradeShareOut],
            responses=error_responses(NotAuthenticated, NotAllowed))
def grade_shares(principal: Analyst, session: SessionDep) -> list[GradeShareOut]:
    """Subjects per grade and as-of date."""
    return [GradeShareOut(as_of=d, grade=g, subjects=n) for d, g, n in grades.grade_shares(session)]
