"""A plan's pool grades follow the one rule of "latest" (issue 22): of a subject's grades of a day,
the one stored last, in the order the current grades keep (as_of, created_at, id) — also when one
model's grade is stored again (upserted) after another model's of the same day."""

from __future__ import annotations

import datetime as dt

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, func, select
from srv_fixtures import add_subjects

from serving.db.tables import CurrentGrade, Grade
from serving.services.grades import refresh_current, store_grades
from serving.services.plans import grades_frame
from simulation.codes import make_uscc

DAYS = [dt.date(2026, 7, 31), dt.date(2026, 8, 31)]


def _codes(n: int) -> list[str]:
    return [str(c) for c in make_uscc(np.array(["91"] * n), np.full(n, 320102), np.arange(7000, 7000 + n))]


def _grade(uscc: str, day: dt.date, model: str, letter: str) -> dict:
    return dict(uscc=uscc, as_of=day, score=600.0, grade=letter, probability=0.1, model_version=model,
                profile_hash="p2" + "0" * 62)


def _stored_last(session, day: dt.date) -> dict[str, tuple[str, str]]:
    """The rule by ranking every grade of ``day``: (grade, model) of the one stored last."""
    ranked = select(Grade.uscc, Grade.grade, Grade.model_version, func.row_number().over(
        partition_by=Grade.uscc, order_by=(Grade.created_at.desc(), Grade.id.desc())).label("rank")
    ).where(Grade.as_of == day).subquery()
    return {u: (g, m) for u, g, m in session.execute(select(ranked.c.uscc, ranked.c.grade, ranked.c.model_version)
                                                     .where(ranked.c.rank == 1))}


def _frame(session, day: dt.date) -> dict[str, tuple[str, str]]:
    frame = grades_frame(session, day)
    assert list(frame.columns) == ["uscc", "grade", "as_of", "model_version"]
    assert set(frame["as_of"]) <= {str(day)} and frame["uscc"].is_unique
    return {r.uscc: (r.grade, r.model_version) for r in frame.itertuples()}


def test_a_regrade_stored_again_after_another_models_grade_of_the_day_is_the_pools_grade(session):
    """general-v4 stored, then general-v3, then general-v4 again (an upsert keeps its row id): the
    grade stored last is v4's, the current grade; the highest id is v3's."""
    uscc = _codes(1)[0]
    add_subjects(session, [dict(uscc=uscc, name="企业甲", industry="C", registered_on="2015-01-01")])
    for day in DAYS:  # the older day first, then the latest
        store_grades(session, [_grade(uscc, day, "general-v4", "B")])
        store_grades(session, [_grade(uscc, day, "general-v3", "D")])
        store_grades(session, [_grade(uscc, day, "general-v4", "A")])
    current = session.scalars(select(CurrentGrade).where(CurrentGrade.uscc == uscc)).one()
    assert (current.as_of, current.grade, current.model_version) == (DAYS[-1], "A", "general-v4")
    for day in DAYS:
        assert _frame(session, day)[uscc] == ("A", "general-v4"), day


_OPS = st.lists(st.tuples(st.integers(0, 3), st.sampled_from(DAYS), st.sampled_from(["general-v3", "general-v4"]),
                          st.sampled_from("ABCD")), min_size=1, max_size=20)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=_OPS)
def test_the_pools_grades_of_any_day_are_the_grades_stored_last(session, ops):
    codes = _codes(4)
    graded = session.scalars(select(CurrentGrade.uscc)).all()
    session.execute(delete(Grade))
    refresh_current(session, graded)  # no current grades left, the lists' tallies with them
    session.commit()
    add_subjects(session, [dict(uscc=c, name=f"企业{i}", industry="C", registered_on="2015-01-01")
                             for i, c in enumerate(codes)])
    for who, day, model, letter in ops:
        store_grades(session, [_grade(codes[who], day, model, letter)])
    for day in DAYS:
        assert _frame(session, day) == _stored_last(session, day), day
