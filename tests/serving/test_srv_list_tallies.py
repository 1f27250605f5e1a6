"""The lists' totals of readers who cover every subject (or a section) are kept as tallies, maintained
where subjects and current grades are written (issue 22): the first page after any load reads them
(no count over the population), and they equal a fresh count after any history of stores, regrades,
subject changes and pruning."""

from __future__ import annotations

import datetime as dt
import itertools

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import event, func, select
from srv_fixtures import add_subjects

from serving.db.tables import CurrentGrade, Grade, Subject
from serving.security import Principal
from serving.services.bulk import load_grades
from serving.services.grades import prune_grades, store_grades
from serving.services.subject_lists import ListFilter, offset_page, subject_page
from simulation.codes import make_uscc

ADMIN = Principal(username="admin", role="admin")
CITY = Principal(username="r", role="regulator", department="samr")
SECTOR = Principal(username="sec", role="sector", section="C")
DISTRICTS = ["320102", "320104"]
INDUSTRIES = ["C", "F"]
DAYS = [dt.date(2026, 7, 31), dt.date(2026, 8, 31)]


def _codes(n: int, start: int = 8100) -> list[str]:
    return [str(c) for c in make_uscc(np.array(["91"] * n), np.full(n, 320102), np.arange(start, start + n))]


def _fresh(session, who: Principal, f: ListFilter) -> int:
    """The total by reading every subject and current grade (the rule, not the tally)."""
    grades = dict(session.execute(select(CurrentGrade.uscc, CurrentGrade.grade)).all())
    return sum(1 for uscc, district, industry in session.execute(
        select(Subject.uscc, Subject.district_code, Subject.industry)).all()
        if (who.role != "sector" or industry == who.section) and f.district in (None, district)
        and f.industry in (None, industry) and (f.grade is None or grades.get(uscc) == f.grade))


_LOADS = itertools.count()
_OPS = st.lists(st.tuples(
    st.sampled_from(["subject", "grade", "grade", "bulk", "prune"]),
    st.integers(0, 4),
    st.sampled_from(DISTRICTS),
    st.sampled_from(INDUSTRIES),
    st.sampled_from(DAYS),
    st.sampled_from("ABCD"),
), min_size=1, max_size=20)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=_OPS)
def test_the_kept_totals_equal_a_fresh_count_after_any_history(session, ops):
    codes = _codes(5, start=8200 + 5 * next(_LOADS))  # new subjects each example; the others stay counted
    add_subjects(session, [dict(uscc=c, name=f"企业{i}", industry="C", district_code="320102",
                                  registered_on="2015-01-01") for i, c in enumerate(codes[:3])])
    for op, who, district, industry, day, letter in ops:
        grade = dict(uscc=codes[who], as_of=day, score=600.0, grade=letter, probability=0.1,
                     model_version="general-v3", profile_hash="p2" + "0" * 62)
        if op == "subject":  # new or moved to another district or section
            add_subjects(session, [dict(uscc=codes[who], name=f"企业{who}", industry=industry, district_code=district,
                                          registered_on="2015-01-01")])
        elif op == "prune":
            prune_grades(session, keep_as_of=1)
        elif codes[who] in set(session.scalars(select(Subject.uscc))):
            if op == "grade":
                store_grades(session, [grade])
            else:
                load_grades(session.get_bind(), [pd.DataFrame([grade])], load_id=f"tally-{next(_LOADS)}")
    for who, grade, district, industry in itertools.product([ADMIN, CITY, SECTOR], [None, *"ABCD"],
                                                            [None, *DISTRICTS], [None, *INDUSTRIES]):
        f = ListFilter(grade=grade, district=district, industry=industry)
        assert subject_page(session, who, f, limit=1).total == _fresh(session, who, f), (who.role, f)


