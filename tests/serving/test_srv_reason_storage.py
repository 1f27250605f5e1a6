"""A grade's reasons stored compactly (issue 22: 24 M grade rows at city scale): every response
that shows reasons is byte for byte what it is for the same grades stored in the old format (each
reason's labels written into every row), and a row of either format reads the same.

Grades are stored through the public paths (``store_grades`` and the bulk load); the answers
captured (the single grade, the batch read, the enterprise page in both languages, the list's CSV),
the rows rewritten in the old format (as the service stored them before), and captured again.
With ``REASONS_CAPTURE=FILE`` the first capture is also written there (to compare two checkouts)."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from pathlib import Path

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import JSON, String, bindparam, column, inspect, select, table, text, update
from srv_fixtures import ENT1, ENT2, form_login

from serving.db.reason_labels import compact, compact_texts, expand, is_compact
from serving.db.session import engine_for, iter_session
from serving.db.tables import Grade
from serving.schemas import GradeIn, ReasonOut
from serving.services.bulk import load_grades
from serving.services.grades import latest_grade, store_grades

_OVERRIDE = {"code": "abnormal_list", "label_zh": "列入经营异常名录", "label_en": "On the abnormal operations list",
             "contribution": 0.0, "value": "是", "record_ids": [], "override": True}
_REASONS = [
    _OVERRIDE,
    # the seeded grade's label again: one label, two grades
    {"code": "penalty_serious_12m", "label_zh": "近12个月严重行政处罚", "label_en": "Serious penalty, last 12 months",
     "contribution": -60.0, "value": 1, "record_ids": ["R2"]},
    {"code": "tax_arrears", "label_zh": "欠税金额为1,250,000.50元，提高了信用风险", "label_en": None,
     "contribution": -12.34, "value": 1250000.5, "record_ids": ["R1", "R3"]},
    {"code": "ratio", "label_zh": '比例 "引号" \\ 反斜杠', "label_en": "", "contribution": 0.30000000000000004,
     "value": 1e-7},
    {"code": "a*b", "label_zh": "甲（3）与乙（无数据）同时出现，其组合提高了信用风险",
     "label_en": "A (3) together with B (no data): the combination raises the credit risk",
     "contribution": -1e-5, "value": "3 / —", "record_ids": ["R1"]},
]
_WHAT_IF = [{"action": "repair", "label_zh": "修复记录 R1 后", "label_en": "After repairing R1", "record_id": "R1",
             "score": 665.0, "grade": "B"}]


def _grade(uscc: str, reasons: list[dict], **changes) -> dict:
    return {"uscc": uscc, "as_of": "2026-10-31", "score": 601.5, "grade": "C", "probability": 0.3125,
            "model_version": "general-v4", "profile_hash": "c" * 64, "base_score": 700.0, "reasons": reasons,
            "what_if": _WHAT_IF} | changes


_STORED = [_grade(ENT1, _REASONS)]
# the bulk path: another subject, the reasons in another order and one label of the first grade changed
_LOADED = [_grade(ENT2, [*reversed(_REASONS[1:]), {**_OVERRIDE, "label_en": "Listed"}], grade="D", score=540.0)]


def _capture(client, settings) -> dict[str, bytes]:
    """Every answer that shows a grade's reasons (and the list CSV, which shows grades)."""
    from srv_fixtures import principal

    from serving.security import create_access_token

    def bearer(username: str) -> dict[str, str]:
        token, _ = create_access_token(principal(username), settings.jwt_key, 30)
        return {"Authorization": f"Bearer {token}"}

    out: dict[str, bytes] = {}
    for uscc, user, purpose in ((ENT1, "ent1", None), (ENT1, "reg_samr", "日常监管"), (ENT2, "reg_eco", "日常监管")):
        r = client.get(f"/api/v1/subjects/{uscc}/grade", headers=bearer(user), params={"purpose": purpose} if purpose else {})
        assert r.status_code == 200, r.text
        out[f"grade {uscc} {user}"] = r.content
    for user in ("reg_samr", "reg_eco"):
        r = client.post("/api/v1/regulator/grades/batch", headers=bearer(user),
                        json={"usccs": [ENT1, ENT2], "purpose": "日常监管"})
        assert r.status_code == 200, r.text
        out[f"batch {user}"] = r.content
    assert form_login(client, "ent1").status_code == 303
    for lang in ("zh", "en"):
        r = client.get(f"/credit/{ENT1}", params={"lang": lang})
        assert r.status_code == 200, r.text
        # (the form's token is the session's: each capture logs in anew)
        out[f"page {lang}"] = re.sub(rb'(name="csrf_token" value=")[0-9a-f]+', rb"\1", r.content)
    assert form_login(client, "reg_samr").status_code == 303
    r = client.get("/regulator/subjects.csv", params={"purpose": "日常监管"})
    out["csv"] = r.content
    return out


