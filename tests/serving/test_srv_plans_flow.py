"""双随机 plans through the API: ratio feed, commit-then-draw, verify, downloads, results, access."""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
from pathlib import Path

import openpyxl
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from srv_fixtures import add_subjects, make_uscc

from serving.db.tables import Draw, Plan, QueryLogEntry, Record
from serving.deps import get_today
from serving.services import plans as plan_service
from serving.services.grades import store_grades
from serving.services.subjects import store_records
from serving.services.users import create_api_key
from serving.settings import Settings
from supervision.inspection_policy import load_policy
from supervision.plan import FREQUENCY_LIMIT, PlanCreate, create_plan
from supervision.ratios import HttpRatioFeed, inspection_ratios

AS_OF = "2026-09-30"
GRADES = "AAAAAAAABBBBBBBBBBBBCCCCCCDDD"  # plus the three seeded subjects (C, A, ungraded)
ITEMS = """item_code,department,name_zh,name_en,key_item,industries
SAMR-03,samr,企业信息公示情况检查,Annual-report publicity,false,
SAMR-02,samr,产品质量监督抽查,Product quality spot check,true,C
ECO-01,ecology,排污许可检查,Discharge permits,true,F
"""
INSPECTORS = "inspector_id,name,department,district_code,qualified_items,capacity\n" + "".join(
    f"INS{n:06d},检查员{n},samr,32010{2 + n % 2},SAMR-02;SAMR-03,20\n" for n in range(6)
) + "INS000100,生态员,ecology,320102,ECO-01,20\nINS000101,生态员二,ecology,320104,ECO-01,20\n"


def _extra_subjects() -> list[dict]:
    return [dict(uscc=make_uscc(f"91320102MA{n:07d}"), name=f"南京测试{n}有限公司", industry="C" if n % 2 else "G",
                 district_code="320102" if n % 3 else "320104", district_name="玄武区" if n % 3 else "秦淮区",
                 legal_form="individual_business" if n == 0 else "llc", registered_on="2015-03-01")
            for n in range(len(GRADES))]


def store_graded_city(session) -> list[dict]:
    """Store the thirty extra subjects with their GRADES as of AS_OF; return the subjects."""
    subjects = _extra_subjects()
    add_subjects(session, subjects)
    store_grades(session, [dict(uscc=s["uscc"], as_of=AS_OF, score=700.0, grade=g, probability=0.05,
                                model_version="general-v3", profile_hash="c" * 64)
                           for s, g in zip(subjects, GRADES, strict=True)])
    return subjects


def write_scheduler_data(data_dir: Path) -> Path:
    """The scheduler's data directory: inspection items and inspectors."""
    data_dir.mkdir(exist_ok=True)
    (data_dir / "items.csv").write_text(ITEMS, encoding="utf-8")
    (data_dir / "inspectors.csv").write_text(INSPECTORS, encoding="utf-8")
    return data_dir


@pytest.fixture
def settings(database_url, tmp_path) -> Settings:
    data_dir = write_scheduler_data(tmp_path / "data")
    subjects = _extra_subjects()
    (data_dir / "conflicts.csv").write_text(f"inspector_id,uscc,reason\nINS000001,{subjects[-1]['uscc']},relative\n",
                                            encoding="utf-8")
    return Settings(database_url=database_url, run_migrations_on_startup=False, data_dir=data_dir,
                    keys_dir=tmp_path / "keys")


@pytest.fixture
def city(session, settings):
    """Thirty more graded subjects next to the seeded three."""
    return store_graded_city(session)


def _task(plan_id="2026Q4-samr", items=("SAMR-03",), department="samr", **extra) -> dict:
    return {"plan_id": plan_id, "period_start": "2026-12-01", "period_end": "2026-12-31", "as_of": AS_OF,
            "tasks": [{"department": department, "item": i} for i in items], **extra}


def _create(client, auth, **kw) -> dict:
    response = client.post("/api/v1/plans", json=_task(**kw), headers=auth("reg_samr"))
    assert response.status_code == 201, response.text
    return response.json()


