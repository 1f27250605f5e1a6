"""Review 22: the warnings list (预警) paged by key through every warning once, its count, and its CSV:
the whole filtered list, streamed in bounded memory, each subject logged as read before its rows
are sent (``serving.services.warning_lists``, ``serving.routes.warnings``)."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import re
import tracemalloc

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, func, select
from srv_fixtures import keyed_copy, principal
from test_srv_city_scale import ADMIN, _city
from test_srv_plans_pages import _login as login_as

from serving.app import create_app
from serving.db.driver import insert_many
from serving.db.session import dispose_engine, iter_session
from serving.db.tables import QueryLogEntry, RiskWarning
from serving.deps import ReadLog
from serving.security import Principal
from serving.services import warnings
from serving.services.list_counts import forget_counts
from serving.services.warning_lists import (
    WarningFilter,
    all_warnings,
    count_warnings,
    previous_warning_cursor,
    warning_page,
)

pytestmark = pytest.mark.xdist_group("warning_lists")

CAUSES = ("serious_record", "list_entry", "grade_drop", "probability_rise", "commitment_broken")
STATUSES = ("open", "open", "acknowledged", "closed")
T0 = dt.datetime(2026, 10, 31, 8, 0, tzinfo=dt.UTC)


def _warning_rows(usccs: list[str], per_subject: int, tag: str) -> list[dict]:
    """``per_subject`` warnings of each subject, of every status and cause; many share a time (a
    grading raises thousands at once), so the key's ``id`` decides their order."""
    return [dict(uscc=u, cause=CAUSES[k % 5], department=None, status=STATUSES[(i + k) % 4], message="信用等级下降",
                 record_ids=[], evidence={}, raised_on=dt.date(2026, 10, 31),
                 raised_at=T0 + dt.timedelta(minutes=(i * per_subject + k) % 7), updated_at=T0,
                 open_key=None if STATUSES[(i + k) % 4] == "closed" else f"{u}:{tag}:{k}")
            for i, u in enumerate(usccs) for k in range(per_subject)]


@pytest.fixture(scope="module")
def _mod(_template_db, tmp_path_factory):
    _dir, url, settings = keyed_copy(_template_db, tmp_path_factory, "warning_lists")
    session = next(iter_session(url))
    subjects = _city(session)
    session.execute(delete(RiskWarning))
    insert_many(session.connection(), RiskWarning.__table__, _warning_rows([s["uscc"] for s in subjects], 9, "a"))
    session.commit()
    session.close()
    yield create_app(settings), settings
    dispose_engine(url)


@pytest.fixture(scope="module")
def client(_mod):
    return TestClient(_mod[0])


@pytest.fixture
def session(_mod):
    s = next(iter_session(_mod[1].database_url))
    yield s
    s.close()


@pytest.fixture(autouse=True)
def _log_keys():  # the module's keys are registered once, above
    return None


def _expected(session, f: WarningFilter) -> list[int]:
    stmt = select(RiskWarning.id).where(RiskWarning.status.in_(f.statuses))
    if f.cause:
        stmt = stmt.where(RiskWarning.cause == f.cause)
    return list(session.scalars(stmt.order_by(RiskWarning.raised_at.desc(), RiskWarning.id.desc())))


@pytest.mark.parametrize("status", ["active", "open", "acknowledged", "closed", None])
@pytest.mark.parametrize("cause", [None, "grade_drop"])
def test_key_pages_visit_every_warning_once_newest_first_and_go_back(session, status, cause):
    f = WarningFilter(status, cause)
    wanted = _expected(session, f)
    for limit in (1, 7, 50):
        seen, cursors, page = [], [None], warning_page(session, ADMIN, f, limit=limit)
        total = page.total
        while True:
            assert len(page.rows) <= limit and page.total == total  # carried, not recounted
            seen += [w.id for w, _name in page.rows]
            if page.next is None:
                break
            back = previous_warning_cursor(session, ADMIN, f, page.next, limit=limit)
            assert back == cursors[-1]  # "previous" of the next page opens this one
            cursors.append(page.next)
            page = warning_page(session, ADMIN, f, after=page.next, limit=limit)
        assert seen == wanted and total == len(wanted) == count_warnings(session, ADMIN, f)


