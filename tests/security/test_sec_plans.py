"""Coverage on every path: a department that may not read a subject through the subject
endpoints cannot see it through a plan, its downloads or its pages, cannot widen its access by
entering results, cannot backdate results, and cannot tell "absent" from "not yours"."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re

import openpyxl
import pytest
from srv_fixtures import ENT1, ENT2, TODAY, make_uscc

from serving.db.models import User
from serving.deps import get_today
from serving.security import Principal, hash_password
from serving.services.grades import store_grades
from serving.services.subjects import store_records, store_subjects

AS_OF = "2026-09-30"
ITEMS = """item_code,department,name_zh,name_en,key_item,industries
SAMR-03,samr,企业信息公示情况检查,Annual-report publicity,false,
FIRE-01,fire,消防安全检查,Fire safety,true,
"""
INSPECTORS = "inspector_id,name,department,district_code,qualified_items,capacity\n" + "".join(
    f"INS{n:06d},检查员{n},samr,320102,SAMR-03,50\n" for n in range(4)) + "".join(
    f"FIR{n:06d},消防员{n},fire,320102,FIRE-01,50\n" for n in range(4))
# fire has records about these subjects only (its coverage); the rest are D subjects it may not read
FIRE_COVERED = [make_uscc(f"91320102MF{n:07d}") for n in range(6)]
UNCOVERED = [make_uscc(f"91320102MU{n:07d}") for n in range(20)]


@pytest.fixture
def city(settings, session):
    data = settings.data_dir
    data.mkdir(parents=True, exist_ok=True)
    (data / "items.csv").write_text(ITEMS, encoding="utf-8")
    (data / "inspectors.csv").write_text(INSPECTORS, encoding="utf-8")
    subjects = [dict(uscc=u, name=f"消防对象{n}有限公司", industry="C", district_code="320102", district_name="玄武区",
                     registered_on="2015-03-01")
                for n, u in enumerate(FIRE_COVERED)]
    subjects += [dict(uscc=u, name=f"秘密企业{n}有限公司", industry="C", district_code="320102", district_name="玄武区",
                     registered_on="2015-03-01")
                 for n, u in enumerate(UNCOVERED)]
    store_subjects(session, subjects)
    store_grades(session, [dict(uscc=s["uscc"], as_of=AS_OF, score=500.0, grade="D", probability=0.4,
                                model_version="general-v3", profile_hash="d" * 64) for s in subjects])
    store_records(session, [dict(record_id=f"F{n}", uscc=u, kind="admin_penalty", severity="general",
                                 decision_date="2026-05-01", publicity_end="2027-05-01", amount=1000,
                                 department="fire") for n, u in enumerate(FIRE_COVERED)])
    session.add(User(username="reg_fire", password_hash=hash_password("not-used-here-1"), role="regulator",
                     department="fire", active=True))
    session.commit()
    return subjects


FIRE = Principal(username="reg_fire", role="regulator", department="fire")


@pytest.fixture
def fire(auth):
    return auth(FIRE)


def _plan(plan_id="fire-2026", item="FIRE-01", department="fire", start="2026-11-01", end="2026-12-31") -> dict:
    return {"plan_id": plan_id, "period_start": start, "period_end": end, "as_of": AS_OF,
            "tasks": [{"department": department, "item": item}]}


def _readable(client, headers, uscc) -> bool:
    r = client.get(f"/api/v1/subjects/{uscc}/grade", params={"purpose": "核对"}, headers=headers)
    return r.status_code == 200


def test_a_plan_never_shows_what_the_subject_endpoints_refuse(client, fire, city):
    created = client.post("/api/v1/plans", json=_plan(), headers=fire)
    assert created.status_code == 201, created.text
    plan_id = created.json()["id"]
    detail = client.get(f"/api/v1/plans/{plan_id}", headers=fire).json()
    shown = {v["uscc"] for v in detail["visits"]}
    assert shown, "the department's own subjects are drawn"
    assert all(_readable(client, fire, u) for u in shown)
    assert not shown & set(UNCOVERED)
    rows = list(csv.DictReader(io.StringIO(
        client.get(f"/api/v1/plans/{plan_id}/export.csv", headers=fire).content.decode("utf-8-sig"))))
    assert {r["uscc"] for r in rows} <= set(FIRE_COVERED)
    book = openpyxl.load_workbook(io.BytesIO(client.get(f"/api/v1/plans/{plan_id}/export.xlsx", headers=fire).content))
    cells = {str(c.value) for row in book["检查名单"].iter_rows() for c in row}
    assert not cells & set(UNCOVERED) and not any("秘密企业" in c for c in cells)


def test_entering_a_result_never_widens_access(client, fire, city):
    plan_id = client.post("/api/v1/plans", json=_plan(), headers=fire).json()["id"]
    visits = client.get(f"/api/v1/plans/{plan_id}", headers=fire).json()["visits"]
    target = next((v["uscc"] for v in visits if v["uscc"] in UNCOVERED), UNCOVERED[0])
    assert not _readable(client, fire, target)
    r = client.post(f"/api/v1/plans/{plan_id}/results", headers=fire, json={"results": [
        {"uscc": target, "inspection_item": "FIRE-01", "inspected_on": TODAY.isoformat(), "outcome": "no_problem"}]})
    assert r.status_code in (404, 422), r.text
    assert not _readable(client, fire, target)
    records = client.get(f"/api/v1/subjects/{target}/records", params={"purpose": "核对"}, headers=fire)
    assert records.status_code == 404


def test_backdated_and_out_of_period_results_are_refused(app, client, fire, city):
    plan_id = client.post("/api/v1/plans", json=_plan(), headers=fire).json()["id"]  # created on TODAY (11-23)
    drawn = client.get(f"/api/v1/plans/{plan_id}", headers=fire).json()["visits"][0]["uscc"]

    def post(on: str):
        return client.post(f"/api/v1/plans/{plan_id}/results", headers=fire, json={"results": [
            {"uscc": drawn, "inspection_item": "FIRE-01", "inspected_on": on, "outcome": "corrected"}]})

    assert post("2026-10-15").status_code == 422  # before the plan's period
    assert post("2026-11-10").status_code == 422  # in the period, but before the plan existed
    app.dependency_overrides[get_today] = lambda: dt.date(2027, 1, 10)
    assert post("2027-01-05").status_code == 422  # after the period
    ok = post("2026-12-05")
    assert ok.status_code == 200, ok.text
    body = post("2026-10-15").json()
    assert body["error"]["field"] == "inspected_on"


def test_plan_creation_is_rate_limited(client, fire, city):
    statuses = [client.post("/api/v1/plans", json=_plan(plan_id=f"burst-{n}"), headers=fire).status_code
                for n in range(40)]
    assert 429 in statuses and statuses[0] == 201
    refused = client.post("/api/v1/plans", json=_plan(plan_id="one-more"), headers=fire)
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1


def _same_404(a, b, id_a: str, id_b: str) -> None:
    assert a.status_code == b.status_code == 404
    assert a.json()["error"]["code"] == b.json()["error"]["code"]
    assert a.json()["error"]["message"].replace(id_a, "N") == b.json()["error"]["message"].replace(id_b, "N")


def test_absent_and_not_yours_answer_the_same_404(client, fire, auth, city):
    plan_id = client.post("/api/v1/plans", json=_plan(), headers=fire).json()["id"]
    for suffix in ("", "/verify", "/export.csv", "/export.xlsx"):
        other = client.get(f"/api/v1/plans/{plan_id}{suffix}", headers=auth("reg_tax"))
        absent = client.get(f"/api/v1/plans/999999{suffix}", headers=auth("reg_tax"))
        _same_404(other, absent, str(plan_id), "999999")
    absent_uscc = make_uscc("91320102MA9999998")
    for path in ("", "/grade", "/records"):
        other = client.get(f"/api/v1/subjects/{UNCOVERED[0]}{path}", params={"purpose": "核对"}, headers=fire)
        absent = client.get(f"/api/v1/subjects/{absent_uscc}{path}", params={"purpose": "核对"}, headers=fire)
        _same_404(other, absent, UNCOVERED[0], absent_uscc)
    # an objection addressed to samr, decided by another department
    objection = client.post(f"/api/v1/subjects/{ENT1}/objections", headers=auth("ent1"),
                            json={"record_id": "R1", "reason": "该处罚已被撤销，请核实"})
    assert objection.status_code == 201, objection.text
    oid = str(objection.json()["id"])
    decision = {"decision": "upheld", "reason": "核实无误"}
    other = client.post(f"/api/v1/regulator/objections/{oid}/decision", json=decision, headers=auth("reg_eco"))
    absent = client.post("/api/v1/regulator/objections/999999/decision", json=decision, headers=auth("reg_eco"))
    _same_404(other, absent, oid, "999999")


def test_the_plan_page_shows_no_uncovered_subject(client, app, fire, city):
    from serving.deps import SESSION_COOKIE
    from serving.security import create_access_token

    plan_id = client.post("/api/v1/plans", json=_plan(), headers=fire).json()["id"]
    token, _ = create_access_token(FIRE, app.state.settings.jwt_secret.get_secret_value(), 30)
    client.cookies.set(SESSION_COOKIE, token)
    page = client.get(f"/regulator/plans/{plan_id}")
    assert page.status_code == 200
    assert not set(re.findall(r"91320102MU\w{8}", page.text)) and "秘密企业" not in page.text
    for fmt in ("csv", "xlsx"):
        download = client.get(f"/regulator/plans/{plan_id}/export.{fmt}")
        assert download.status_code == 200
        if fmt == "csv":
            assert "秘密企业" not in download.content.decode("utf-8-sig")
    assert ENT2  # the seeded world is there too (ecology's subject), never in fire's plan
