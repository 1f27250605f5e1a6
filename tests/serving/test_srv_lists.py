"""Lists that scale on the pages (issue 17 item 3, issue 22 item 2): the first page's total is kept
per coverage and filters until the population changes; the pages page, filter, search and keep
their filters in every link; the enterprise page separates the records after the evaluation date."""

from __future__ import annotations

import re

from sqlalchemy import event, select
from srv_fixtures import add_subjects
from test_srv_city_scale import ADMIN, _city
from test_srv_plans_flow import _create, _log_count, city, settings  # noqa: F401  (fixtures)
from test_srv_plans_pages import _csrf
from test_srv_plans_pages import _login as login_as

from serving.db.tables import CurrentGrade
from serving.security import Principal
from serving.services.grades import store_grades
from serving.services.subject_lists import ListFilter, count_subjects, subject_page
from serving.services.subjects import store_records


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
    # a reader who covers every subject reads the tallies (list_counts.tallied_total): nothing counted
    assert _counts_run(session, lambda: subject_page(session, ADMIN, ListFilter(grade="A"), limit=5)) == 0
    searched = ListFilter(grade="A", search="南京甲")  # a search is counted, once, then kept
    assert _counts_run(session, lambda: subject_page(session, ADMIN, searched, limit=5)) == 1
    assert _counts_run(session, lambda: subject_page(session, ADMIN, searched, limit=5)) == 0
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
    add_subjects(session, [dict(uscc=c, name=f"南京新设企业{i}", industry="C", district_code="320102",
                                registered_on="2026-01-01") for i, c in enumerate(codes)])
    return len(codes)


def _rows(html: str, css_class: str) -> list[str]:
    return re.findall(rf'<tr class="{css_class}"[^>]*>(.*?)</tr>', html, re.S)


def _href(html: str, css_class: str) -> str | None:
    found = re.search(rf'<a class="{css_class}"[^>]*href="([^"]+)"', html)
    return found.group(1).replace("&amp;", "&") if found else None


def test_regulator_pages_through_its_subjects_by_key_with_filters_kept(client, session):
    """Page size, "共 N" equal to the filtered population, the next link keeps purpose, filters, sort and
    size, every covered subject once; a search by USCC or name prefix; a bad filter is refused."""
    subjects = _city(session)
    session.commit()
    login_as(client, "reg_samr")  # market supervision: covers the whole city
    in_district = {s["uscc"] for s in subjects if s["district_code"] == "320104"} | {
        u for u in (world_usccs(session)) if u[2:8] == "320104"}
    url = "/regulator?purpose=日常监管&district=320104&size=20&sort=uscc"
    seen: list[str] = []
    html = client.get(url).text
    assert f"共 {len(in_district)} 条" in html and "第 1–20 条" in html
    while True:
        seen += re.findall(r'href="/credit/([0-9A-Z]{18})\?', html)
        following = _href(html, "next")
        if not following:
            break
        assert all(part in following for part in ("district=320104", "size=20", "sort=uscc", "purpose="))
        html = client.get(following).text
        assert f"共 {len(in_district)} 条" in html
    assert seen == sorted(in_district) and len(seen) == len(set(seen))
    assert "第一页" in html and _href(html, "first").startswith("/regulator?") and "after=" not in _href(html, "first")
    pages_back = []  # "previous" from the last page retraces the pages to the first
    while previous := _href(html, "prev"):
        assert all(part in previous for part in ("district=320104", "size=20", "sort=uscc", "purpose="))
        html = client.get(previous).text
        pages_back.append(re.findall(r'href="/credit/([0-9A-Z]{18})\?', html))
    last_page = len(seen) % 20 or 20
    assert pages_back and [u for page in reversed(pages_back) for u in page] == seen[:-last_page]
    assert "第 1–20 条" in html and _href(html, "first") is None
    html = client.get(url).text  # back at the first page; the district filter is a select of names
    assert re.search(r'<select id="f-district" name="district">.*<option value="320104" selected>秦淮区</option>',
                     html, re.S)

    by_name = client.get("/regulator", params={"purpose": "日常监管", "search": "南京乙"}).text
    names = re.findall(r'<td data-label="名称">([^<]*)</td>', by_name)
    assert names and all(n.startswith("南京乙") for n in names)
    code = subjects[5]["uscc"]
    by_code = client.get("/regulator", params={"purpose": "日常监管", "search": code[:12]}).text
    assert code in by_code and "共 " in by_code

    graded_d = client.get("/regulator", params={"purpose": "日常监管", "grade": "D", "industry": "C"}).text
    grades_shown = re.findall(r'<td data-label="信用等级">([A-D—])</td>', graded_d)
    assert grades_shown and set(grades_shown) == {"D"}
    assert client.get("/regulator", params={"purpose": "日常监管", "grade": "E"}).status_code == 422


