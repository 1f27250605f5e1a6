"""Review 22's subject list, as properties on the small seeded city (``test_srv_city_scale._city``):
paging by key visits each covered subject exactly once, whatever the sort, filters and page size;
the download holds the list's total, each row logged once; a stale riskiest-first cursor is told."""

from __future__ import annotations

import csv
import io

import pytest
from sqlalchemy import func, select
from test_srv_city_scale import ADMIN, _city
from test_srv_plans_pages import _login as login_as

from serving.db.tables import CurrentGrade, QueryLogEntry, Subject
from serving.services.grades import store_grades
from serving.services.subject_lists import ListFilter, count_subjects, previous_cursor, subject_page

PURPOSE = "日常监管"
FILTERS = [ListFilter(), ListFilter(grade="B"), ListFilter(district="320104"),
           ListFilter(district="320104", grade="C"), ListFilter(industry="C"), ListFilter(search="南京甲"),
           ListFilter(search="南京乙", grade="D")]


@pytest.mark.parametrize(("order", "walk"), [("risk", None), ("risk", True), ("risk", False), ("uscc", None),
                                             ("name", None)])
def test_paging_visits_each_covered_subject_exactly_once_and_goes_back_where_it_came_from(session, order, walk,
                                                                                          monkeypatch):
    from serving.services import subject_lists

    if walk is not None:  # a search's matches always walked in rank order, or always by the key's range
        monkeypatch.setattr(subject_lists, "_walks", lambda *_: walk)
    _city(session)
    session.commit()
    for filters in FILTERS:
        for limit in (1, 7, 50):
            seen, afters, after = [], [None], None
            while True:
                page = subject_page(session, ADMIN, filters, after=after, limit=limit, order=order)
                assert not page.changed
                seen += [s.uscc for s, _g in page.rows]
                if after is not None:
                    assert previous_cursor(session, ADMIN, filters, after, limit=limit, order=order) == afters[-2]
                if page.next is None:
                    break
                after = page.next
                afters.append(after)
            total = count_subjects(session, ADMIN, filters)
            assert len(seen) == len(set(seen)) == total == page.total, (filters, limit)
            if order == "risk":
                ranks = [subject_lists._rank(subject_page(session, ADMIN, ListFilter(search=u), limit=1).rows[0])
                         for u in seen[:12]]
                assert ranks == sorted(ranks)


def test_a_stale_riskiest_first_cursor_says_the_list_changed(session):
    _city(session)
    session.commit()
    first = subject_page(session, ADMIN, ListFilter(), limit=5)
    uscc = first.rows[0][0].uscc
    store_grades(session, [dict(uscc=uscc, as_of="2026-10-31", score=800.0, grade="A", probability=0.1,
                                model_version="general-v3", profile_hash="p3" + "0" * 62)])
    session.commit()
    stale = subject_page(session, ADMIN, ListFilter(), after=first.next, limit=5)
    assert stale.changed and stale.rows == [] and stale.next is None
    by_key = subject_page(session, ADMIN, ListFilter(), limit=5, order="uscc")
    assert not subject_page(session, ADMIN, ListFilter(), after=by_key.next, limit=5, order="uscc").changed


@pytest.mark.parametrize("params", [{}, {"grade": "B"}, {"district": "320104", "sort": "name"}, {"search": "南京丙"}])
def test_the_download_holds_the_total_each_row_logged_once(client, session, params, monkeypatch):
    from serving.routes import _lists

    monkeypatch.setattr(_lists, "CSV_CHUNK", 7)  # several chunks on a small city
    _city(session)
    session.commit()
    login_as(client, "reg_samr")
    before = session.scalar(select(func.coalesce(func.max(QueryLogEntry.seq), 0)))
    r = client.get("/regulator/subjects.csv", params={"purpose": PURPOSE, **params})
    assert r.status_code == 200 and r.content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    filters = ListFilter(grade=params.get("grade"), district=params.get("district"), search=params.get("search"))
    codes = [row[0] for row in rows[1:]]
    assert len(codes) == len(set(codes)) == count_subjects(session, ADMIN, filters)
    session.expire_all()
    logged = session.scalars(select(QueryLogEntry.uscc).where(QueryLogEntry.seq > before)).all()
    assert sorted(logged) == sorted(codes)
    if "grade" in params:
        graded = dict(session.execute(select(CurrentGrade.uscc, CurrentGrade.grade)).all())
        assert {graded[c] for c in codes} == {params["grade"]}


@pytest.mark.parametrize(("typed", "looked_up"), [
    ("  91320102ab ", "91320102AB"), ("９１３２", "9132"), ("南京甲企业０１２", "南京甲企业012"),
    ("南京（集团）", "南京（集团）"), ("\u200b 南京", "南京"), ("\u200b ", None), (None, None)])
def test_the_list_search_is_normalised_once_where_queries_become_filters(typed, looked_up):
    from serving.routes._lists import SubjectListQuery

    assert SubjectListQuery(PURPOSE, search=typed).filters.search == looked_up


def test_a_uscc_prefix_search_finds_its_subjects_whatever_the_database_collation(session):
    """On PostgreSQL (``TEST_DATABASE_URL``) with an ICU or libc collation, ``~`` sorts before
    digits: the search range compares in byte order (``COLLATE "C"``) so it still finds them."""
    from sqlalchemy.dialects import postgresql

    from serving.services.subject_lists import _subject_filters

    subjects = _city(session)
    session.commit()
    for code in (subjects[5]["uscc"], subjects[5]["uscc"][:8], subjects[5]["uscc"][:17]):
        wanted = sorted(u for u in session.scalars(select(Subject.uscc)) if u.startswith(code))
        for order in ("risk", "uscc", "name"):
            page = subject_page(session, ADMIN, ListFilter(search=code), limit=200, order=order)
            assert sorted(s.uscc for s, _g in page.rows) == wanted and page.total == len(wanted), (code, order)
    compiled = str(_subject_filters(ListFilter(search="9132"))[0].compile(dialect=postgresql.dialect()))
    assert 'COLLATE "C"' in compiled


def test_a_download_whose_grades_change_while_it_is_written_says_so_at_its_end(client, session, monkeypatch):
    from serving.routes import _lists

    monkeypatch.setattr(_lists, "CSV_CHUNK", 7)
    _city(session)
    session.commit()
    login_as(client, "reg_samr")
    real, calls = _lists.subject_page, []

    def page_then_a_load(s, *args, **kwargs):
        page = real(s, *args, **kwargs)
        if not calls:  # a grade load commits after the first chunk was read
            store_grades(session, [dict(uscc=page.rows[0][0].uscc, as_of="2026-10-31", score=800.0, grade="A",
                                        probability=0.1, model_version="general-v3", profile_hash="p3" + "0" * 62)])
            session.commit()
        calls.append(page)
        return page

    monkeypatch.setattr(_lists, "subject_page", page_then_a_load)
    rows = list(csv.reader(io.StringIO(client.get("/regulator/subjects.csv", params={"purpose": PURPOSE})
                                       .content.decode("utf-8-sig"))))
    codes = [row[0] for row in rows[1:-1]]
    assert rows[-1][0] == _lists.CSV_CHANGED and len(codes) == len(set(codes)) == 7
