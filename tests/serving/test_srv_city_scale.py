"""City scale (issue 22): the current grade kept as data agrees with ranking the whole table; key
pages cover every subject once; bulk loads resume without duplicates; the query log is checked
from its last checkpoint."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, func, select
from srv_fixtures import add_subjects

from serving.db.session import engine_for
from serving.db.tables import CurrentGrade, Grade, Subject
from serving.schemas import GradeOut
from serving.security import Principal
from serving.services import grades as grades_service
from serving.services.bulk import load_grades, load_subjects
from serving.services.grades import (
    covered_subjects,
    latest_grade_values,
    latest_grades,
    mark_grades_stale,
    prune_grades,
    refresh_current,
    store_grades,
)
from serving.services.subject_lists import ListFilter, subject_page
from simulation.codes import make_uscc

ADMIN = Principal(username="admin", role="admin")
_FIXTURE_SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _codes(n: int, start: int = 1) -> list[str]:
    return [str(c) for c in make_uscc(np.array(["91"] * n), np.full(n, 320102), np.arange(start, start + n))]


def _window_latest(session) -> dict[str, tuple]:
    """The rule the reads used before current_grades: rank the whole table."""
    ranked = select(Grade.id, func.row_number().over(
        partition_by=Grade.uscc, order_by=(Grade.as_of.desc(), Grade.created_at.desc(), Grade.id.desc()),
    ).label("rank")).subquery()
    rows = session.scalars(select(Grade).where(Grade.id.in_(select(ranked.c.id).where(ranked.c.rank == 1))))
    return {g.uscc: (g.as_of, g.model_version, g.grade, g.score) for g in rows}


_GRADE_OPS = st.lists(st.tuples(
    st.sampled_from(["store", "store", "store", "stale", "prune"]),
    st.integers(0, 3),  # subject
    st.sampled_from([dt.date(2026, m, 28) for m in (6, 7, 8, 9)]),
    st.sampled_from(["general-v3", "general-v4"]),
    st.sampled_from("ABCD"),
    st.floats(300, 900, allow_nan=False).map(lambda x: round(x, 1)),
), min_size=1, max_size=25)


@_FIXTURE_SETTINGS
@given(ops=_GRADE_OPS)
def test_the_current_grade_is_the_latest_by_the_window_rule_on_any_history(session, ops):
    codes = _codes(4, start=9000)
    graded = session.scalars(select(CurrentGrade.uscc)).all()
    session.execute(delete(Grade))
    refresh_current(session, graded)  # no current grades left, the lists' tallies with them
    session.commit()
    add_subjects(session, [dict(uscc=c, name=f"企业{i}", industry="C", registered_on="2015-01-01") for i, c in enumerate(codes)])
    for op, who, as_of, model, letter, score in ops:
        if op == "stale":
            mark_grades_stale(session, codes[who], "record changed")
            session.commit()
        elif op == "prune":  # retention: the latest who + 1 as-of dates
            prune_grades(session, keep_as_of=who + 1)
        else:
            store_grades(session, [dict(uscc=codes[who], as_of=as_of, score=score, grade=letter, probability=0.1,
                                        model_version=model, profile_hash="p2" + "0" * 62)])
    expected = _window_latest(session)
    current = {c.uscc: (c.as_of, c.model_version, c.grade, c.score) for c in session.scalars(select(CurrentGrade))}
    assert current == expected
    batch = latest_grades(session, codes)
    assert {u: (g.as_of, g.model_version, g.grade, g.score) for u, g in batch.items()} == expected
    for uscc, (as_of, model, _letter, _score) in expected.items():
        single = latest_grade_values(session, uscc)
        assert (single["as_of"], single["model_version"]) == (as_of, model)
        assert batch[uscc] == GradeOut.model_validate(single)  # the batch serves the single read's grade
    _total, rows = covered_subjects(session, ADMIN, limit=200)
    assert {s.uscc: (g.as_of, g.model_version) for s, g in rows if g} == {u: v[:2] for u, v in expected.items()}


def _city(session, n: int = 60, seed: int = 7) -> list[dict]:
    rng = np.random.default_rng(seed)
    codes = _codes(n, start=20_000)
    subjects = [dict(uscc=c, name=f"南京{'甲乙丙'[i % 3]}企业{i:03d}", industry="CFS"[rng.integers(3)],
                     district_code=["320102", "320104"][rng.integers(2)], registered_on="2015-01-01") for i, c in enumerate(codes)]
    graded = session.scalars(select(CurrentGrade.uscc)).all()
    session.execute(delete(Grade))
    refresh_current(session, graded)  # no current grades left, the lists' tallies with them
    session.commit()
    add_subjects(session, subjects)
    graded = [c for c in codes if rng.random() < 0.8]
    store_grades(session, [dict(uscc=c, as_of="2026-09-30", score=float(rng.choice([500.0, 600.0, 700.0])),
                                grade="ABCD"[rng.integers(4)], probability=0.1, model_version="general-v3",
                                profile_hash="p2" + "0" * 62) for c in graded])
    return subjects


@_FIXTURE_SETTINGS
@given(grade=st.sampled_from([None, "A", "D"]), district=st.sampled_from([None, "320104"]),
       industry=st.sampled_from([None, "C"]), search=st.sampled_from([None, "南京甲", "91320102"]),
       limit=st.integers(1, 17))
def test_key_pages_cover_every_subject_exactly_once_under_filters(session, world, grade, district, industry,
                                                                  search, limit):
    if session.scalar(select(func.count()).select_from(Subject)) < 60:  # once per test database
        _city(session)
    filters = ListFilter(grade=grade, district=district, industry=industry, search=search)
    wanted = {s.uscc for s in session.scalars(select(Subject))
              if (district is None or s.district_code == district) and (industry is None or s.industry == industry)
              and (search is None or s.uscc.startswith(search) or s.name.startswith(search))}
    if grade:
        wanted &= set(session.scalars(select(CurrentGrade.uscc).where(CurrentGrade.grade == grade)))
    seen: list[str] = []
    page = subject_page(session, ADMIN, filters, limit=limit)
    total = page.total
    while True:
        assert len(page.rows) <= limit
        seen += [s.uscc for s, _g in page.rows]
        if page.next is None:
            break
        page = subject_page(session, ADMIN, filters, after=page.next, limit=limit)
        assert page.total == total  # carried, not recounted
    assert sorted(seen) == sorted(wanted) and len(seen) == len(set(seen)) == total
    if search is None:  # riskiest first, as the offset pages order them
        _n, offset_rows = covered_subjects(session, ADMIN, grade=grade, limit=10_000)
        in_order = [s.uscc for s, _g in offset_rows if s.uscc in wanted]
        assert seen == in_order


def _grade_frame(codes: list[str], as_of: str, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    reasons = json.dumps([{"code": "penalties_24m", "label_zh": "近24个月行政处罚", "contribution": -12.5,
                           "value": 2, "record_ids": ["R1"]}], ensure_ascii=False)
    return pd.DataFrame({"uscc": codes, "as_of": as_of, "score": rng.normal(650, 50, len(codes)).round(1),
                         "grade": rng.choice(list("ABCD"), len(codes)), "probability": rng.random(len(codes)),
                         "model_version": "general-v3", "profile_hash": "p2" + "0" * 62, "reasons": reasons,
                         "what_if": "[]"})


def test_a_bulk_load_interrupted_resumes_without_duplicates_and_rejects_with_reasons(session, database_url):
    codes = _codes(250, start=40_000)
    engine = engine_for(database_url)
    subjects = pd.DataFrame({"uscc": codes, "name": [f"企业{i}" for i in range(250)], "industry": "C",
                             "district_code": "320102", "registered_on": "2015-01-01"})
    assert load_subjects(engine, [subjects], load_id="subjects-1").stored == 250
    frame = _grade_frame(codes, "2026-09-30", seed=1)
    frame.loc[7, "grade"] = "E"  # rejected: not a grade letter
    frame.loc[8, "reasons"] = "[{not json"  # rejected: not JSON
    frame.loc[9, "uscc"] = codes[9][:-1] + ("0" if codes[9][-1] != "0" else "1")  # rejected: check character
    batches = [frame.iloc[i:i + 40] for i in range(0, 250, 40)]

    def interrupted():
        yield from batches[:3]
        raise KeyboardInterrupt  # the operator stops the load after three batches

    with pytest.raises(KeyboardInterrupt):
        load_grades(engine, interrupted(), load_id="grades-2026-09")
    assert session.scalar(select(func.count()).select_from(Grade).where(Grade.uscc.in_(codes))) == 120 - 3
    quarantined: list[pd.DataFrame] = []
    report = load_grades(engine, batches, load_id="grades-2026-09", quarantine=quarantined.append)
    assert report.resumed_from == 120 and report.read == 130 and report.stored == 130 and report.rejected == 0
    stored = session.scalars(select(Grade.uscc).where(Grade.uscc.in_(codes))).all()
    assert len(stored) == len(set(stored)) == 247  # every row once, the three rejected ones never
    first = load_grades(engine, [frame.iloc[:40]], load_id="grades-2026-09-again", quarantine=quarantined.append)
    assert first.rejected == 3 and set(first.reasons) == {"grade", "reasons", "uscc"}
    assert sorted(pd.concat(quarantined)["uscc"].str[:17]) == sorted(c[:17] for c in codes[7:10])
    # the current grades agree with the rule of the row-by-row path
    assert {c.uscc: c.score for c in session.scalars(select(CurrentGrade).where(CurrentGrade.uscc.in_(codes)))} == \
        {u: v[3] for u, v in _window_latest(session).items() if u in codes}
    again = load_grades(engine, batches, load_id="grades-2026-09")  # finished: nothing written twice
    assert again.stored == 0 and again.resumed_from == 250


def test_tiers_db_load_and_prune_grades_from_the_command_line(database_url, session, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from serving.cli.main import app as cli_app
    from serving.settings import get_settings

    monkeypatch.setenv("TIERS_DATABASE_URL", database_url)
    monkeypatch.setenv("TIERS_KEYS_DIR", str(tmp_path / "keys"))
    codes = _codes(30, start=60_000)
    pd.DataFrame({"uscc": codes, "name": "某企业", "industry": "F", "district_code": "320104",
                  "registered_on": "2016-04-01"}).to_parquet(tmp_path / "subjects.parquet")
    old, new = _grade_frame(codes, "2026-08-31", seed=2), _grade_frame(codes, "2026-09-30", seed=3)
    new.loc[0, "probability"] = 1.5
    old.to_parquet(tmp_path / "old.parquet")
    new.to_parquet(tmp_path / "new.parquet")

    def tiers(*args: str) -> tuple[int, str]:
        get_settings.cache_clear()
        result = CliRunner().invoke(cli_app, list(args))
        get_settings.cache_clear()
        return result.exit_code, result.stdout

    assert tiers("db", "load", "subjects", str(tmp_path / "subjects.parquet"))[0] == 0
    assert tiers("db", "load", "grades", str(tmp_path / "old.parquet"))[0] == 0
    code, out = tiers("db", "load", "grades", str(tmp_path / "new.parquet"), "--json",
                      "--quarantine", str(tmp_path / "q.csv"))
    assert code == 0 and json.loads(out)["stored"] == 29 and json.loads(out)["reasons"] == {"probability": 1}
    assert pd.read_csv(tmp_path / "q.csv")["reason"].str.startswith("probability").all()
    assert tiers("db", "load", "grades", str(tmp_path / "new.parquet"))[0] == 0  # finished: nothing to do
    assert session.scalar(select(func.count()).select_from(Grade).where(Grade.uscc.in_(codes))) == 59
    code, out = tiers("db", "prune-grades", "--keep", "1", "--json")
    assert code == 0 and json.loads(out)["dropped_as_of"][-1] == "2026-08-31"
    current = {c.uscc: c.as_of for c in session.scalars(select(CurrentGrade).where(CurrentGrade.uscc.in_(codes)))}
    assert set(current) == set(codes[1:]) and set(current.values()) == {dt.date(2026, 9, 30)}


def _plans_of(session, run) -> list[tuple[str, list[str]]]:
    """(statement, SQLite query plan lines) of every statement ``run`` executes."""
    from sqlalchemy import event

    seen: list[tuple[str, object]] = []
    connection = session.connection()

    def remember(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("SELECT"):
            seen.append((statement, parameters))

    event.listen(connection, "before_cursor_execute", remember)
    try:
        run()
    finally:
        event.remove(connection, "before_cursor_execute", remember)
    raw = connection.connection.driver_connection
    return [(s, [row[-1] for row in raw.execute(f"EXPLAIN QUERY PLAN {s}", p).fetchall()]) for s, p in seen]


def test_reads_and_list_pages_are_index_lookups_whatever_the_size(session, database_url):
    """No read or page (the first page's count apart) scans the grades or the current grades: their
    cost does not grow with the population (SQLite's plans; PostgreSQL's planner may choose
    otherwise on a tiny table)."""
    if not database_url.startswith("sqlite"):
        pytest.skip("SQLite's query plans")
    _city(session)
    codes = list(session.scalars(select(CurrentGrade.uscc).limit(20)))
    first = subject_page(session, ADMIN, ListFilter(), limit=5)
    reads = {
        # the statement latest_grade_values runs on the driver's cursor, here through SQLAlchemy
        "single": lambda: session.execute(grades_service._LATEST_VALUES, {"uscc": codes[0]}).all(),
        # likewise the batch's statement (codes padded to a power of two)
        "batch": lambda: session.execute(grades_service._latest_values_in(32),
                                         {f"u{i}": codes[min(i, len(codes) - 1)] for i in range(32)}).all(),
        "next page": lambda: subject_page(session, ADMIN, ListFilter(), after=first.next, limit=5),
        "district + grade": lambda: subject_page(session, ADMIN, ListFilter(district="320104", grade="B"),
                                                 after=subject_page(session, ADMIN, ListFilter(
                                                     district="320104", grade="B"), limit=2).next, limit=5),
        "industry": lambda: subject_page(session, ADMIN, ListFilter(industry="C"), after=first.next, limit=5),
        "search": lambda: subject_page(session, ADMIN, ListFilter(search="南京甲"), after=None, limit=5),
    }
    for name, run in reads.items():
        plans = _plans_of(session, run)
        assert any("grades" in line for _s, plan in plans for line in plan), (name, plans)  # it did look
        for statement, plan in plans:
            if "count(" in statement.lower():
                continue  # the total, counted on a list's first page only
            scans = [line for line in plan if line.startswith("SCAN") and ("grades" in line)]
            assert not scans, (name, statement, plan)


def test_the_subject_list_api_pages_by_cursor_with_filters_and_refuses_a_forged_cursor(client, auth, world):
    url, headers = "/api/v1/regulator/subjects", auth("reg_samr")
    seen, params = [], {"purpose": "日常监管 paging", "limit": 1}
    while True:
        r = client.get(url, params=params, headers=headers)
        assert r.status_code == 200, r.text
        body = r.json()
        seen += [item["uscc"] for item in body["items"]]
        if body["next"] is None:
            break
        params = {**params, "after": body["next"]}
    assert sorted(seen) == sorted([world.ent1, world.ent2, world.ent3]) and body["total"] == 3
    assert seen == [i["uscc"] for i in client.get(url, params={"purpose": "日常监管 paging"}, headers=headers)
                    .json()["items"]]  # the same order as one page
    district = client.get(url, params={"purpose": "日常监管 paging", "district": "320104"}, headers=headers).json()
    assert [i["uscc"] for i in district["items"]] == [world.ent2] and district["total"] == 1
    bad = client.get(url, params={"purpose": "日常监管 paging", "after": "bm90IGEgY3Vyc29y"}, headers=headers)
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "after"
    mixed = client.get(url, params={"purpose": "日常监管 paging", "offset": 1, "industry": "C"}, headers=headers)
    assert mixed.status_code == 422


def _statements(session, run) -> list[str]:
    return [statement for statement, _plan in _plans_of(session, run)]


def test_a_city_wide_readers_count_of_one_grade_reads_the_current_grades_index_alone(session, database_url):
    """The first page of a list filtered by grade counts on the current grades' index, never joined
    to the subjects (a look-up per graded subject: 1.1 s of CPU at 2 M subjects): a section's
    coverage and a search read the current grades' own copies (industry; name, migration 0021)."""
    if not database_url.startswith("sqlite"):
        pytest.skip("SQLite's query plans")
    from serving.services.subject_lists import count_subjects

    subjects = _city(session)
    graded = {c.uscc: c for c in session.scalars(select(CurrentGrade))}
    sector = Principal(username="sec", role="sector", section="C")
    for who, filters in [(ADMIN, ListFilter(grade="B")), (ADMIN, ListFilter(grade="A", district="320104")),
                         (ADMIN, ListFilter(grade="D", industry="F")), (sector, ListFilter(grade="B")),
                         (ADMIN, ListFilter(grade="C", search="南京乙"))]:
        expected = sum(1 for s in subjects if s["uscc"] in graded and graded[s["uscc"]].grade == filters.grade
                       and filters.district in (None, s["district_code"]) and filters.industry in (None, s["industry"])
                       and (who.role == "admin" or s["industry"] == who.section)
                       and (filters.search is None or s["name"].startswith(filters.search)))
        plans = _plans_of(session, lambda w=who, f=filters: count_subjects(session, w, f))
        assert count_subjects(session, who, filters) == expected
        joined = any("subjects" in line for _s, plan in plans for line in plan)
        assert not joined, (who, filters, plans)


def test_the_last_page_of_a_fully_graded_city_does_not_look_for_ungraded_subjects(session, database_url):
    """Every subject graded (a city after its monthly grading): the page after the last graded row
    does not scan the subjects for a missing grade (which reads the whole population to find none);
    with one subject ungraded it is listed last, once."""
    if not database_url.startswith("sqlite"):
        pytest.skip("SQLite's query plans")
    _city(session)
    everyone = sorted(session.scalars(select(Subject.uscc)))  # the city and the seeded subjects
    graded = set(session.scalars(select(CurrentGrade.uscc)))
    rest = [c for c in everyone if c not in graded]
    store_grades(session, [dict(uscc=c, as_of="2026-09-30", score=650.0, grade="B", probability=0.1,
                                model_version="general-v3", profile_hash="p2" + "0" * 62) for c in rest[1:]])

    def walk() -> list[str]:
        seen, page = [], subject_page(session, ADMIN, ListFilter(), limit=7)
        while True:
            seen += [s.uscc for s, _g in page.rows]
            if page.next is None:
                return seen
            page = subject_page(session, ADMIN, ListFilter(), after=page.next, limit=7)

    seen = walk()
    assert len(seen) == len(set(seen)) == len(everyone) and seen[-1] == rest[0]  # the ungraded one last
    store_grades(session, [dict(uscc=rest[0], as_of="2026-09-30", score=650.0, grade="B", probability=0.1,
                                model_version="general-v3", profile_hash="p2" + "0" * 62)])
    walk()  # the totals of this generation counted
    plans = _plans_of(session, walk)
    assert sorted(walk()) == everyone
    assert not [s for s, _p in plans if "NOT (EXISTS" in s.upper() or "NOT EXISTS" in s.upper()], plans