def world_usccs(session) -> list[str]:
    from serving.db.tables import Subject

    return list(session.scalars(select(Subject.uscc)))


def test_queues_page_filter_by_status_and_search(client, auth, world):
    """The objection queue: pending by default, decided on request, searched by USCC prefix, paged."""
    for record, reason in (("R1", "处罚决定已被撤销"), ("R2", "记录主体有误")):
        r = client.post(f"/api/v1/subjects/{world.ent1}/objections", headers=auth("ent1"),
                        json={"record_id": record, "reason": reason})
        assert r.status_code in (201, 404, 409), r.text
    login_as(client, "reg_samr")
    html = client.get("/regulator").text
    csrf = _csrf(html)
    pending = _rows(html, "objection")
    assert pending and f"共 {len(pending)} 条" in html.split('id="objections"')[1]
    oid = re.search(r'<tr class="objection" data-id="(\d+)"', html).group(1)
    decided_now = client.post(f"/regulator/objections/{oid}/decision", follow_redirects=False, data={
        "decision": "rejected", "reason": "经核实维持", "csrf_token": csrf,
        "back": "purpose=日常监管&q_sort=newest&o_size=20&after=x"})
    # back to the queue as it was filtered; never a re-read of the subject list
    assert decided_now.headers["location"] == "/regulator?q_sort=newest&o_size=20#objections"
    after = client.get("/regulator").text
    assert f'data-id="{oid}"' not in after
    decided = client.get("/regulator", params={"q_status": "decided"}).text
    assert f'data-id="{oid}"' in decided and "经核实维持" in decided
    assert _rows(client.get("/regulator", params={"q_status": "all", "q_search": "0000"}).text, "objection") == []
    one = client.get("/regulator", params={"q_status": "all", "o_size": "20", "q_search": world.ent1[:8]}).text
    assert f'data-id="{oid}"' in one


def _record(i: int, uscc: str, day: str, kind: str = "admin_check") -> dict:
    return dict(record_id=f"RL{i:03d}", uscc=uscc, kind=kind, decision_date=day, department="samr",
                document_no=f"宁市监查〔2026〕{i}号")


def test_enterprise_page_separates_records_after_the_evaluation_date_and_pages_them(client, session, world):
    """Grade as of 2026-09-30: records decided up to that day are listed as in force on it; later ones
    apart, each marked 评价基准日之后; both paged (20 a page) and filtered by kind with the filters kept."""
    early = [_record(i, world.ent1, f"2026-0{1 + i % 8}-{10 + i % 15}") for i in range(30)]
    late = [_record(100 + i, world.ent1, f"2026-1{i % 2}-0{1 + i % 9}", kind="complaint") for i in range(5)]
    store_records(session, early + late)
    login_as(client, "ent1")
    html = client.get(f"/credit/{world.ent1}", params={"r_size": "20"}).text
    in_force, after = html.split('id="records-after-section"')
    assert "评价基准日 2026-09-30 在效的记录" in in_force and "共 33 条" in in_force  # 30 + R1, R2, R3
    shown = re.findall(r'<tr data-record="([^"]+)"', in_force)
    assert len(shown) == 20 and not set(shown) & {r["record_id"] for r in late}
    late_shown = re.findall(r'<tr data-record="([^"]+)" class="after-as-of"', after)
    assert sorted(late_shown) == sorted(r["record_id"] for r in late)
    assert after.count("评价基准日之后") >= len(late)

    second = _href(in_force, "next")
    assert second and "r_size=20" in second and "r_page=2" in second
    rest = client.get(second).text.split('id="records-after-section"')[0]
    assert len(re.findall(r'<tr data-record="', rest)) == 13 and "第 21–33 条" in rest

    penalties = client.get(f"/credit/{world.ent1}", params={"r_kind": "admin_penalty"}).text
    assert set(re.findall(r'<tr data-record="([^"]+)"', penalties)) == {"R1", "R2"}
    assert "records-after" not in penalties  # no later penalty: no second table


