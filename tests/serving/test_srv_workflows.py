"""Objections (working-day deadlines, revocation, regrade) and repair (eligibility, approval)."""

from __future__ import annotations

import datetime as dt

import chinese_calendar
from hypothesis import given, settings
from hypothesis import strategies as st

from serving.deps import get_regrader, get_today
from serving.services.repairs import default_repair_eligibility
from supervision.workdays import add_working_days

OBJECTION = {"record_id": "R1", "reason": "该处罚已被法院判决撤销"}


def test_deadline_skips_national_day_holiday():
    # filed on 2026-09-30: 10/1–10/7 (or 8) are holidays, so 10 working days run well past 10/14
    due, approximate = add_working_days(dt.date(2026, 9, 30), 10)
    assert not approximate
    days = [dt.date(2026, 9, 30) + dt.timedelta(d) for d in range(1, (due - dt.date(2026, 9, 30)).days + 1)]
    assert sum(chinese_calendar.is_workday(d) for d in days) == 10 and chinese_calendar.is_workday(due)
    assert due > dt.date(2026, 10, 14)


@given(st.dates(min_value=dt.date(2027, 1, 1), max_value=dt.date(2030, 12, 31)), st.integers(1, 30))
@settings(max_examples=50, deadline=None)
def test_fallback_counts_monday_to_friday(start, n):
    due, approximate = add_working_days(start, n)
    assert approximate and due.weekday() < 5
    between = [start + dt.timedelta(d) for d in range(1, (due - start).days + 1)]
    assert sum(d.weekday() < 5 for d in between) == n


@given(st.dates(min_value=dt.date(2010, 1, 1), max_value=dt.date(2026, 6, 30)), st.integers(1, 20))
@settings(max_examples=50, deadline=None)
def test_deadline_is_monotone_and_never_early(start, n):
    due, _ = add_working_days(start, n)
    assert due - start >= dt.timedelta(days=n) and add_working_days(start, n + 1)[0] > due


def test_objection_due_in_10_working_days(client, auth, world):
    r = client.post(f"/api/v1/subjects/{world.ent1}/objections", json=OBJECTION, headers=auth("ent1"))
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["due_on"] == str(add_working_days(dt.date(2026, 11, 23), 10)[0])
    assert body["due_on_approximate"] is False and body["status"] == "pending" and body["department"] == "samr"


def test_objection_in_2027_is_flagged_approximate(app, client, auth, world, caplog):
    app.dependency_overrides[get_today] = lambda: dt.date(2027, 3, 1)
    r = client.post(f"/api/v1/subjects/{world.ent1}/objections", json=OBJECTION, headers=auth("ent1"))
    body = r.json()
    assert body["due_on_approximate"] is True and body["due_on"] == "2027-03-15"
    assert any("chinesecalendar" in rec.message for rec in caplog.records)


def test_upheld_objection_revokes_record_and_regrades(app, client, auth, world):
    calls = []
    app.dependency_overrides[get_regrader] = lambda: (lambda session, uscc, reason: calls.append((uscc, reason)))
    oid = client.post(f"/api/v1/subjects/{world.ent1}/objections", json=OBJECTION, headers=auth("ent1")).json()["id"]
    # only the record's department decides; to another, the objection does not exist
    other = client.post(f"/api/v1/regulator/objections/{oid}/decision",
                        json={"decision": "upheld", "reason": "核实"}, headers=auth("reg_tax"))
    assert other.status_code == 404
    r = client.post(f"/api/v1/regulator/objections/{oid}/decision",
                    json={"decision": "upheld", "reason": "经核实处罚决定已撤销"}, headers=auth("reg_samr"))
    assert r.status_code == 200 and r.json()["status"] == "upheld" and r.json()["decided_by"] == "reg_samr"
    assert calls and calls[0][0] == world.ent1
    records = client.get(f"/api/v1/subjects/{world.ent1}/records", params={"include_history": True},
                         headers=auth("ent1")).json()
    r1 = sorted((x for x in records if x["record_id"] == "R1"), key=lambda x: x["version"])
    assert [x["revoked"] for x in r1] == [False, True]
    again = client.post(f"/api/v1/regulator/objections/{oid}/decision",
                        json={"decision": "rejected", "reason": "重复"}, headers=auth("reg_samr"))
    assert again.status_code == 409 and again.json()["error"]["code"] == "already_decided"


def test_default_regrader_marks_grade_stale(client, auth, world):
    oid = client.post(f"/api/v1/subjects/{world.ent1}/objections", json=OBJECTION, headers=auth("ent1")).json()["id"]
    client.post(f"/api/v1/regulator/objections/{oid}/decision", json={"decision": "upheld", "reason": "撤销"},
                headers=auth("reg_samr"))
    grade = client.get(f"/api/v1/subjects/{world.ent1}/grade", headers=auth("ent1")).json()
    assert grade["stale"] is True and "objection" in grade["stale_reason"]