def _data_dir(client: TestClient):
    return client.app.state.settings.data_dir


def _log_count(session, actor: str, outcome: str = "allowed") -> int:
    session.expire_all()
    return session.scalar(select(func.count(QueryLogEntry.seq)).where(QueryLogEntry.actor == actor,
                                                                      QueryLogEntry.outcome == outcome))


def test_ratio_feed_follows_the_policy(client, auth, city, session):
    r = client.get("/api/v1/inspection-ratios", params={"department": "samr", "item": "SAMR-03", "as_of": AS_OF},
                   headers=auth("reg_samr"))
    assert r.status_code == 200, r.text
    feed = r.json()
    # all 32 active subjects are in the pool; ENT3 has no grade and is drawn as the policy's B
    counts = {g: GRADES.count(g) for g in "ABCD"}
    counts["A"] += 1
    counts["C"] += 1
    counts["B"] += 1
    by_grade = {g: sum(s["pool_size"] for s in feed["strata"] if s["grade"] == g) for g in "ABCD"}
    assert by_grade == counts and feed["pool_size"] == sum(counts.values())
    assert feed["as_of"] == AS_OF and feed["model_version"] == "general-v3"
    policy = load_policy("default")
    expected = inspection_ratios({"A": counts["A"], "B": counts["B"], "C": counts["C"], "D": counts["D"]},
                                 rules=policy.rules_for("samr", "SAMR-03", key_item=False), policy=policy,
                                 department="samr", item="SAMR-03", as_of=dt.date(2026, 9, 30),
                                 model_version="general-v3")
    assert feed == expected.model_dump(mode="json")
    for s in feed["strata"]:
        assert s["ratio"] >= feed["floor_ratio"]
        assert s["expected_inspections"] == math.ceil(s["pool_size"] * s["ratio_ppm"] / 1_000_000 - 1e-12)
    # a general item never exceeds its cap (here the floor of 1 % per stratum may still dominate)
    assert feed["expected_inspections"] <= max(math.ceil(feed["pool_size"] * feed["general_cap"]),
                                               sum(1 for s in feed["strata"] if s["pool_size"]))


def test_ratio_feed_access_and_http_client(client, auth, city, session):
    params = {"department": "samr", "item": "SAMR-03", "as_of": AS_OF}
    assert client.get("/api/v1/inspection-ratios", params=params, headers=auth("reg_tax")).status_code == 403
    assert client.get("/api/v1/inspection-ratios", params=params, headers=auth("ent1")).status_code == 403
    _, key = create_api_key(session, "admin", "双随机平台")
    by_key = client.get("/api/v1/inspection-ratios", params=params, headers={"X-API-Key": key})
    assert by_key.status_code == 200
    token = auth("reg_samr")["Authorization"].removeprefix("Bearer ")
    feed = HttpRatioFeed(base_url="http://testserver", token=token, client=client)
    got = feed.inspection_ratios(department="samr", item="SAMR-03", as_of=dt.date(2026, 9, 30))
    assert got.model_dump(mode="json") == by_key.json()
    # the scheduler drawing with ratios read over HTTP draws exactly what it draws in-process
    request = PlanCreate(plan_id="http", period_start=dt.date(2026, 12, 1), period_end=dt.date(2026, 12, 31),
                         as_of=dt.date(2026, 9, 30), tasks=[{"department": "samr", "item": "SAMR-03"}])
    inputs = plan_service.plan_inputs(session, _data_dir(client), request.as_of)
    policy, seed = load_policy("default"), bytes(range(32))
    over_http = create_plan(request, inputs, policy, seed, feed=feed)
    in_process = create_plan(request, inputs, policy, seed)
    assert over_http.model_dump() == in_process.model_dump()
    bad = client.get("/api/v1/inspection-ratios", params={**params, "as_of": "2026-06-30"}, headers=auth("reg_samr"))
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "as_of"


