"""The engine's cache of reason labels (issue 22: on PostgreSQL the labels' own query made the single
grade read 2.4× slower): once a read has seen a label, later reads of it issue no label query; the
answers are byte for byte those of a read without the cache; an id that names another text (the
tests' ``TRUNCATE … RESTART IDENTITY``, an SQLite id given again after a rollback) never serves
the text it named before; and the cache is bounded."""

from __future__ import annotations

import json
import tracemalloc

import pytest
from sqlalchemy import create_engine, event, text
from srv_fixtures import ENT1, ENT2

from serving.db import driver
from serving.db.reason_labels import LABEL_CACHE_CAPACITY, LabelCache, label_cache
from serving.db.session import engine_for
from serving.presenters import grade_json
from serving.services.grades import (
    latest_grade_values,
    latest_grades,
    put_grade,
    refresh_current,
    store_grades,
)


def _reason(code: str, zh: str, contribution: float = -3.0) -> dict:
    return {"code": code, "label_zh": zh, "label_en": f"{code} in English", "contribution": contribution,
            "value": 2, "record_ids": ["R1"]}


def _grade(uscc: str, reasons: list[dict], as_of: str = "2026-10-31") -> dict:
    return {"uscc": uscc, "as_of": as_of, "score": 601.5, "grade": "C", "probability": 0.3125,
            "model_version": "general-v4", "profile_hash": "c" * 64, "base_score": 700.0, "reasons": reasons,
            "what_if": []}


_REASONS = [_reason("penalty_12m", "近12个月行政处罚次数为2，提高了信用风险"), _reason("tax", "欠税金额为12.5元", -1.5),
            _reason("tax", "欠税金额为13元", -1.0)]


def _label_statements(run) -> tuple[object, int]:
    """``run()``'s result and how many statements it sent that read ``reason_labels``: those run
    through SQLAlchemy (its cursor events) and those on the driver's cursor (``serving.db.driver``)."""
    seen: list[str] = []

    def remember(_conn, _cursor, statement, *_args) -> None:
        seen.append(statement)

    rows = driver.DriverStatement.rows

    def counted(self, connection, values):
        seen.append(self.sql)
        return rows(self, connection, values)

    from sqlalchemy.engine import Engine

    event.listen(Engine, "before_cursor_execute", remember)
    driver.DriverStatement.rows = counted
    try:
        result = run()
    finally:
        driver.DriverStatement.rows = rows
        event.remove(Engine, "before_cursor_execute", remember)
    return result, sum("FROM reason_labels" in s for s in seen)


def _read(engine, read):
    """``read(connection)`` in a transaction of its own (a read on the driver's cursor begins
    none that SQLAlchemy would end)."""
    with engine.connect() as conn, conn.begin():
        return read(conn)


def test_a_read_issues_no_label_query_once_its_labels_are_cached(session, database_url):
    store_grades(session, [_grade(ENT1, _REASONS), _grade(ENT2, _REASONS[:2])])
    engine = engine_for(database_url)
    first, n_first = _label_statements(lambda: _read(engine, lambda c: latest_grade_values(c, ENT1)))
    second, n_second = _label_statements(lambda: _read(engine, lambda c: latest_grade_values(c, ENT1)))
    batch, n_batch = _label_statements(lambda: _read(engine, lambda c: latest_grades(c, [ENT1, ENT2])))
    assert (n_first, n_second, n_batch) == (1, 0, 0)
    assert first == second and [r["label_zh"] for r in second["reasons"]] == [r["label_zh"] for r in _REASONS]
    assert batch[ENT2].model_dump(mode="json")["reasons"] == second["reasons"][:2]


def test_the_served_grade_reads_its_labels_once(client, auth, session):
    """The route's own read (the event loop's connection on SQLite, a pooled one on PostgreSQL)."""
    store_grades(session, [_grade(ENT1, _REASONS)])
    counts, bodies = [], []
    for _ in range(3):
        r, n = _label_statements(lambda: client.get(f"/api/v1/subjects/{ENT1}/grade", headers=auth("ent1")))
        assert r.status_code == 200, r.text
        counts.append(n)
        bodies.append(r.content)
    assert counts[1:] == [0, 0] and counts[0] <= 1 and bodies[0] == bodies[1] == bodies[2]


def test_answers_are_byte_identical_with_and_without_the_cache(session, database_url):
    store_grades(session, [_grade(ENT1, _REASONS), _grade(ENT2, [*reversed(_REASONS), _REASONS[0]])])
    cached = engine_for(database_url)
    plain = create_engine(database_url)  # an engine made elsewhere has no cache: every read queries
    try:
        assert label_cache(cached) is not None and label_cache(plain) is None
        answers = []
        for engine in (plain, cached, cached):  # without, filling the cache, from the cache
            answers.append(_read(engine, lambda c: (
                grade_json(latest_grade_values(c, ENT1)), grade_json(latest_grade_values(c, ENT2)),
                {u: g.model_dump_json() for u, g in latest_grades(c, [ENT1, ENT2]).items()})))
        assert answers[0] == answers[1] == answers[2]
        assert len(label_cache(cached)) == 3
    finally:
        plain.dispose()