def test_failed_regrade_leaves_no_partial_state(app, client, auth, world):
    def broken(session, uscc, reason):
        raise RuntimeError("model registry down")

    app.dependency_overrides[get_regrader] = lambda: broken
    oid = client.post(f"/api/v1/subjects/{world.ent1}/objections", json=OBJECTION, headers=auth("ent1")).json()["id"]
    r = client.post(f"/api/v1/regulator/objections/{oid}/decision", json={"decision": "upheld", "reason": "撤销"},
                    headers=auth("reg_samr"))
    assert r.status_code == 503 and r.json()["error"]["code"] == "model_unavailable"
    objs = client.get(f"/api/v1/subjects/{world.ent1}/objections", headers=auth("ent1")).json()
    assert objs[0]["status"] == "pending"
    records = client.get(f"/api/v1/subjects/{world.ent1}/records", params={"include_history": True},
                         headers=auth("ent1")).json()
    assert not any(x["revoked"] for x in records)


def test_second_pending_objection_on_same_record_conflicts(client, auth, world):
    client.post(f"/api/v1/subjects/{world.ent1}/objections", json=OBJECTION, headers=auth("ent1"))
    r = client.post(f"/api/v1/subjects/{world.ent1}/objections", json=OBJECTION, headers=auth("ent1"))
    assert r.status_code == 409 and r.json()["error"]["field"] == "record_id"


def test_unknown_record_is_named(client, auth, world):
    r = client.post(f"/api/v1/subjects/{world.ent1}/objections", json={**OBJECTION, "record_id": "R404"},
                    headers=auth("ent1"))
    assert r.status_code == 404 and "R404" in r.json()["error"]["message"]


class _Rec:
    def __init__(self, kind, severity, decision_date):
        self.kind, self.severity, self.decision_date = kind, severity, decision_date


def test_default_repair_periods():
    d_new, d_old = dt.date(2026, 5, 10), dt.date(2025, 5, 10)
    assert default_repair_eligibility(_Rec("admin_penalty", "general", d_new)).eligible_from == dt.date(2026, 8, 10)
    assert default_repair_eligibility(_Rec("admin_penalty", "serious", d_new)).eligible_from == dt.date(2027, 5, 10)
    assert default_repair_eligibility(_Rec("admin_penalty", "serious", d_old)).eligible_from == dt.date(2025, 11, 10)
    assert default_repair_eligibility(_Rec("admin_penalty", "minor", d_new)).eligible_from is None
    assert default_repair_eligibility(_Rec("arrears", None, d_new)).eligible_from is None


def test_repair_flow(client, auth, world):
    # R1: general penalty of 2026-03-10 → eligible from 2026-06-10; R2: serious of 2026-06-01 → 2027-06-01
    e1 = client.get(f"/api/v1/subjects/{world.ent1}/records/R1/repair-eligibility", headers=auth("ent1")).json()
    e2 = client.get(f"/api/v1/subjects/{world.ent1}/records/R2/repair-eligibility", headers=auth("ent1")).json()
    assert e1["eligible"] and e1["eligible_from"] == "2026-06-10"
    assert not e2["eligible"] and e2["eligible_from"] == "2027-06-01"
    early = client.post(f"/api/v1/subjects/{world.ent1}/repairs", json={"record_id": "R2", "statement": "已整改完毕"},
                        headers=auth("ent1"))
    assert early.status_code == 409 and "2027-06-01" in early.json()["error"]["message"]
    app_ = client.post(f"/api/v1/subjects/{world.ent1}/repairs", json={"record_id": "R1", "statement": "已整改完毕"},
                       headers=auth("ent1"))
    assert app_.status_code == 201 and app_.json()["fee_cny"] == 0
    rid = app_.json()["id"]
    r = client.post(f"/api/v1/regulator/repairs/{rid}/decision",
                    json={"decision": "approved", "reason": "整改到位"}, headers=auth("reg_samr"))
    assert r.status_code == 200 and r.json()["reviewer"] == "reg_samr" and r.json()["decision_reason"] == "整改到位"
    r1 = next(x for x in client.get(f"/api/v1/subjects/{world.ent1}/records", headers=auth("ent1")).json()
          if x["record_id"] == "R1")
    assert r1["repaired"] and r1["repaired_on"] == "2026-11-23" and r1["version"] == 2
    assert client.get(f"/api/v1/subjects/{world.ent1}/grade", headers=auth("ent1")).json()["stale"]


def test_injected_eligibility_is_used(app, client, auth, world):
    from serving.deps import get_repair_eligibility
    from serving.services.repairs import Eligibility

    app.dependency_overrides[get_repair_eligibility] = lambda: (lambda rec: Eligibility(dt.date(2020, 1, 1), "test"))
    r = client.get(f"/api/v1/subjects/{world.ent1}/records/R3/repair-eligibility", headers=auth("ent1")).json()
    assert r["eligible"] and r["rule"] == "test"
