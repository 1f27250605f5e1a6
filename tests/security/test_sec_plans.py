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
from srv_fixtures import ENT1, ENT2, TODAY, add_subjects, make_uscc

from serving.db.tables import User
from serving.deps import get_today
from serving.security import Principal, hash_password
from serving.services.grades import store_grades
from serving.services.subjects import store_records

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
    add_subjects(session, subjects)
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


@pytest.mark.parametrize("field,value", [
    ("public_salt", "S" * 100_000),
    ("department", "fire" + "x" * 100_000),
    ("item", "FIRE-01" + "x" * 100_000),
    ("policy", "p" * 100_000),
    ("tasks", [{"department": "fire", "item": f"FIRE-{n:05d}"} for n in range(5000)]),
], ids=["public_salt", "department", "item", "policy", "tasks"])
def test_every_free_text_of_a_plan_request_is_bounded(client, fire, city, field, value):
    """Issue 14 finding 3: a 30 MB public_salt was stored; every text and list is bounded."""
    body = _plan()
    if field in ("department", "item"):
        body["tasks"][0][field] = value
    else:
        body[field] = value
    r = client.post("/api/v1/plans", json=body, headers=fire)
    assert r.status_code == 422, r.text[:300]


def test_a_result_published_in_the_future_is_refused(client, fire, city):
    """Issue 14 finding 6: published_on 2099 was accepted and shown in the public results.csv."""
    plan_id = client.post("/api/v1/plans", json=_plan(), headers=fire).json()["id"]
    drawn = client.get(f"/api/v1/plans/{plan_id}", headers=fire).json()["visits"][0]["uscc"]
    r = client.post(f"/api/v1/plans/{plan_id}/results", headers=fire, json={"results": [
        {"uscc": drawn, "inspection_item": "FIRE-01", "inspected_on": "2026-11-23", "outcome": "corrected",
         "published_on": "2099-01-01"}]})
    assert r.status_code == 422, r.text[:300]
    assert r.json()["error"]["field"].endswith("published_on")


def test_person_named_subjects_are_masked_in_every_output(client, fire, auth, city, session):
    """Issue 14 finding 5: individual businesses' names were masked in JSON and pages but shown in
    full in the CSV/XLSX exports and in /api/v1/regulator/subjects."""
    from serving.db.tables import Subject

    session.query(Subject).update({Subject.legal_form: "individual_business"})  # every subject named after a person
    session.commit()
    persons = {u: n for u, n, f in session.query(Subject.uscc, Subject.name, Subject.legal_form)
               if f in ("individual_business", "sole_proprietorship") and n and len(n) > 1}
    assert persons, "the fixture city has individual businesses"
    plan_id = client.post("/api/v1/plans", json=_plan(), headers=fire).json()["id"]
    csv_text = client.get(f"/api/v1/plans/{plan_id}/export.csv", headers=fire).content.decode("utf-8-sig")
    book = openpyxl.load_workbook(io.BytesIO(client.get(f"/api/v1/plans/{plan_id}/export.xlsx", headers=fire).content))
    xlsx_text = " ".join(str(c.value) for s in book.worksheets for row in s.iter_rows() for c in row)
    listed = client.get("/api/v1/regulator/subjects", headers=fire, params={"purpose": "检查", "limit": 200}).json()
    list_text = __import__("json").dumps(listed, ensure_ascii=False)
    for name in persons.values():
        assert name not in csv_text and name not in xlsx_text and name not in list_text, name


def test_failing_plan_requests_count_in_the_plan_rate_limit(app, client, fire, city):
    """Every plan request that reaches the service counts, refused or not: a burst of failing
    requests (another department's item, a duplicate id) costs the caller its quota too."""
    app.state.settings = app.state.settings.model_copy(update={"plans_per_hour": 3})
    assert client.post("/api/v1/plans", json=_plan(plan_id="ok-1"), headers=fire).status_code == 201
    not_ours = _plan(plan_id="theirs", item="SAMR-03", department="samr")
    assert client.post("/api/v1/plans", json=not_ours, headers=fire).status_code == 403
    assert client.post("/api/v1/plans", json=_plan(plan_id="ok-1"), headers=fire).status_code == 409
    refused = client.post("/api/v1/plans", json=_plan(plan_id="ok-2"), headers=fire)
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
    assert client.post("/api/v1/plans/v2", json=_plan(plan_id="ok-3"), headers=fire).status_code == 429


def test_inspection_ratios_are_rate_limited(app, client, fire, city):
    app.state.settings = app.state.settings.model_copy(update={"ratio_reads_per_hour": 2})
    params = {"department": "fire", "item": "FIRE-01", "as_of": AS_OF}
    statuses = [client.get("/api/v1/inspection-ratios", params=params, headers=fire).status_code for _ in range(3)]
    assert statuses[:2] != [429, 429] and statuses[2] == 429
    refused = client.get("/api/v1/inspection-ratios", params=params, headers=fire)
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
