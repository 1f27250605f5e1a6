"""Sector departments: the subjects of their GB/T 4754 section and the models grading them."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query

from serving.deps import SessionDep, require_role
from serving.errors import NotAllowed, NotAuthenticated, error_responses
from serving.routes._lists import logged_subject_page
from serving.schemas import ModelUseOut, SubjectPage
from serving.security import Principal
from serving.services import grades
from serving.validation import NoControlChars

router = APIRouter(prefix="/api/v1/sector", tags=["sector"])
Sector = Annotated[Principal, Depends(require_role("sector"))]


@router.get("/subjects", response_model=SubjectPage, responses=error_responses(NotAuthenticated, NotAllowed))
def list_subjects(principal: Sector, session: SessionDep,
                  purpose: Annotated[str, Query(min_length=2, max_length=200), NoControlChars],
                  grade: Literal["A", "B", "C", "D"] | None = None,
                  offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
                  limit: Annotated[int, Query(ge=1, le=200)] = 50) -> SubjectPage:
    return logged_subject_page(session, principal, purpose, "GET /api/v1/sector/subjects",
                               grade=grade, offset=offset, limit=limit)


@router.get("/models", response_model=list[ModelUseOut], responses=error_responses(NotAuthenticated, NotAllowed))
def models_in_use(principal: Sector, session: SessionDep) -> list[ModelUseOut]:
    """Model versions that graded subjects of the section (aggregate, not subject data)."""
    return [ModelUseOut(model_version=v, subjects=n, latest_as_of=d)
            for v, n, d in grades.model_use(session, principal.section)]
