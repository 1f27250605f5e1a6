"""Review 22 (outside review, a regulator and an analyst of a big city): findings on the small seeded
city of ``test_srv_city_scale._city`` (60 subjects), each a failing test marked xfail until fixed.
The size-only findings (slow at 300 k subjects only) are in the review's report, not here."""

from __future__ import annotations

import csv
import io
import re

import pytest
from sqlalchemy import func, select
from test_srv_city_scale import ADMIN, _city
from test_srv_plans_pages import _login as login_as

from serving.db.tables import CurrentGrade, Subject
from serving.services.grades import grade_shares, store_grades
from serving.services.subject_lists import ListFilter, count_subjects, previous_cursor, subject_page

PURPOSE = "日常监管"


def _next(html: str) -> str | None:
    found = re.search(r'<a class="next"[^>]*href="([^"]+)"', html)
    return found.group(1).replace("&amp;", "&") if found else None


def _shown(html: str) -> list[str]:
    return re.findall(r'href="/credit/([0-9A-Z]{18})\?', html)


def _total(html: str) -> int:
    """The subjects list's "共 N 条" (not the queues' below it)."""
    return int(re.search(r"共 (\d+) 条", html.split('id="subjects-list"')[1]).group(1))


def _grade(uscc: str, letter: str, score: float) -> dict:
    return dict(uscc=uscc, as_of="2026-10-31", score=score, grade=letter, probability=0.1,
                model_version="general-v3", profile_hash="p3" + "0" * 62)


def test_regulator_downloads_the_filtered_list_as_chinese_csv_with_bom(client, session):
    _city(session)
    session.commit()
    login_as(client, "reg_samr")
    page = client.get("/regulator", params={"purpose": PURPOSE, "grade": "B", "size": "20"}).text
    link = re.search(r'<a[^>]*href="([^"]*(?:\.csv|format=csv|download)[^"]*)"', page)
    assert link, "no download link on the regulator's list"
    url = link.group(1).replace("&amp;", "&")
    assert "grade=B" in url and "after=" not in url  # the whole filtered list, not one page
    r = client.get(url)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert r.content.startswith(b"\xef\xbb\xbf")  # Excel opens UTF-8 only with the BOM
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert "统一社会信用代码" in rows[0] and "信用等级" in rows[0]
    assert len(rows) - 1 == count_subjects(session, ADMIN, ListFilter(grade="B"))


def test_total_on_a_later_page_follows_a_grade_load(client, session):
    _city(session)
    session.commit()
    login_as(client, "reg_samr")
    counts = dict(session.execute(select(CurrentGrade.grade, func.count()).group_by(CurrentGrade.grade)).all())
    letter = max(counts, key=counts.get)  # a grade with more than one page of 10
    assert counts[letter] > 10
    first = client.get("/regulator", params={"purpose": PURPOSE, "grade": letter, "sort": "uscc", "size": "10"}).text
    following = _next(first)
    assert following
    # a grade load between the two pages: a subject of another grade gets this one
    moved = session.scalars(select(CurrentGrade.uscc).where(CurrentGrade.grade != letter)).first()
    store_grades(session, [_grade(moved, letter, 610.0)])
    session.commit()
    expected = count_subjects(session, ADMIN, ListFilter(grade=letter))
    assert expected == _total(first) + 1
    assert _total(client.get(following).text) == expected


def test_risk_sorted_pages_never_repeat_a_subject_when_grades_change_while_paging(client, session):
    _city(session)
    session.commit()
    login_as(client, "reg_samr")
    html = client.get("/regulator", params={"purpose": PURPOSE, "size": "10"}).text
    seen = _shown(html)
    grades_now = dict(session.execute(select(CurrentGrade.uscc, CurrentGrade.grade)).all())
    # the riskiest subject on page 1 is regraded A (a new month's load): it sorts after the cursor now
    riskiest = next(u for u in seen if grades_now.get(u) == "D")
    store_grades(session, [_grade(riskiest, "A", 800.0)])
    session.commit()
    while following := _next(html):
        html = client.get(following).text
        if "列表已更新" in html or "已变化" in html:  # told the list changed: acceptable
            return
        seen += _shown(html)
    assert len(seen) == len(set(seen)), [u for u in set(seen) if seen.count(u) > 1]


def test_grade_shares_count_each_subject_once_per_as_of(session):
    subjects = _city(session)
    session.commit()
    codes = [s["uscc"] for s in subjects[:10]]
    for model in ("general-v3", "general-v4"):  # a challenger graded the same subjects on the same date
        store_grades(session, [dict(_grade(c, "B", 600.0), model_version=model) for c in codes])
    session.commit()
    per_date = sum(n for as_of, _g, n in grade_shares(session) if str(as_of) == "2026-10-31")
    assert per_date <= session.scalar(select(func.count()).select_from(Subject))
    assert per_date == len(codes)


