"""Shared by the regulator and sector routers: a logged page of covered subjects with grades."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import Depends, Query

from serving.deps import ReadLog
from serving.schemas import SubjectGradeRow, SubjectPage
from serving.security import Principal, shown_name
from serving.services.grades import covered_subjects
from serving.validation import NoControlChars


@dataclass(frozen=True)
class SubjectListQuery:
    """The query of a list of covered subjects: why (logged), which grade, which page."""

    purpose: str
    grade: str | None
    offset: int
    limit: int


async def subject_list_query(purpose: Annotated[str, Query(min_length=2, max_length=200), NoControlChars],
                             grade: Literal["A", "B", "C", "D"] | None = None,
                             offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
                             limit: Annotated[int, Query(ge=1, le=200)] = 50) -> SubjectListQuery:
    return SubjectListQuery(purpose, grade, offset, limit)


SubjectListDep = Annotated[SubjectListQuery, Depends(subject_list_query)]


def logged_subject_page(log: ReadLog, principal: Principal, query: SubjectListQuery) -> SubjectPage:
    """A page of covered subjects; each subject whose grade is shown is a logged read."""
    total, rows = covered_subjects(log.session, principal, grade=query.grade, offset=query.offset, limit=query.limit)
    log.shown(principal, query.purpose, [subject.uscc for subject, _grade in rows])
    items = [SubjectGradeRow(uscc=s.uscc, name=shown_name(s.name, s.legal_form), industry=s.industry,
                             district_name=s.district_name,
                             grade=g.grade if g else None, score=g.score if g else None,
                             as_of=g.as_of if g else None, stale=g.stale if g else None) for s, g in rows]
    return SubjectPage(total=total, items=items)