def test_a_label_id_given_again_after_a_rollback_never_serves_the_rolled_back_text(session, database_url):
    """SQLite gives a rolled-back row's id to the next row (no sequence): a label read in the
    transaction that added it must not be kept (it may never be committed)."""
    from serving.schemas import GradeIn

    store_grades(session, [_grade(ENT1, _REASONS[:1])])
    put_grade(session, GradeIn.model_validate(_grade(ENT2, [_reason("doomed", "回滚的原因")])))
    session.flush()
    refresh_current(session, [ENT2])
    assert latest_grade_values(session, ENT2)["reasons"][0]["label_zh"] == "回滚的原因"  # its own transaction
    session.rollback()
    store_grades(session, [_grade(ENT2, [_reason("kept", "提交的原因")])])
    assert _read(engine_for(database_url), lambda c: latest_grade_values(c, ENT2))["reasons"][0]["label_zh"] == "提交的原因"
    assert latest_grade_values(session, ENT2)["reasons"][0]["label_zh"] == "提交的原因"


def test_ids_reused_after_truncate_restart_identity_never_serve_the_old_text(session, database_url):
    """The PostgreSQL tests empty every table with ``TRUNCATE … RESTART IDENTITY`` (and a database
    restored from an older backup gives ids again): the cache is keyed by the table's generation."""
    if not database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL: SQLite has no TRUNCATE; its labels are never deleted (a file restored: stop the service)")
    store_grades(session, [_grade(ENT1, [_reason("old", "旧文本")])])
    engine = engine_for(database_url)
    # a connection of the pool open across the truncate, as a service's are
    with engine.connect() as kept:
        with kept.begin():
            assert latest_grade_values(kept, ENT1)["reasons"][0]["label_zh"] == "旧文本"
            old_id = json.loads(kept.execute(text(
                "SELECT CAST(reasons AS TEXT) FROM grades WHERE uscc = :u AND as_of = '2026-10-31'"), {"u": ENT1}).scalar_one())[0][0]
        assert _label_statements(lambda: _read(engine, lambda c: latest_grade_values(c, ENT1)))[1] == 0
        with engine.connect() as other, other.begin():
            other.execute(text("TRUNCATE reason_labels RESTART IDENTITY"))
            other.execute(text("INSERT INTO reason_labels (digest, code, label_zh, label_en) "
                               "SELECT 'x' || i, 'new', '新文本' || i, NULL FROM generate_series(1, :n) AS i"),
                          {"n": old_id})
        # the grade row still names ``old_id``: now the id of another text
        with kept.begin():
            values, n = _label_statements(lambda: latest_grade_values(kept, ENT1))
        assert values["reasons"][0]["label_zh"] == f"新文本{old_id}" and n == 1


def test_the_cache_is_bounded():
    """At most ``LABEL_CACHE_CAPACITY`` labels (the oldest dropped first); each label's texts are
    bounded by their columns (code 80, labels 200 characters), so the cache holds at most about
    ``LABEL_CACHE_CAPACITY`` × 2.5 KB (≈ 20 MB; labels of ordinary length ≈ 0.5 KB each)."""
    cache = LabelCache()
    assert cache.capacity == LABEL_CACHE_CAPACITY == 8192
    # the longest texts the columns hold, each character 4 bytes wide in Python (outside the BMP)
    wide = "\U0001F600"

    def label(i: int) -> tuple[str, str, str]:
        tag = f"{i:08d}"
        return (tag + wide * 72, tag + wide * 192, tag + wide * 192)

    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        for start in range(0, 3 * LABEL_CACHE_CAPACITY, 1000):
            cache.add("g", {i: label(i) for i in range(start, start + 1000)})
        used = tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()
    assert len(cache) == LABEL_CACHE_CAPACITY
    assert used <= LABEL_CACHE_CAPACITY * 2500, used
    # the newest are kept, the oldest gone: a read of a dropped id finds only the others (and queries it)
    last = max(range(0, 3 * LABEL_CACHE_CAPACITY, 1000)) + 999
    assert cache.get("g", [last, 0]) == {last: label(last)}
    # another generation's reads never see these, and its first label starts the cache anew
    assert cache.get("h", [last]) == {}
    cache.add("h", {0: ("c", "中", None)})
    assert len(cache) == 1 and cache.get("g", [last]) == {} and cache.get("h", [0]) == {0: ("c", "中", None)}