def test_plan_commit_draw_verify_and_tamper(client, auth, city, session):
    plan = _create(client, auth, items=("SAMR-03", "SAMR-02"))
    commitment = plan["published_commitment"]
    assert plan["plan"]["commitment"] == commitment and plan["status"] == "drawn"
    assert set(commitment["pool_hashes"]) == {"samr/SAMR-03", "samr/SAMR-02"}
    import hashlib
    assert hashlib.sha256(bytes.fromhex(plan["draw_seed_hex"])).hexdigest() == commitment["draw_seed_commitment"]
    assert plan["committed_at"] <= plan["revealed_at"]

    verify = client.get(f"/api/v1/plans/{plan['id']}/verify", headers=auth("reg_samr")).json()
    assert verify["match"] is True and verify["first_difference"] is None

    before = _log_count(session, "reg_samr")
    detail = client.get(f"/api/v1/plans/{plan['id']}", headers=auth("reg_samr")).json()
    visits = detail["visits"]
    assert visits and [v["visit_order"] for v in visits] == list(range(1, len(visits) + 1))
    assert _log_count(session, "reg_samr") == before + len(visits)
    assert sum(g["drawn"] for g in detail["plan"]["per_grade"]) == detail["plan"]["draws_total"]
    person_named = city[0]["uscc"]
    for v in visits:
        assert v["inspectors"] or v["unstaffed"]
        assert (v["name"] != city[0]["name"]) if v["uscc"] == person_named else ("*" not in v["name"])

    # tamper with one stored subject: its grade in the published pool changes
    draw = session.scalars(select(Draw).where(Draw.plan_id == plan["id"])).one()
    payload = {**draw.payload, "plan": {**draw.payload["plan"]}}
    task = dict(payload["plan"]["tasks"][0])
    first = list(task["pool"][0])
    first[1] = "D" if first[1] != "D" else "A"
    task["pool"] = [first, *task["pool"][1:]]
    payload["plan"]["tasks"] = [task, *payload["plan"]["tasks"][1:]]
    draw.payload = payload
    session.commit()
    verify = client.get(f"/api/v1/plans/{plan['id']}/verify", headers=auth("reg_samr")).json()
    assert verify["match"] is False and verify["first_difference"].startswith("pool_hash")


def test_downloads_parse_and_are_logged(client, auth, city, session):
    plan = _create(client, auth)
    detail = client.get(f"/api/v1/plans/{plan['id']}", headers=auth("reg_samr")).json()
    before = _log_count(session, "reg_samr")
    r = client.get(f"/api/v1/plans/{plan['id']}/export.csv", headers=auth("reg_samr"))
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert [row["uscc"] for row in rows] == [v["uscc"] for v in detail["visits"]]
    x = client.get(f"/api/v1/plans/{plan['id']}/export.xlsx", headers=auth("reg_samr"))
    book = openpyxl.load_workbook(io.BytesIO(x.content))
    assert {"检查名单", "汇总", "承诺"} <= set(book.sheetnames)
    assert book["检查名单"].max_row == len(rows) + 1
    assert _log_count(session, "reg_samr") == before + 2 * len(rows)


