"""ORM rows → response models; personal information is masked here, in one place."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from pydantic import TypeAdapter

from serving.db.tables import Objection, Subject
from serving.labels import beijing_minute
from serving.schemas import GradeOut, ObjectionOut, SubjectOut
from serving.security import mask_id_number, mask_name, shown_name
from serving.services.objections import is_overdue


def subject_out(subject: Subject) -> SubjectOut:
    """A subject with the legal representative's name and ID number masked (脱敏), and its own name
    as every list shows it (``shown_name``: masked when the legal form names it after a person)."""
    out = SubjectOut.model_validate(subject)
    out.name = shown_name(subject.name, subject.legal_form)
    out.legal_rep_name = mask_name(subject.legal_rep_name)
    out.legal_rep_id = mask_id_number(subject.legal_rep_id)
    out.personal_info_masked = True
    return out


_GRADE_OUT = TypeAdapter(GradeOut)


def grade_json(values: Mapping[str, Any]) -> bytes:
    """The JSON body of ``GradeOut`` for a grade's stored columns (``grades.latest_grade_values``),
    validated once: a route that returns these bytes skips FastAPI's second validation and
    serialisation of the response model, which it still declares for OpenAPI."""
    return _GRADE_OUT.dump_json(_GRADE_OUT.validate_python(dict(values)))




def local_minute(moment: dt.datetime | None) -> str:
    """A stored UTC time as Beijing time to the minute (naive values are UTC)."""
    return beijing_minute(moment) if moment is not None else "—"


def objection_out(objection: Objection, today: dt.date) -> ObjectionOut:
    out = ObjectionOut.model_validate(objection)
    out.overdue = is_overdue(objection, today)
    return out
