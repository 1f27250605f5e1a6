"""The bulk grade load (issue 22) stores what the one-by-one path stores, row for row; a bad row is
refused by its input row number, field and rule, and changes nothing else; a batch that fails
leaves the database as it was, and the load resumes at it."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, select
from srv_fixtures import add_subjects

from serving.db.session import engine_for
from serving.db.tables import BulkLoad, CurrentGrade, Grade, RiskWarning
from serving.services import bulk
from serving.services import grades as grades_service
from serving.services.bulk import load_grades
from serving.services.grades import store_grades
from simulation.codes import make_uscc

_SETTINGS = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
_CODES = [str(c) for c in make_uscc(np.array(["91"] * 4), np.full(4, 320102), np.arange(70_000, 70_004))]
_UNKNOWN = str(make_uscc(np.array(["91"]), np.full(1, 320102), np.arange(79_000, 79_001))[0])

_REASON = st.fixed_dictionaries(
    {"code": st.sampled_from(["penalties_24m", "tax_d", "x"]), "label_zh": st.sampled_from(["近24个月行政处罚", "纳税"]),
     "contribution": st.floats(-50, 50, allow_nan=False).map(lambda x: round(x, 2))},
    optional={"label_en": st.none() | st.just("penalties"), "value": st.none() | st.integers(0, 9) | st.just("高"),
              "record_ids": st.lists(st.sampled_from(["R1", "R2", "R3"]), max_size=2), "override": st.booleans()})
_ROW = st.fixed_dictionaries({
    "uscc": st.sampled_from(_CODES),
    "as_of": st.sampled_from(["2026-07-31", "2026-08-31", "2026-09-30"]),
    "score": st.floats(300, 900, allow_nan=False).map(lambda x: round(x, 1)),
    "grade": st.sampled_from("ABCD"),
    "probability": st.floats(0, 1, allow_nan=False),
    "model_version": st.sampled_from(["general-v3", "general-v4"]),
    "profile_hash": st.sampled_from(["p2" + "0" * 62, "p2" + "1" * 62]),
    "base_score": st.none() | st.just(620.0),
    "reasons": st.lists(_REASON, max_size=2),
})
_BATCHES = st.lists(st.lists(_ROW, min_size=1, max_size=8), min_size=1, max_size=3)
# a bad row: (field, value, the field named in the refusal)
_BAD = st.sampled_from([("grade", "E", "grade"), ("probability", 1.5, "probability"),
                        ("reasons", "[{not json", "reasons"), ("reasons", '[{"label_zh": "无代码", "contribution": 1}]',
                                                               "reasons.0.code"),
                        ("uscc", _CODES[0][:-1] + ("0" if _CODES[0][-1] != "0" else "1"), "uscc"),
                        ("as_of", "2026-02-30", "as_of"), ("model_version", "", "model_version")])


def _empty(session) -> None:
    for model in (RiskWarning, CurrentGrade, Grade, BulkLoad):
        session.execute(delete(model))
    session.commit()


def _stored(session) -> tuple[list[tuple], list[tuple], list[tuple]]:
    """Every grade and current grade (without the storing time and id), and the warnings raised
    (what staff see of them: subject, cause, message, records, evidence)."""
    session.expire_all()
    grades = sorted((g.uscc, g.as_of, g.model_version, g.score, g.grade, g.probability, g.profile_hash, g.base_score,
                     json.dumps(g.reasons, sort_keys=True), json.dumps(g.what_if, sort_keys=True), g.stale)
                    for g in session.scalars(select(Grade)))
    current = sorted((c.uscc, c.as_of, c.model_version, c.grade, c.score, c.industry, c.district_code)
                     for c in session.scalars(select(CurrentGrade)))
    warnings = sorted((w.uscc, w.cause, w.status, w.message, json.dumps(w.record_ids), json.dumps(w.evidence, sort_keys=True),
                       w.department, w.open_key) for w in session.scalars(select(RiskWarning)))
    return grades, current, warnings


def _frame(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame([{**r, "reasons": r["reasons"] if isinstance(r["reasons"], str)
                          else json.dumps(r["reasons"], ensure_ascii=False)} for r in rows])


@pytest.fixture
def subjects(session):
    add_subjects(session, [dict(uscc=c, name=f"企业{i}", industry="CF"[i % 2], district_code="320102",
                                registered_on="2015-01-01") for i, c in enumerate(_CODES)])


def _row(model_version: str, score: float) -> dict:
    return dict(uscc=_CODES[0], as_of="2026-07-31", score=score, grade="B", probability=0.1, model_version=model_version,
                profile_hash="p2" + "0" * 62, base_score=None, reasons=[])


@_SETTINGS
@given(batches=_BATCHES)
# a grade replaced after another model's grade of the same day was added: stored later, it is current
@example(batches=[[_row("general-v3", 500.0)], [_row("general-v4", 600.0), _row("general-v3", 700.0)]])
# a regrade that raises both warnings (grade drop, probability rise), with the records behind it
@example(batches=[[_row("general-v3", 700.0)],
                  [{**_row("general-v3", 450.0), "as_of": "2026-08-31", "grade": "D", "probability": 0.6,
                    "reasons": [{"code": "x", "label_zh": "纳税", "contribution": -3.0, "record_ids": ["R1", "R2"]}]}]])
# a third grading raising again what is still open: the open warning gets the new records too
@example(batches=[[_row("general-v3", 700.0)],
                  [{**_row("general-v3", 450.0), "as_of": "2026-08-31", "grade": "D", "probability": 0.6,
                    "reasons": [{"code": "x", "label_zh": "纳税", "contribution": -3.0, "record_ids": ["R1", "R2"]}]}],
                  [{**_row("general-v3", 400.0), "as_of": "2026-09-30", "grade": "D", "probability": 0.9,
                    "reasons": [{"code": "x", "label_zh": "纳税", "contribution": -3.0, "record_ids": ["R3", "R1"]}]}]])
def test_the_bulk_load_stores_what_the_one_by_one_path_stores(session, database_url, subjects, batches):
    _empty(session)
    for rows in batches:
        store_grades(session, [dict(r) for r in rows])
    one_by_one = _stored(session)
    _empty(session)
    engine = engine_for(database_url)
    for k, rows in enumerate(batches):
        report = load_grades(engine, [_frame(rows)], load_id=f"equal-{k}")
        assert report.rejected == 0 and report.stored == len(rows)
    assert _stored(session) == one_by_one


@_SETTINGS
@given(batches=_BATCHES, where=st.floats(0, 1), bad=_BAD)
def test_a_bad_row_anywhere_is_refused_by_row_field_and_rule_and_changes_nothing_else(
        session, database_url, subjects, batches, where, bad):
    field, value, named = bad
    engine = engine_for(database_url)
    rows = [r for batch in batches for r in batch]
    at = int(where * len(rows))
    wrong = {**rows[min(at, len(rows) - 1)], field: value}
    _empty(session)
    assert load_grades(engine, [_frame(rows)], load_id="clean").rejected == 0
    clean = _stored(session)
    _empty(session)
    refused: list[pd.DataFrame] = []
    report = load_grades(engine, [_frame([*rows[:at], wrong, *rows[at:]])], load_id="with-bad",
                         quarantine=refused.append)
    assert _stored(session) == clean
    assert report.rejected == 1 and report.stored == len(rows)
    (row,) = pd.concat(refused).to_dict("records")
    assert row["row"] == at + 1  # the input's row number, from 1
    field_named, rule = row["reason"].split(": ", 1)
    assert field_named == named and rule


def _sqlite_settings(engine) -> tuple:
    """What the load tunes on its connection (SQLite), as a pooled connection has it now."""
    if engine.dialect.name != "sqlite":
        return ()
    with engine.connect() as conn:
        return tuple(conn.exec_driver_sql(f"PRAGMA {name}").scalar()
                     for name in ("cache_size", "temp_store", "wal_autocheckpoint"))


def test_a_batch_that_fails_leaves_the_database_as_it_was_and_the_load_resumes_there(
        session, database_url, subjects, monkeypatch):
    engine = engine_for(database_url)
    rng = np.random.default_rng(5)
    frame = pd.DataFrame({"uscc": np.repeat(_CODES, 3), "as_of": np.tile(["2026-07-31", "2026-08-31", "2026-09-30"], 4),
                          "score": rng.normal(650, 50, 12).round(1), "grade": rng.choice(list("ABCD"), 12),
                          "probability": rng.random(12), "model_version": "general-v3", "profile_hash": "p2" + "0" * 62})
    frame.loc[5, "uscc"] = _UNKNOWN  # refused while writing: not a subject of the service
    batches = [frame.iloc[:6], frame.iloc[6:]]
    _empty(session)
    load_grades(engine, batches[:1], load_id="first batch only")
    after_first = _stored(session)
    _empty(session)
    real, calls = grades_service.advance_current, []

    def fails_on_the_second_batch(connection, stored):  # the database refuses it half-way through
        real(connection, stored)
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("disk full")

    monkeypatch.setattr("serving.services.bulk.advance_current", fails_on_the_second_batch)
    refused: list[pd.DataFrame] = []
    settings_before = _sqlite_settings(engine)
    with pytest.raises(RuntimeError):
        load_grades(engine, batches, load_id="resumed", quarantine=refused.append)
    assert _sqlite_settings(engine) == settings_before  # the load's own settings went with it
    assert len(calls) == 2 and _stored(session) == after_first  # the second batch's grades written: gone
    assert pd.concat(refused)[["row", "reason"]].to_dict("records") == [
        {"row": 6, "reason": "uscc: unknown subject (load the subjects first)"}]  # told once its batch committed
    monkeypatch.setattr("serving.services.bulk.advance_current", real)
    report = load_grades(engine, batches, load_id="resumed", quarantine=refused.append)
    assert report.resumed_from == 6 and report.stored == 6 and report.rejected == 0
    assert {c.uscc: c.as_of for c in session.scalars(select(CurrentGrade))} == {
        c: dt.date(2026, 8, 31) if c == _CODES[1] else dt.date(2026, 9, 30) for c in _CODES}  # its 09-30 row refused


def test_a_load_that_fails_raising_its_warnings_leaves_the_database_as_it_was(session, database_url, subjects,
                                                                               monkeypatch):
    engine = engine_for(database_url)
    _empty(session)
    load_grades(engine, [_frame([_row("general-v3", 700.0)])], load_id="first")
    before = _stored(session)
    dropped = {**_row("general-v3", 450.0), "as_of": "2026-08-31", "grade": "D", "probability": 0.7}
    real, raised = bulk.warn_after_bulk_grades, []

    def fails_after_raising(connection, changes, *args, **kwargs):  # the warnings written, then the disk is full
        raised.append(real(connection, changes, *args, **kwargs))
        raise RuntimeError("disk full")

    monkeypatch.setattr(bulk, "warn_after_bulk_grades", fails_after_raising)
    with pytest.raises(RuntimeError):
        load_grades(engine, [_frame([dropped])], load_id="regrade")
    assert raised == [2] and _stored(session) == before  # grade drop and probability rise: written, rolled back
    assert session.scalar(select(BulkLoad.rows_done).where(BulkLoad.load_id == "regrade")) == 0
    monkeypatch.setattr(bulk, "warn_after_bulk_grades", real)
    assert load_grades(engine, [_frame([dropped])], load_id="regrade").stored == 1
    assert len(_stored(session)[2]) == 2


def test_a_load_of_many_batches_keeps_the_sqlite_wal_bounded(session, database_url, monkeypatch):
    """Issue 22: checkpointed only at the end of a load, the WAL grew with the load (17 GB at
    2 M subjects × 2 as-of dates). Checkpointed between batches, it stays within its bound plus
    about one batch, however many batches the load has."""
    if not database_url.startswith("sqlite"):
        pytest.skip("the WAL is SQLite's")
    from pathlib import Path

    bound = 256 * 1024
    monkeypatch.setattr(bulk, "_WAL_CHECKPOINT_BYTES", bound)
    n, rows = 3000, 300
    codes = make_uscc(np.array(["91"] * n), np.full(n, 320104), np.arange(60_000, 60_000 + n)).astype(str)
    add_subjects(session, [dict(uscc=c, name=f"企业{i}", industry="C", district_code="320104",
                                registered_on="2015-01-01") for i, c in enumerate(codes)])
    engine = engine_for(database_url)
    wal = Path(database_url.removeprefix("sqlite:///") + "-wal")
    rng = np.random.default_rng(22)
    reasons = json.dumps([{"code": f"reason_{k}", "label_zh": f"原因{k}", "contribution": -4.0 * k,
                           "record_ids": [f"R{k}"]} for k in range(5)], ensure_ascii=False)
    for month, as_of in enumerate(["2026-07-31", "2026-08-31"]):
        grades = pd.DataFrame({"uscc": codes, "as_of": as_of, "score": rng.normal(650, 50, n).round(1),
                               "grade": rng.choice(list("ABCD"), n), "probability": rng.random(n).round(4),
                               "model_version": "general-v3", "profile_hash": "p2" + "0" * 62, "reasons": reasons})
        report = load_grades(engine, (grades.iloc[i:i + rows] for i in range(0, n, rows)), load_id=f"wal-{month}")
        assert report.stored == n
    one_batch = 2 * 1024 * 1024  # a batch of 300 grades with their index entries: well under this
    assert wal.stat().st_size <= bound + one_batch


def test_a_batch_looks_up_the_staged_keys_instead_of_scanning_the_tables(session, database_url, monkeypatch):
    """Issue 22 (PostgreSQL): each statement of a batch driven by the staged keys reads grades,
    subjects and current grades by index, never whole (a scan's cost grows with the table, a
    batch's must not). Checked by EXPLAIN of each such statement, where it runs."""
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite looks each staged row up by index already")
    from sqlalchemy import event

    n = 3000
    codes = make_uscc(np.array(["91"] * n), np.full(n, 320104), np.arange(61_000, 61_000 + n)).astype(str)
    add_subjects(session, [dict(uscc=c, name=f"企业{i}", industry="C", district_code="320104",
                                registered_on="2015-01-01") for i, c in enumerate(codes)])
    engine = engine_for(database_url)
    rng = np.random.default_rng(7)

    def month(as_of: str) -> pd.DataFrame:
        return pd.DataFrame({"uscc": codes, "as_of": as_of, "score": rng.normal(650, 50, n).round(1),
                             "grade": rng.choice(list("ABCD"), n), "probability": rng.random(n).round(4),
                             "model_version": "general-v3", "profile_hash": "p2" + "0" * 62, "reasons": "[]"})

    load_grades(engine, [month("2026-07-31"), month("2026-08-31")], load_id="plans-first")
    plans: list[str] = []

    def explain(cursor, statement, parameters=None) -> None:
        if bulk._STAGE in statement and statement.lstrip()[:6].upper() in ("SELECT", "INSERT", "DELETE", "UPDATE"):
            other = cursor.connection.cursor()
            other.execute("EXPLAIN " + statement, parameters)
            plans.append(statement.split("FROM")[0][:60] + "\n" + "\n".join(r[0] for r in other.fetchall()))

    def before_execute(_conn, cursor, statement, parameters, _context, _executemany):
        explain(cursor, statement, parameters)

    real_rows = bulk._driver_rows

    def explained_rows(conn, sql):
        explain(conn.connection.driver_connection.cursor(), sql)
        return real_rows(conn, sql)

    monkeypatch.setattr(bulk, "_driver_rows", explained_rows)
    event.listen(engine, "before_cursor_execute", before_execute)
    try:
        frame = month("2026-09-30")
        load_grades(engine, [frame.iloc[:1000], frame.iloc[1000:2000]], load_id="plans-regrade")
    finally:
        event.remove(engine, "before_cursor_execute", before_execute)
    assert len(plans) >= 8  # unknown subjects, before, replace, current, now current: per batch
    scans = [p for p in plans if any(f"Seq Scan on {t} " in p or p.endswith(f"Seq Scan on {t}")
                                     for t in ("grades", "subjects", "current_grades"))]
    assert not scans, "\n\n".join(scans)


def test_a_batch_writes_its_current_grades_in_the_order_of_the_lists_rank_index(session, database_url):
    """Issue 22: each current grade written goes into the lists' indexes, all keyed by grade then
    score (after the industry or district: a few values), and that upkeep was most of the current
    grades' cost (in subject order, each written row touched three index pages far apart).
    Written in (grade, score) order, the rows of a batch follow one another in each of those
    indexes. Checked by a trigger that notes the order rows arrive in."""
    from sqlalchemy import text

    n = 2000
    codes = make_uscc(np.array(["91"] * n), np.full(n, 320104), np.arange(62_000, 62_000 + n)).astype(str)
    add_subjects(session, [dict(uscc=c, name=f"企业{i}", industry="CF"[i % 2], district_code="320104",
                                registered_on="2015-01-01") for i, c in enumerate(codes)])
    postgres = database_url.startswith("postgresql")
    statements = ([
        "CREATE TABLE bulk_order_seen (seq serial PRIMARY KEY, grade text, score float)",
        "CREATE FUNCTION bulk_order_note() RETURNS trigger AS $$ BEGIN "
        "INSERT INTO bulk_order_seen (grade, score) VALUES (NEW.grade, NEW.score); RETURN NEW; END $$ LANGUAGE plpgsql",
        "CREATE TRIGGER bulk_order_ins AFTER INSERT OR UPDATE ON current_grades FOR EACH ROW "
        "EXECUTE FUNCTION bulk_order_note()"] if postgres else [
        "CREATE TABLE bulk_order_seen (seq INTEGER PRIMARY KEY AUTOINCREMENT, grade TEXT, score REAL)",
        "CREATE TRIGGER bulk_order_ins AFTER INSERT ON current_grades BEGIN "
        "INSERT INTO bulk_order_seen (grade, score) VALUES (NEW.grade, NEW.score); END",
        "CREATE TRIGGER bulk_order_upd AFTER UPDATE ON current_grades BEGIN "
        "INSERT INTO bulk_order_seen (grade, score) VALUES (NEW.grade, NEW.score); END"])
    for statement in statements:
        session.execute(text(statement))
    session.commit()
    try:
        rng = np.random.default_rng(5)
        engine = engine_for(database_url)
        for month, as_of in enumerate(["2026-07-31", "2026-08-31"]):  # a first load, then a regrade
            grades = pd.DataFrame({"uscc": codes, "as_of": as_of, "score": rng.normal(650, 50, n).round(1),
                                   "grade": rng.choice(list("ABCD"), n), "probability": rng.random(n).round(4),
                                   "model_version": "general-v3", "profile_hash": "p2" + "0" * 62, "reasons": "[]"})
            load_grades(engine, (grades.iloc[i:i + 500] for i in range(0, n, 500)), load_id=f"order-{month}")
        seen = session.execute(text("SELECT grade, score FROM bulk_order_seen ORDER BY seq")).all()
        assert len(seen) == 2 * n
        for batch in range(0, 2 * n, 500):  # each batch's rows in the index's order
            written = [tuple(r) for r in seen[batch:batch + 500]]
            assert written == sorted(written)
    finally:
        session.rollback()
        for statement in (["DROP TRIGGER bulk_order_ins ON current_grades", "DROP FUNCTION bulk_order_note()",
                           "DROP TABLE bulk_order_seen"] if postgres else
                          ["DROP TRIGGER bulk_order_ins", "DROP TRIGGER bulk_order_upd", "DROP TABLE bulk_order_seen"]):
            session.execute(text(statement))
        session.commit()
