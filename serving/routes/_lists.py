"""Shared by the regulator and sector routers: a logged page of covered subjects with grades."""

from __future__ import annotations

from sqlalchemy.orm import Session

from serving.schemas import SubjectGradeRow, SubjectPage
from serving.security import Principal, shown_name
from serving.services.grades import covered_subjects
from serving.services.querylog import append_entries


def logged_subject_page(session: Session, principal: Principal, purpose: str, endpoint: str, *,
                        grade: str | None, offset: int, limit: int) -> SubjectPage:
    """A page of covered subjects; each subject whose grade is shown is a logged read."""
    total, rows = covered_subjects(session, principal, grade=grade, offset=offset, limit=limit)
    append_entries(session, principal=principal, purpose=purpose, endpoint=endpoint,
                   reads=[(subject.uscc, "allowed") for subject, _grade in rows])
    items = [SubjectGradeRow(uscc=s.uscc, name=shown_name(s.name, s.legal_form), industry=s.industry, district_name=s.district_name,
                             grade=g.grade if g else None, score=g.score if g else None,
                             as_of=g.as_of if g else None, stale=g.stale if g else None) for s, g in rows]
    return SubjectPage(total=total, items=items)
