"""Issue 22: a search riskiest first, paged by key, is the plain reference — the subjects whose
USCC (or else name) starts with the prefix, sorted by their latest grade (D→A, score, USCC), the
ungraded last by USCC — for any prefix and page size, whichever way each grade letter is read
(its matches by the key's range, or its rank index in order), across renames and regrades; and
the page before is where the reader came from. The reference reads the source tables (subjects,
and the latest of each subject's grades by the one rule), not ``current_grades``."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from srv_fixtures import add_subjects
from test_srv_city_scale import ADMIN, _codes

from serving.db.tables import CurrentGrade, Grade, Subject
from serving.services import subject_lists
from serving.services.grades import store_grades
from serving.services.subject_lists import ListFilter, previous_cursor, subject_page

N = 40
CODES = _codes(N, start=40_000)
SETTINGS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
NAMES = st.text("甲乙丙", min_size=1, max_size=3).map(lambda tail: "南京" + tail)
OPS = st.lists(st.one_of(
    st.tuples(st.just("rename"), st.integers(0, N - 1), NAMES),
    st.tuples(st.just("regrade"), st.integers(0, N - 1), st.sampled_from("ABCD"),
              st.sampled_from([500.0, 600.0, 650.5]), st.integers(9, 12)),
), max_size=6)
PREFIXES = st.sampled_from(["南", "南京", "南京甲", "南京乙丙", "南京丙丙丙", "北", "9", "913201020", CODES[3][:16],
                            CODES[5]])


def _subject(i: int, name: str) -> dict:
    return dict(uscc=CODES[i], name=name, industry="CFS"[i % 3], district_code=["320102", "320104"][i % 2],
                registered_on="2015-01-01")


def _grade(i: int, letter: str, score: float, month: int) -> dict:
    return dict(uscc=CODES[i], as_of=dt.date(2026, month, 28), score=score, grade=letter, probability=0.1,
                model_version="general-v3", profile_hash="p2" + "0" * 62)


def _small_city(session) -> None:
    """Once per test database: N subjects, names of few letters (prefixes of every density), most
    graded, some scores tied (the USCC breaks the tie)."""
    if session.scalar(select(func.count()).select_from(Subject).where(Subject.uscc.in_(CODES))) == N:
        return
    add_subjects(session, [_subject(i, "南京" + "甲乙丙"[i % 3] * (1 + i % 3)) for i in range(N)])
    store_grades(session, [_grade(i, "ABCD"[(i * 7) % 4], [500.0, 600.0, 700.0][i % 3], 9)
                           for i in range(N) if i % 5])
    session.commit()


def _reference(session, search: str, grade: str | None) -> list[str]:
    """The matches riskiest first, from the source tables by the plain rule."""
    latest: dict[str, Grade] = {}
    for g in session.scalars(select(Grade).order_by(Grade.as_of, Grade.created_at, Grade.id)):
        latest[g.uscc] = g
    usccs = subject_lists._USCC_PREFIX.fullmatch(search)
    matches = [s for s in session.scalars(select(Subject))
               if (s.uscc if usccs else s.name).startswith(search)
               and (grade is None or (s.uscc in latest and latest[s.uscc].grade == grade))]

    def rank(s: Subject) -> tuple:
        g = latest.get(s.uscc)
        return (0, -ord(g.grade), g.score, s.uscc) if g else (1, 0, 0.0, s.uscc)

    return [s.uscc for s in sorted(matches, key=rank)]


@SETTINGS
@given(ops=OPS, search=PREFIXES, grade=st.sampled_from([None, None, "B"]), limit=st.integers(1, 9),
       walk=st.sampled_from([None, True, False]))
def test_search_pages_riskiest_first_are_the_plain_reference(session, world, monkeypatch, ops, search, grade,
                                                             limit, walk):
    _small_city(session)
    for op in ops:
        if op[0] == "rename":
            _kind, i, name = op
            add_subjects(session, [_subject(i, name)])  # the service's only way to rename: a subject load
        else:
            _kind, i, letter, score, month = op
            store_grades(session, [_grade(i, letter, score, month)])
            session.commit()
    with monkeypatch.context() as m:
        if walk is not None:  # each letter read one way (None: the cheaper, as served)
            m.setattr(subject_lists, "_walks", lambda *_: walk)
        filters = ListFilter(search=search, grade=grade)
        expected = _reference(session, search, grade)
        seen: list[str] = []
        afters: list[str | None] = [None]
        page = subject_page(session, ADMIN, filters, limit=limit)
        while True:
            assert not page.changed and page.total == len(expected)
            assert len(page.rows) <= limit
            seen += [s.uscc for s, _g in page.rows]
            if len(afters) > 1:
                assert previous_cursor(session, ADMIN, filters, afters[-1], limit=limit) == afters[-2]
            if page.next is None:
                break
            afters.append(page.next)
            page = subject_page(session, ADMIN, filters, after=page.next, limit=limit)
        assert seen == expected, (search, grade, limit)


def test_a_renamed_subject_moves_in_the_current_grades_copy(session, world):
    """The name copied onto ``current_grades`` follows a rename (the bulk subject load), so the
    search by the new name finds it and the old one no longer does."""
    _small_city(session)
    add_subjects(session, [_subject(1, "北京改名")])
    assert session.scalar(select(CurrentGrade.name).where(CurrentGrade.uscc == CODES[1])) == "北京改名"
    assert [s.uscc for s, _g in subject_page(session, ADMIN, ListFilter(search="北京改")).rows] == [CODES[1]]
    old = "南京" + "乙" * 2
    assert CODES[1] not in [s.uscc for s, _g in subject_page(session, ADMIN, ListFilter(search=old), limit=100).rows]


@pytest.mark.parametrize(("matches", "letter", "wanted", "walks"),
                         [(0, 2_000_000, 51, False), (1_001, 500_000, 51, False), (10_000, 500_000, 51, True),
                          (50_000, 500_000, 51, True), (200_000, 500_000, 51, True)])
def test_each_letter_is_read_the_cheaper_way(matches, letter, wanted, walks):
    """A letter's rows read: its ``matches`` by the key's range, or ≈ wanted × letter / matches in
    rank order: the walk only where it reads fewer."""
    assert subject_lists._walks(matches, letter, wanted) is walks


def test_migration_0021_copies_the_names_of_a_populated_database_and_goes_back(tmp_path):
    """An operational database at 0020 with current grades gets their subjects' names (the
    searches read them), and the downgrade drops them again."""
    from sqlalchemy import create_engine, text

    from serving.db.migrate import current_revision, upgrade

    url = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade(url, "0020")
    engine = create_engine(url)
    with engine.begin() as conn:
        for i in range(3):
            conn.execute(text("INSERT INTO subjects (uscc, name, status, updated_at) VALUES (:u, :n, 'active', "
                              "'2026-01-01 00:00:00')"), {"u": CODES[i], "n": f"南京旧名{i}"})
        conn.execute(text("INSERT INTO current_grades (uscc, as_of, model_version, grade, score) "
                          "VALUES (:u, '2026-09-28', 'general-v3', 'B', 600.0)"), {"u": CODES[1]})
    upgrade(url)
    assert current_revision(url) == "0021"
    with engine.connect() as conn:
        assert conn.execute(text("SELECT uscc, name FROM current_grades")).all() == [(CODES[1], "南京旧名1")]
        indexes = {row[1] for row in conn.execute(text("PRAGMA index_list(current_grades)"))}
    assert {"ix_current_grades_name_search", "ix_current_grades_uscc_search"} <= indexes
    from alembic import command

    from serving.db.migrate import alembic_config

    command.downgrade(alembic_config(url), "0020")
    with engine.connect() as conn:
        assert "name" not in {row[1] for row in conn.execute(text("PRAGMA table_info(current_grades)"))}
    engine.dispose()