def test_results_become_inspection_records_and_public_csv_hides_grades(client, auth, city, session):
    plan = _create(client, auth)  # on TODAY (2026-11-23), for December
    visits = client.get(f"/api/v1/plans/{plan['id']}", headers=auth("reg_samr")).json()["visits"]
    first, second = visits[0], visits[1]
    late = dt.date(2026, 12, 28)
    client.app.dependency_overrides[get_today] = lambda: late  # results come in during the period
    body = {"results": [
        {"uscc": first["uscc"], "inspection_item": "SAMR-03", "inspected_on": "2026-12-02", "outcome": "corrected",
         "published_on": "2026-12-04", "document_no": "宁市监检〔2026〕1号"},
        {"uscc": second["uscc"], "inspection_item": "SAMR-03", "inspected_on": "2026-12-01", "outcome": "no_problem"},
    ]}
    r = client.post(f"/api/v1/plans/{plan['id']}/results", json=body, headers=auth("reg_samr"))
    assert r.status_code == 200, r.text
    out = {x["uscc"]: x for x in r.json()}
    assert out[first["uscc"]]["publication_deadline"] == "2026-12-22"
    assert out[first["uscc"]]["publication_status"] == "published"
    assert out[second["uscc"]]["publication_status"] == "overdue"  # 2026-12-21 < 2026-12-28
    session.expire_all()
    records = session.scalars(select(Record).where(Record.kind == "inspection", Record.is_current)).all()
    assert {(rec.uscc, rec.subkind, rec.department) for rec in records} == {
        (first["uscc"], "corrected", "samr"), (second["uscc"], "no_problem", "samr")}
    assert all("SAMR-03" in rec.description for rec in records)  # the item survives in the record
    # posting again (now published) updates the result and versions the record, never duplicates
    body["results"][1]["published_on"] = late.isoformat()
    client.post(f"/api/v1/plans/{plan['id']}/results", json=body, headers=auth("reg_samr"))
    session.expire_all()
    assert session.scalar(select(func.count(Record.id)).where(Record.kind == "inspection", Record.is_current)) == 2

    public = client.get(f"/api/v1/plans/{plan['id']}/results.csv")
    rows = list(csv.DictReader(io.StringIO(public.content.decode("utf-8-sig"))))
    assert {row["统一社会信用代码"] for row in rows} == {first["uscc"], second["uscc"]}
    assert not any("grade" in column or "等级" in column for column in rows[0])
    assert all(row["检查结果"] in {"未发现问题", "发现问题已责令改正", "发现问题已立案"} for row in rows)

    not_drawn = {"results": [{**body["results"][0], "uscc": make_uscc("91320102MA9999999")}]}
    bad = client.post(f"/api/v1/plans/{plan['id']}/results", json=not_drawn, headers=auth("reg_samr"))
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "uscc"


def test_other_departments_and_enterprises_cannot_read_plans(client, auth, city, session):
    plan = _create(client, auth)
    for user, status in (("reg_tax", 404), ("ent1", 403)):  # another department: as if absent
        for path in ("", "/verify", "/export.csv", "/export.xlsx"):
            assert client.get(f"/api/v1/plans/{plan['id']}{path}", headers=auth(user)).status_code == status
        assert _log_count(session, user) == 0
    assert client.get("/api/v1/plans", headers=auth("reg_tax")).json() == []
    joint = client.post("/api/v1/plans", json=_task(plan_id="eco", items=("SAMR-03",)), headers=auth("reg_eco"))
    assert joint.status_code == 403 and joint.json()["error"]["field"] == "tasks"
    seeded = client.post("/api/v1/plans", json=_task(plan_id="x", seed_hex="0" * 64), headers=auth("reg_samr"))
    assert seeded.status_code == 422 and "seed_hex" in seeded.json()["error"]["message"]
    path_policy = client.post("/api/v1/plans", json=_task(plan_id="y", policy="../../etc/x.toml"),
                              headers=auth("reg_samr"))
    assert path_policy.status_code == 422


def test_failure_after_the_draw_leaves_no_plan(app, auth, city, session, monkeypatch):
    real_draw = plan_service.draw_plan

    def draw_then_die(*args, **kwargs):
        real_draw(*args, **kwargs)
        raise RuntimeError("process died after the draw")

    monkeypatch.setattr(plan_service, "draw_plan", draw_then_die)
    client = TestClient(app, raise_server_exceptions=False)
    assert client.post("/api/v1/plans", json=_task(), headers=auth("reg_samr")).status_code == 500
    session.expire_all()
    assert session.scalar(select(func.count(Plan.id))) == 0 and session.scalar(select(func.count(Draw.id))) == 0