def _old_format(session) -> int:
    """Every grade's reasons rewritten as the service stored them before (each reason with its
    labels, JSON through the column's type): the rows an older service left. Returns the rows."""
    grades = table("grades", column("uscc", String), column("as_of"), column("model_version", String),
                   column("reasons", JSON))
    from srv_fixtures import _grades

    rows = 0
    for g in (GradeIn.model_validate(r) for r in [*_grades(), *_STORED, *_LOADED]):
        rows += session.execute(
            update(grades).where(grades.c.uscc == bindparam("u"), grades.c.as_of == bindparam("a"),
                                 grades.c.model_version == bindparam("m")).values(reasons=bindparam("r", type_=JSON)),
            {"u": g.uscc, "a": g.as_of, "m": g.model_version, "r": g.model_dump(mode="json")["reasons"]}).rowcount
    session.commit()
    return rows


def _stored_reasons(session) -> list[str]:
    return [r for (r,) in session.execute(text("SELECT CAST(reasons AS TEXT) FROM grades ORDER BY id"))]


def test_reasons_are_stored_once_and_every_answer_is_what_the_old_rows_give(client, settings, session, database_url):
    store_grades(session, _STORED)
    report = load_grades(engine_for(database_url), [pd.DataFrame(
        [{**r, "reasons": json.dumps(r["reasons"], ensure_ascii=False), "what_if": json.dumps(r["what_if"])}
         for r in _LOADED])], load_id="reasons-compact")
    assert report.stored == 1 and report.rejected == 0
    # one storing time, so that two checkouts' answers can be compared byte for byte
    session.execute(text("UPDATE grades SET created_at = :t"), {"t": dt.datetime(2026, 11, 1, 8, 30, tzinfo=dt.UTC)})
    session.commit()

    # the labels are not in the rows: a row holds each reason's codes and numbers
    stored = _stored_reasons(session)
    assert len(stored) == 4 and not any("label_zh" in r or "近12个月" in r for r in stored), stored

    now = _capture(client, settings)
    if os.environ.get("REASONS_CAPTURE"):
        Path(os.environ["REASONS_CAPTURE"]).write_text(json.dumps({k: v.decode() for k, v in now.items()},
                                                                  ensure_ascii=False, indent=1, sort_keys=True))
    # (what the answers hold: the reasons as stored, labels and all, in both languages)
    single = json.loads(now[f"grade {ENT1} ent1"])
    assert single["reasons"] == GradeIn.model_validate(_STORED[0]).model_dump(mode="json")["reasons"]
    batch = {g["uscc"]: g for g in json.loads(now["batch reg_eco"])["grades"]}
    assert batch[ENT2]["reasons"] == GradeIn.model_validate(_LOADED[0]).model_dump(mode="json")["reasons"]
    assert "甲（3）与乙（无数据）同时出现" in now["page zh"].decode() and "A (3) together with B" in now["page en"].decode()

    assert _old_format(session) == 4
    assert all("label_zh" in r for r in _stored_reasons(session) if r != "[]")
    before = _capture(client, settings)
    assert {k: before[k] == now[k] for k in now} == {k: True for k in now}