def test_a_department_pages_only_what_it_covers(session):
    f = WarningFilter(None)
    page = warning_page(session, principal("reg_tax"), f, limit=500)  # covers the subjects its records name
    assert page.total == len(page.rows) == count_warnings(session, principal("reg_tax"), f) < len(_expected(session, f))


def test_pages_are_index_range_scans(session):
    """Each status's page reads ``ix_risk_warnings_status_*`` from the cursor on, with no sort: the
    rest of the cursor's time by ``id``, then the times before it (a row value would be a range on
    ``raised_at`` only, every warning of a grading's one time read for a page deep in it)."""
    from sqlalchemy.dialects import sqlite

    first = warning_page(session, ADMIN, WarningFilter("open"), limit=5)
    for cause in (None, "grade_drop"):
        captured = []
        from sqlalchemy import event

        def grab(conn, cursor, statement, parameters, context, executemany, _c=captured):
            if "FROM risk_warnings" in statement and "count(" not in statement:
                _c.append((statement, parameters))

        engine = session.get_bind()
        event.listen(engine, "before_cursor_execute", grab)
        try:
            warning_page(session, ADMIN, WarningFilter("active", cause), after=first.next, limit=5)
        finally:
            event.remove(engine, "before_cursor_execute", grab)
        assert len(captured) >= 2 and engine.dialect.name == sqlite.dialect.name
        for statement, parameters in captured:
            plan = " ".join(r[-1] for r in session.connection().exec_driver_sql(
                "EXPLAIN QUERY PLAN " + statement, parameters)).replace(" ", "")
            assert "USINGINDEXix_risk_warnings_status_" in plan and "TEMPB-TREE" not in plan, plan
            # the rest of the cursor's time, then the times after it: each a range of the index
            assert "raised_at=?ANDid<?)" in plan or "raised_at<?)" in plan, plan


def _csv_rows(content: bytes) -> list[list[str]]:
    assert content.startswith(b"\xef\xbb\xbf")
    return list(csv.reader(io.StringIO(content.decode("utf-8-sig"))))


