"""Shared by the regulator and sector routers: a logged page of covered subjects with grades."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import Query
from sqlalchemy.orm import Session

from serving.errors import InvalidInput
from serving.schemas import SubjectGradeRow, SubjectPage
from serving.security import Principal
from serving.services.grades import covered_subjects
from serving.services.querylog import append_entries
from serving.services.subject_lists import ListFilter, subject_page
from serving.validation import NoControlChars


@dataclass
class ListQuery:
    """The list's query parameters, declared once for both routers (``Annotated[ListQuery, Depends()]``)."""

    purpose: Annotated[str, Query(min_length=2, max_length=200), NoControlChars]
    grade: Literal["A", "B", "C", "D"] | None = None
    district: Annotated[str | None, Query(pattern=r"^[0-9]{6}$", description="district code (6 digits)")] = None
    industry: Annotated[str | None, Query(pattern=r"^[A-T]$", description="GB/T 4754 section")] = None
    search: Annotated[str | None, Query(min_length=1, max_length=60, description="USCC prefix or name prefix"),
                      NoControlChars] = None
    after: Annotated[str | None, Query(max_length=400, description="the `next` cursor of the previous page")] = None
    offset: Annotated[int, Query(ge=0, le=10_000_000, description="rows to skip (grade filter only; "
                                 "prefer `after`)")] = 0
    limit: Annotated[int, Query(ge=1, le=200)] = 50


def logged_subject_page(session: Session, principal: Principal, endpoint: str, query: ListQuery) -> SubjectPage:
    """A page of covered subjects; each subject whose grade is shown is a logged read. Paged by key
    (``after``: every page costs the same); ``offset`` is kept for the existing clients and reads
    the rows before it."""
    grade, offset, limit, after = query.grade, query.offset, query.limit, query.after
    filters = ListFilter(grade=grade, district=query.district, industry=query.industry, search=query.search)
    if offset:
        if after or filters != ListFilter(grade=grade):
            raise InvalidInput("offset pages take only the grade filter; page with `after` (分页请使用 after 游标)",
                               field="offset")
        total, rows, cursor = *covered_subjects(session, principal, grade=grade, offset=offset, limit=limit), None
    else:
        page = subject_page(session, principal, filters, after=after, limit=limit)
        total, rows, cursor = page.total, page.rows, page.next
    append_entries(session, principal=principal, purpose=query.purpose, endpoint=endpoint,
                   reads=[(subject.uscc, "allowed") for subject, _grade in rows])
    items = [SubjectGradeRow(uscc=s.uscc, name=s.name, industry=s.industry, district_name=s.district_name,
                             grade=g.grade if g else None, score=g.score if g else None,
                             as_of=g.as_of if g else None, stale=g.stale if g else None) for s, g in rows]
    return SubjectPage(total=total, items=items, next=cursor)
