"""Lists that scale on the pages (issue 17 item 3, issue 22 item 2): the first page's total is kept
per coverage and filters until the population changes; the pages page, filter, search and keep
their filters in every link; the enterprise page separates the records after the evaluation date."""

from __future__ import annotations

import re

from sqlalchemy import event, select
from test_srv_city_scale import ADMIN, _city

from serving.db.models import CurrentGrade
from serving.security import Principal
from serving.services.grades import store_grades
from serving.services.subject_lists import ListFilter, count_subjects, subject_page
from serving.services.subjects import store_records, store_subjects


def _counts_run(session, run) -> int:
    """How many COUNT statements ``run`` sends to the database."""
    seen: list[str] = []
    connection = session.connection()

    def remember(_conn, _cursor, statement, _parameters, _context, _many):
        if re.search(r"\bcount\(", statement, re.IGNORECASE):
            seen.append(statement)

    event.listen(connection.engine, "before_cursor_execute", remember)
    try:
        run()
    finally:
        event.remove(connection.engine, "before_cursor_execute", remember)
    return len(seen)


def test_first_page_total_is_counted_once_per_filter_until_grades_subjects_or_records_change(session):
    _city(session)
    session.commit()
    filters = ListFilter(grade="B")
    first = subject_page(session, ADMIN, filters, limit=5)
    assert first.total == count_subjects(session, ADMIN, filters)
    assert _counts_run(session, lambda: subject_page(session, ADMIN, filters, limit=5)) == 0  # kept
    assert _counts_run(session, lambda: subject_page(session, ADMIN, ListFilter(grade="A"), limit=5)) == 1
    assert _counts_run(session, lambda: subject_page(session, ADMIN, filters, after=first.next, limit=5)) == 0
    session.commit()

    # grades loaded: a C subject becomes B, the kept total is forgotten and the new one is right
    moved = session.scalars(select(CurrentGrade.uscc).where(CurrentGrade.grade == "C")).first()
    store_grades(session, [dict(uscc=moved, as_of="2026-10-31", score=610.0, grade="B", probability=0.1,
                                model_version="general-v3", profile_hash="p3" + "0" * 62)])
    after_grades = subject_page(session, ADMIN, filters, limit=5).total
    assert after_grades == first.total + 1 == count_subjects(session, ADMIN, filters)
    session.commit()

    # a new subject: the unfiltered total grows
    everyone = subject_page(session, ADMIN, ListFilter(), limit=5).total
    session.commit()
    new = _city_extra(session)
    assert subject_page(session, ADMIN, ListFilter(), limit=5).total == everyone + new
    session.commit()

    # a department regulator's coverage follows its records: a new record of theirs counts at once
    samr = Principal(username="reg_samr", role="regulator", department="tax")
    covered = subject_page(session, samr, ListFilter(), limit=5).total
    session.commit()
    uncovered = next(s for s, _g in subject_page(session, ADMIN, ListFilter(search="9132"), limit=200).rows
                     if not count_subjects(session, samr, ListFilter(search=s.uscc)))
    store_records(session, [dict(record_id="RTAX-LIST-1", uscc=uncovered.uscc, kind="admin_penalty",
                                 severity="minor", decision_date="2026-03-01", department="tax",
                                 document_no="宁税罚〔2026〕1号")])
    assert subject_page(session, samr, ListFilter(), limit=5).total == covered + 1


def _city_extra(session) -> int:
    from test_srv_city_scale import _codes

    codes = _codes(3, start=90_000)
    store_subjects(session, [dict(uscc=c, name=f"南京新设企业{i}", industry="C", district_code="320102",
                                  registered_on="2026-01-01") for i, c in enumerate(codes)])
    return len(codes)
