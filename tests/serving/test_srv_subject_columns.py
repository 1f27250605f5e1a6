"""``grades.refresh_subject_columns`` (issue 22): subjects' industry, district and name copied into
their current grades in one set-based statement, whatever the number of subjects, with the result of
one UPDATE per subject (the last row of a subject given twice wins)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import event, select
from srv_fixtures import add_subjects

from serving.db.session import engine_for
from serving.db.tables import CurrentGrade
from serving.services.grades import refresh_subject_columns, store_grades
from simulation.codes import make_uscc

_CODES = [str(c) for c in make_uscc(np.array(["91"] * 5), np.full(5, 320102), np.arange(71_000, 71_005))]
_ROWS = st.lists(st.tuples(st.sampled_from(_CODES), st.none() | st.sampled_from(["C", "F", "I"]),
                           st.none() | st.sampled_from(["320102", "320104"]),
                           st.sampled_from(["企业甲", "企业乙", "改名后"])), max_size=12)


@pytest.fixture
def graded(session):
    add_subjects(session, [dict(uscc=c, name=f"企业{i}", industry="C", district_code="320102",
                                registered_on="2015-01-01") for i, c in enumerate(_CODES)])
    store_grades(session, [dict(uscc=c, as_of="2026-07-31", score=600.0, grade="B", probability=0.1,
                                model_version="general-v3", profile_hash="p2" + "0" * 62, reasons=[])
                           for c in _CODES[:4]])  # the last subject has no grade: nothing to copy into


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=_ROWS)
def test_the_subjects_columns_reach_their_current_grades_in_one_statement(session, database_url, graded, rows):
    engine = engine_for(database_url)
    c = CurrentGrade.__table__
    with engine.connect() as conn, conn.begin() as transaction:
        columns = select(c.c.uscc, c.c.industry, c.c.district_code, c.c.name)
        before = {u: (i, d, n) for u, i, d, n in conn.execute(columns)}
        expected = dict(before)
        for uscc, industry, district, name in rows:  # one UPDATE per row, as before: the last one wins
            if uscc in expected:
                expected[uscc] = (industry, district, name)
        parameter_sets: list[int] = []

        def count(_conn, _cursor, statement, parameters, _context, executemany):
            if statement.lstrip().upper().startswith("UPDATE") and "current_grades" in statement:
                parameter_sets.append(len(parameters) if executemany else 1)

        event.listen(engine, "before_cursor_execute", count)
        try:
            refresh_subject_columns(conn, rows)
        finally:
            event.remove(engine, "before_cursor_execute", count)
        after = {u: (i, d, n) for u, i, d, n in conn.execute(columns)}
        transaction.rollback()
    assert after == expected
    assert sum(parameter_sets) <= 1  # one statement, not one per subject