def test_the_first_page_after_a_load_counts_nothing(session):
    """After grades are stored (the kept totals forgotten), a city-wide reader's first pages, with
    or without filters, and the page where the list turns to the ungraded subjects, read the
    tallies: no statement counts subjects or current grades."""
    codes = _codes(5)
    add_subjects(session, [dict(uscc=c, name=f"企业{i}", industry=INDUSTRIES[i % 2], district_code=DISTRICTS[i % 2],
                                  registered_on="2015-01-01") for i, c in enumerate(codes)])
    store_grades(session, [dict(uscc=c, as_of=DAYS[1], score=600.0 + i, grade="B", probability=0.1,
                                model_version="general-v3", profile_hash="p2" + "0" * 62)
                           for i, c in enumerate(codes[:4])])
    statements: list[str] = []

    def seen(_conn, _cursor, statement, *_args):
        statements.append(statement)

    engine = session.get_bind()
    event.listen(engine, "before_cursor_execute", seen)
    try:
        for f in [ListFilter(), ListFilter(grade="B"), ListFilter(district=DISTRICTS[0]),
                  ListFilter(grade="B", industry="F")]:
            page = subject_page(session, CITY, f, limit=2)
            while page.next:  # to the last page: the ungraded subjects after the graded ones
                page = subject_page(session, CITY, f, after=page.next, limit=2)
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    counts = [s for s in statements if "count(" in s.lower() and ("FROM subjects" in s or "FROM current_grades" in s)]
    assert not counts, counts


def test_offset_pages_skip_whole_grades_by_their_tallies_and_list_what_the_full_order_lists(session):
    """Offset pages (``offset_page``, and ``covered_subjects`` over the whole list): the rows the whole list ordered riskiest first has there
    (the reference: one ORDER BY over every covered subject), for every offset and two readers."""
    from serving.services.access import coverage_clause
    from serving.services.grades import CURRENT_JOIN, covered_subjects

    codes = _codes(14, start=8600)
    add_subjects(session, [dict(uscc=c, name=f"企业{i}", industry=INDUSTRIES[i % 2], district_code=DISTRICTS[i % 2],
                                  registered_on="2015-01-01") for i, c in enumerate(codes)])
    store_grades(session, [dict(uscc=c, as_of=DAYS[1], score=float(600 + i % 3), grade="ABCD"[i % 4], probability=0.1,
                                model_version="general-v3", profile_hash="p2" + "0" * 62)
                           for i, c in enumerate(codes[:11])])
    for who, grade in [(ADMIN, None), (ADMIN, "B"), (SECTOR, None)]:
        stmt = (select(Subject.uscc).outerjoin(CurrentGrade, CurrentGrade.uscc == Subject.uscc)
                .outerjoin(Grade, CURRENT_JOIN).where(coverage_clause(who)))
        if grade:
            stmt = stmt.where(CurrentGrade.grade == grade)
        everyone = list(session.scalars(stmt.order_by(CurrentGrade.grade.desc().nulls_last(), CurrentGrade.score,
                                                      Subject.uscc)))
        for offset in range(len(everyone) + 2):
            total, rows = offset_page(session, who, ListFilter(grade=grade), offset, 3)
            assert (total, rows) == covered_subjects(session, who, grade=grade, offset=offset, limit=3)
            assert total == len(everyone) and [s.uscc for s, _g in rows] == everyone[offset:offset + 3], (who.role,
                                                                                                           offset)


def test_the_analysts_aggregates_are_read_once_per_change_and_follow_stores_and_pruning(session):
    """``grade_shares`` and ``model_use`` aggregate every grade (24 M rows in a city of 2 M × 12):
    read once until grades, subjects or records change, and always equal to a fresh aggregate."""
    from serving.services import grades as grades_service

    def fresh():
        return ([tuple(r) for r in session.execute(select(Grade.as_of, Grade.grade, func.count())
                                                   .group_by(Grade.as_of, Grade.grade).order_by(Grade.as_of, Grade.grade))],
                [tuple(r) for r in session.execute(select(Grade.model_version, func.count(func.distinct(Grade.uscc)),
                                                          func.max(Grade.as_of)).group_by(Grade.model_version)
                                                   .order_by(Grade.model_version))])

    def served():
        return grades_service.grade_shares(session), grades_service.model_use(session)

    codes = _codes(3, start=8900)
    add_subjects(session, [dict(uscc=c, name=f"企业{i}", industry="C", registered_on="2015-01-01")
                             for i, c in enumerate(codes)])
    for day, letter in [(DAYS[0], "A"), (DAYS[1], "C")]:
        store_grades(session, [dict(uscc=c, as_of=day, score=600.0, grade=letter, probability=0.1,
                                    model_version="general-v3", profile_hash="p2" + "0" * 62) for c in codes])
        assert served() == fresh()
    statements: list[str] = []
    engine = session.get_bind()

    def seen(_conn, _cursor, statement, *_args):
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", seen)
    try:
        assert served() == fresh()
        statements.clear()
        served()
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert not [s for s in statements if "FROM grades" in s], statements  # kept
    prune_grades(session, keep_as_of=1)
    assert served() == fresh()