def test_the_orm_row_reads_and_writes_the_reasons_with_their_labels(session):
    store_grades(session, _STORED)
    expected = GradeIn.model_validate(_STORED[0]).model_dump(mode="json")["reasons"]
    grade = latest_grade(session, ENT1)
    assert grade.reasons == expected
    # a reason changed on the row (as a test or a repair script may): stored compactly, read back
    changed = [dict(r) for r in grade.reasons]
    changed[2] = {**changed[2], "label_en": "Tax arrears of 1,250,000.50 yuan"}
    grade.reasons = changed
    session.commit()
    session.expire_all()
    assert latest_grade(session, ENT1).reasons == changed
    assert not any("Tax arrears of" in r for r in _stored_reasons(session))
    assert session.scalar(select(text("count(*)")).select_from(text("reason_labels"))) >= 6


def test_the_migration_down_writes_the_old_form_back_and_up_again_reads_both(session, database_url):
    """Migration 0020 down: every compact row in the old form (labels and all), the labels' table
    gone; up again: those rows read as before, beside rows stored compactly."""
    from alembic import command

    from serving.db.migrate import alembic_config, upgrade
    from serving.db.session import dispose_engine

    store_grades(session, _STORED)
    expected = {(g.uscc, g.as_of): g.reasons for g in session.scalars(select(Grade))}
    assert any(is_compact(r) for r in _raw(session))
    session.close()
    dispose_engine(database_url)
    command.downgrade(alembic_config(database_url), "0019")
    with engine_for(database_url).connect() as conn:
        raw = [json.loads(r) for (r,) in conn.execute(text("SELECT CAST(reasons AS TEXT) FROM grades"))]
        assert not any(is_compact(r) for r in raw) and not inspect(conn).has_table("reason_labels")
    dispose_engine(database_url)
    upgrade(database_url)
    s = next(iter_session(database_url))
    try:
        store_grades(s, _LOADED)  # a compact row beside the old ones
        read = {(g.uscc, g.as_of): g.reasons for g in s.scalars(select(Grade))}
        assert {k: read[k] for k in expected} == expected
        assert read[(ENT2, dt.date(2026, 10, 31))] == GradeIn.model_validate(_LOADED[0]).model_dump(mode="json")["reasons"]
    finally:
        s.close()


def _raw(session) -> list:
    return [json.loads(r) for r in _stored_reasons(session)]


_TEXT = st.characters(exclude_categories=("Cs",), exclude_characters="\x00")
_ANY_REASON = st.builds(
    lambda **kw: ReasonOut(**kw).model_dump(mode="json"),
    # (no NUL in a label: PostgreSQL's text refuses it; a NUL in a label stored before was only
    # possible inside the JSON column)
    code=st.sampled_from(["a", "penalty_12m", "a*b"]), label_zh=st.text(_TEXT, min_size=1, max_size=12),
    label_en=st.none() | st.text(_TEXT, max_size=12), contribution=st.floats(-1e6, 1e6, allow_nan=False),
    value=st.none() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=5),
    record_ids=st.lists(st.text(max_size=6), max_size=3), override=st.booleans())


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(many=st.lists(st.lists(_ANY_REASON, max_size=5), max_size=4))
def test_compact_reasons_read_back_as_given(session, many):
    """Any reasons (labels, numbers, values of every kind, defaults or not) read back as given,
    through the row path's form and the bulk load's text."""
    connection = session.connection()
    assert expand(connection, compact(connection, many)) == many
    texts = compact_texts(connection, [json.dumps(r, ensure_ascii=False) for r in many])
    assert expand(connection, [json.loads(t) for t in texts]) == many
    session.rollback()