def test_missing_data_dir_is_a_clear_503(client, auth, city, settings, tmp_path):
    (settings.data_dir / "inspectors.csv").unlink()
    r = client.post("/api/v1/plans", json=_task(), headers=auth("reg_samr"))
    assert r.status_code == 503 and r.json()["error"]["field"] == "inspectors"


def test_demo_plan_is_reproducible_and_verifies(session, settings, city):
    notes = [plan_service.create_demo_plan(session, settings, city=settings.data_dir, as_of=dt.date(2026, 9, 30),
                                           seed=7) for _ in range(2)]
    assert all("verify MATCH" in n for n in notes)
    first, second = session.scalars(select(Draw).order_by(Draw.id)).all()
    assert first.payload["plan"]["visits"] == second.payload["plan"]["visits"]  # same demo seed, same draw


def test_service_plans_use_its_complaints_as_leads_and_its_inspections_as_history(client, auth, city, session):
    """The service's own records feed the scheduler: a complaint lifts an A subject into A_lead,
    two recent inspections by the department hit the frequency limit, and the last team recorded
    for a subject is recused from its next visit."""
    a_subjects = [s["uscc"] for s, g in zip(city, GRADES, strict=True) if g == "A"]
    complained, inspected_twice = a_subjects[0], a_subjects[1]
    store_records(session, [
        dict(record_id="CMP-1", uscc=complained, kind="complaint", decision_date="2026-10-01", department="samr"),
        *(dict(record_id=f"INS-{n}", uscc=inspected_twice, kind="inspection", subkind="no_problem",
               decision_date=f"2026-0{n + 3}-01", department="samr") for n in range(2)),
    ])
    inputs = plan_service.plan_inputs(session, _data_dir(client), dt.date.fromisoformat(AS_OF))
    assert (complained, "samr") in set(zip(inputs.leads["uscc"], inputs.leads["department"], strict=True))
    assert (inputs.history["uscc"] == inspected_twice).sum() == 2

    plan = client.get(f"/api/v1/plans/{_create(client, auth)['id']}", headers=auth("reg_samr")).json()
    session.expire_all()
    task = plan_service.stored_plan(session.scalars(select(Draw).where(Draw.plan_id == plan["id"])).one()).tasks[0]
    assert [uscc for uscc, _grade, lead in task.pool if lead] == [complained]
    assert {e.uscc: e.reason for e in task.excluded}.get(inspected_twice) == FREQUENCY_LIMIT

    # a recorded result keeps its team, and the next plan does not send that team back (a key
    # item: no general-item cap, so a D subject is drawn again for sure)
    key_plan = _create(client, auth, plan_id="2026Q4-key", items=("SAMR-02",))
    visits = client.get(f"/api/v1/plans/{key_plan['id']}", headers=auth("reg_samr")).json()["visits"]
    visit = next(v for v in visits if v["grade"] == "D")
    client.app.dependency_overrides[get_today] = lambda: dt.date(2026, 12, 15)
    r = client.post(f"/api/v1/plans/{key_plan['id']}/results", headers=auth("reg_samr"), json={"results": [
        {"uscc": visit["uscc"], "inspection_item": "SAMR-02", "inspected_on": "2026-12-10", "outcome": "no_problem"}]})
    assert r.status_code == 200, r.text
    history = plan_service.history_frame(session)
    last_team = history.loc[history["uscc"] == visit["uscc"], "inspector_ids"].tolist()
    assert last_team == [";".join(visit["inspectors"])]
    later = _task(plan_id="2027Q1-key", items=("SAMR-02",)) | {"period_start": "2027-01-01", "period_end": "2027-01-31"}
    nxt = client.post("/api/v1/plans", json=later, headers=auth("reg_samr"))
    assert nxt.status_code == 201, nxt.text
    again = client.get(f"/api/v1/plans/{nxt.json()['id']}", headers=auth("reg_samr")).json()["visits"]
    revisit = next(v for v in again if v["uscc"] == visit["uscc"])
    assert revisit["inspectors"] and not set(revisit["inspectors"]) & set(visit["inspectors"])