def test_the_page_pages_by_key_and_its_csv_holds_the_whole_count(client, session):
    login_as(client, "reg_samr")
    purpose = "预警分页核对"
    first = client.get("/regulator/warnings", params={"purpose": purpose, "status": "open", "size": "20"}).text
    total = int(re.search(r"共 (\d+) 条", first).group(1))
    assert total == len(_expected(session, WarningFilter("open")))
    ids, html = [], first
    while True:
        ids += [int(i) for i in re.findall(r'<tr class="warning" data-id="(\d+)"', html)]
        found = re.search(r'<a class="next"[^>]*href="([^"]+)"', html)
        if not found:
            break
        html = client.get(found.group(1).replace("&amp;", "&")).text
    assert ids == _expected(session, WarningFilter("open"))
    r = client.get("/regulator/warnings.csv", params={"purpose": purpose, "status": "open"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = _csv_rows(r.content)
    assert rows[0][:3] == ["预警编号", "统一社会信用代码", "主体名称"]
    assert [int(row[0]) for row in rows[1:]] == ids


def test_streamed_csv_is_the_same_bytes_as_the_whole_table(session):
    rows = warning_page(session, ADMIN, WarningFilter(None), limit=40).rows
    odd = RiskWarning(id=1, uscc="=cmd", cause="grade_drop", message='-2+3,"引号"\r\n换行', record_ids=["@x", "r2"],
                      department="samr", status="closed", raised_on=dt.date(2026, 1, 2), acknowledged_by="＝a",
                      closed_by=None, close_note="\t说明")
    rows = [*rows, (odd, "+name")]
    assert b"".join(warnings.warnings_csv_chunks([rows[:7], [], rows[7:]])) == warnings.warnings_csv(rows)


def test_a_download_logs_each_subject_before_its_rows_are_sent_and_a_cut_one_too(client, session, monkeypatch):
    from serving.routes import warnings as route

    def logged(purpose: str) -> set[str]:
        return set(session.scalars(select(QueryLogEntry.uscc).where(QueryLogEntry.purpose == purpose)))

    login_as(client, "reg_samr")
    r = client.get("/regulator/warnings.csv", params={"purpose": "预警导出留痕", "status": "active"})
    rows = _csv_rows(r.content)[1:]
    assert len(rows) == count_warnings(session, ADMIN, WarningFilter("active"))
    assert logged("预警导出留痕") == {row[1] for row in rows}

    # a client that goes away after two pieces: what it was sent was logged first
    monkeypatch.setattr(route, "CSV_CHUNK", 25)
    reader = principal("reg_samr")
    answer = route._streamed_csv(session, reader, ReadLog(session, "GET /regulator/warnings.csv"), "预警中断",
                                 WarningFilter("active"))

    async def two_pieces() -> bytes:
        got = []
        async for piece in answer.body_iterator:
            got.append(piece)
            if len(got) == 2:
                break
        await answer.body_iterator.aclose()
        return b"".join(got)

    sent = {row[1] for row in _csv_rows(asyncio.run(two_pieces()))[1:]}
    assert sent == logged("预警中断")  # the pieces sent, and nothing after them
    assert len(_csv_rows(asyncio.run(two_pieces()) or b"\xef\xbb\xbfx")) == 1  # (the stream is closed)


@pytest.mark.slow
def test_the_csv_of_20000_warnings_streams_in_bounded_memory(session):
    usccs = [u for u, in session.execute(select(RiskWarning.uscc).distinct())]
    insert_many(session.connection(), RiskWarning.__table__,
                [r | {"status": "open", "open_key": r["open_key"] or f"{r['uscc']}:m:{k}"}
                 for k, r in enumerate(_warning_rows(usccs, 20_000 // len(usccs) + 1, "m"))])
    forget_counts(session)
    session.commit()
    try:
        f = WarningFilter("open")
        assert count_warnings(session, ADMIN, f) >= 20_000
        # one piece first: what a first export loads once (label tables, statements' caches) is not
        # the list's memory (run alone, without it, the peak was 0.65 MB against a 0.55 MB bound)
        first = warnings.warnings_csv_chunks(all_warnings(session, ADMIN, f, chunk=100))
        next(iter(first))
        first.close()
        tracemalloc.start()
        size = 0
        for piece in warnings.warnings_csv_chunks(all_warnings(session, ADMIN, f, chunk=100)):
            size += len(piece)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        # a chunk of rows (≈ 1.5 kB each as read) and its piece at a time: the list's length never in memory
        assert size > 2_000_000 and peak < size / 4, (size, peak)
    finally:
        session.execute(delete(RiskWarning).where(RiskWarning.open_key.like("%:m:%")))
        forget_counts(session)
        session.commit()
        assert session.scalar(select(func.count()).select_from(RiskWarning)) == 60 * 9


def test_the_kept_count_follows_a_warning_acknowledged_and_closed(session):
    f_open, f_active = WarningFilter("open"), WarningFilter("active")
    before = count_warnings(session, ADMIN, f_open), count_warnings(session, ADMIN, f_active)  # both kept now
    wid = _expected(session, f_open)[-1]
    # the warning's own department handles it (an admin only reads: issue 20's decision)
    owner = session.get(RiskWarning, wid).department or "samr"
    handler = Principal(username=f"reg_{owner}", role="regulator", department=owner)
    warnings.acknowledge(session, handler, wid)
    assert (count_warnings(session, ADMIN, f_open), count_warnings(session, ADMIN, f_active)) == (
        before[0] - 1, before[1])
    warnings.close(session, handler, wid, "已核实处置")
    assert (count_warnings(session, ADMIN, f_open), count_warnings(session, ADMIN, f_active)) == (
        before[0] - 1, before[1] - 1)
    assert wid not in [w.id for w, _ in warning_page(session, ADMIN, f_active, limit=1000).rows]