def test_sorted_and_searched_pages_with_filters_read_in_key_order_without_sorting_the_population(session,
                                                                                                 database_url):
    from test_srv_city_scale import _plans_of

    if not database_url.startswith("sqlite"):
        pytest.skip("SQLite's query plans")
    _city(session)
    session.commit()
    pages = {
        "grade D by name": (ListFilter(grade="D"), "name"),
        "grade B by name": (ListFilter(grade="B"), "name"),
        "district by USCC": (ListFilter(district="320104"), "uscc"),
        "district + grade by name": (ListFilter(district="320104", grade="B"), "name"),
        "name prefix + grade": (ListFilter(search="南京甲", grade="C"), "risk"),
    }
    sorted_whole = {}
    for name, (filters, order) in pages.items():
        first = subject_page(session, ADMIN, filters, limit=2, order=order)
        plans = _plans_of(session, lambda f=filters, o=order, a=first.next: subject_page(
            session, ADMIN, f, after=a, limit=2, order=o))
        second = subject_page(session, ADMIN, filters, after=first.next, limit=2, order=order)
        # the page's "previous" link (3.5 s for grade B by name at 300 k subjects)
        plans += _plans_of(session, lambda f=filters, o=order, a=second.next: previous_cursor(
            session, ADMIN, f, a, limit=2, order=o))
        # a search riskiest first may sort one letter's matches read by the key's range (fewer
        # rows than its rank index would read: subject_lists._walks), never a letter or the population
        sorts = [statement[:60] for statement, plan in plans if "count(" not in statement.lower()
                 and any("TEMP B-TREE FOR ORDER BY" in line for line in plan)
                 and not any("INDEX ix_current_grades_name_search (grade=? AND name>? AND name<?)" in line
                             for line in plan)]
        if sorts:
            sorted_whole[name] = sorts
    assert not sorted_whole, sorted_whole


def test_offset_refusal_says_it_in_chinese(client, auth, session):
    _city(session)
    session.commit()
    r = client.get("/api/v1/regulator/subjects", headers=auth("reg_samr"),
                   params={"purpose": PURPOSE, "offset": 1, "industry": "C"})
    assert r.status_code == 422
    message = r.json()["error"]["message_zh"]
    assert not re.search(r"[A-Za-z]+ [A-Za-z]+ [A-Za-z]+", message), message


_RISK = {"D": 0, "C": 1, "B": 2, "A": 3, "—": 4}


def test_a_name_search_sorted_by_risk_lists_the_riskiest_first(client, session):
    _city(session)
    session.commit()
    login_as(client, "reg_samr")
    html = client.get("/regulator", params={"purpose": PURPOSE, "search": "南京甲", "sort": "risk", "size": "50"}).text
    assert re.search(r'<option value="risk" selected>', html)
    shown = re.findall(r'<td data-label="信用等级">([A-D—])</td>', html)
    assert len(set(shown)) > 1
    assert [_RISK[g] for g in shown] == sorted(_RISK[g] for g in shown), shown


def test_search_finds_a_subject_typed_in_lower_case_or_full_width(client, session):
    subjects = _city(session)
    session.commit()
    login_as(client, "reg_samr")
    lettered = next(s for s in subjects if any(ch.isalpha() for ch in s["uscc"]))
    full_width = subjects[12]["name"].translate({ord(d): ord(d) + 0xFEE0 for d in "0123456789"})  # 南京甲企业０１２
    for typed, wanted in ((lettered["uscc"].lower(), lettered["uscc"]), (full_width, subjects[12]["uscc"])):
        html = client.get("/regulator", params={"purpose": PURPOSE, "search": typed}).text
        assert wanted in _shown(html), typed


def _visible(html: str) -> str:
    body = re.sub(r"<script.*?</script>|<style.*?</style>", " ", html, flags=re.S)
    return " ".join(re.sub(r"<[^>]+>", " ", body).split())


def test_a_bad_list_cursor_is_explained_in_chinese_only(client, session):
    _city(session)
    session.commit()
    login_as(client, "reg_samr")
    r = client.get("/regulator", params={"purpose": PURPOSE, "after": "garbage"})
    text = _visible(r.text)
    assert "游标" in text or "第一页" in text
    assert not re.search(r"[a-z]+ [a-z]+ [a-z]+ [a-z]+", text), text[text.find("出错"):][:200]


def test_the_position_shown_never_exceeds_the_total(client, session):
    _city(session)
    session.commit()
    login_as(client, "reg_samr")
    first = client.get("/regulator", params={"purpose": PURPOSE, "size": "10", "sort": "uscc"}).text
    following = _next(first)
    assert following and "n=10" in following
    html = client.get(following.replace("n=10", "n=5000")).text
    start = int(re.search(r"第 (\d+)–\d+ 条", html).group(1))
    assert start <= _total(html)


def test_the_warnings_download_holds_every_warning_the_page_counts(client, session):
    import datetime as dt

    from serving.db.tables import RiskWarning

    subjects = _city(session)
    causes = ("serious_record", "list_entry", "grade_drop", "probability_rise", "commitment_broken")
    session.add_all([RiskWarning(uscc=s["uscc"], cause=causes[k % 5], department=None, status="open",
                                 message="信用等级下降", raised_on=dt.date(2026, 10, 31),
                                 open_key=f"{s['uscc']}:{causes[k % 5]}:{k}") for s in subjects for k in range(9)])
    session.commit()
    login_as(client, "reg_samr")
    page = client.get("/regulator/warnings", params={"purpose": PURPOSE}).text
    counted = int(re.search(r"待处理预警：(\d+)", page).group(1))
    assert counted == 9 * len(subjects)
    r = client.get("/regulator/warnings.csv", params={"purpose": PURPOSE})
    assert r.status_code == 200 and r.content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert len(rows) - 1 == counted