def test_plan_page_pages_and_filters_its_visits_and_logs_only_the_rows_shown(client, auth, city, session):  # noqa: F811
    """The visit list: 共 N equal to the plan's visits, pages of 10 covering each visit once in visit
    order with the filters kept; a grade filter and a search; each page logs only the subjects it
    shows; the results forms are those of the visits shown."""
    _city(session, n=120)  # graded as of the plan's date: a pool large enough to page
    session.commit()
    plan = _create(client, auth, items=("SAMR-03", "SAMR-02"))
    total = len(client.get(f"/api/v1/plans/{plan['id']}", headers=auth("reg_samr")).json()["visits"])
    assert total > 10
    login_as(client, "reg_samr")
    before = _log_count(session, "reg_samr")
    url = f"/regulator/plans/{plan['id']}?v_size=10&purpose=日常检查"
    seen: list[str] = []
    while url:
        html = client.get(url).text
        assert f"共 {total} 条" in html
        shown = re.findall(r'<tr class="visit" data-uscc="(\w+)"', html)
        assert 0 < len(shown) <= 10
        assert set(re.findall(r'class="result-form" data-uscc="(\w+)"', html)) <= set(shown)
        seen += shown
        url = _href(html, "next")
        assert url is None or ("v_size=10" in url and "purpose=" in url)
    assert len(seen) == len(set(seen)) == total
    assert _log_count(session, "reg_samr") - before == total  # each visit logged once, by the page showing it

    d_only = client.get(f"/regulator/plans/{plan['id']}", params={"v_grade": "D", "v_size": "200"}).text
    grades = re.findall(r'<td data-label="信用等级">([A-D])</td>', d_only)
    assert set(grades) <= {"D"}
    one = client.get(f"/regulator/plans/{plan['id']}", params={"v_search": seen[3][:18]}).text
    assert re.findall(r'<tr class="visit" data-uscc="(\w+)"', one) == [seen[3]] and "共 1 条" in one


def test_going_back_a_page_by_key_opens_the_page_before(session):
    """Every order and filter: from each page, ``previous_cursor`` gives the ``after`` the page
    before was opened with (None for the first), so "previous" retraces "next" exactly."""
    from serving.services.subject_lists import previous_cursor

    _city(session)
    session.commit()
    for filters, order, limit in [(ListFilter(), "risk", 7), (ListFilter(grade="C"), "risk", 3),
                                  (ListFilter(district="320104", industry="C"), "risk", 2),
                                  (ListFilter(), "uscc", 9), (ListFilter(), "name", 5),
                                  (ListFilter(search="南京甲"), "risk", 4)]:
        afters: list[str | None] = [None]
        while True:
            page = subject_page(session, ADMIN, filters, after=afters[-1], limit=limit, order=order)
            if page.next is None:
                break
            afters.append(page.next)
        assert len(afters) > 2, (filters, order)
        for k in range(1, len(afters)):
            back = previous_cursor(session, ADMIN, filters, afters[k], limit=limit, order=order)
            assert back == afters[k - 1], (filters, order, k)


def test_the_rows_numbered_on_a_key_page_stay_within_the_list_whatever_n_the_link_says():
    """Review 22: ``n`` (rows before a key page) comes from the URL. The links' own ``n`` is kept as
    it is; any other is moved so that the rows shown are numbered within 1..total (pure, fast)."""
    import random

    from serving.routes._page_lists import _rows_before

    rng = random.Random(22)  # noqa: S311 - a seeded, reproducible sample, not a secret
    for total in (1, 9, 10, 11, 60, 61, 205):
        for size in (10, 20, 50):
            for before in range(size, total, size):  # the pages after the first, as the links number them
                shown = min(size, total - before)
                more = before + shown < total
                for after_first in (before == size, None):
                    kept = _rows_before(before, size=size, shown=shown, total=total, more=more,
                                        after_first=after_first)
                    assert kept == before, (total, size, before, after_first)
                    for claimed in [1, before - 1, before + 1, 0, total, 5000, *rng.sample(range(1000, 10**7), 5)]:
                        moved = _rows_before(max(claimed, 0), size=size, shown=shown, total=total, more=more,
                                             after_first=after_first)
                        assert moved >= 1 and moved + shown <= total - more, (total, size, before, claimed, moved)
                        if (claimed in (0, total) or claimed >= 1000) and (not more or after_first):
                            # beyond the bounds on the last page or the second: the exact position
                            assert moved == before, (total, size, before, claimed, moved)
