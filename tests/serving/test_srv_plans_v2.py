"""tiers-draw-v2 through the API: commit → a second person's public salt → draw → bundle, full plan
and openings that `tiers plan verify` and the standard-library verifier accept."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select
from test_srv_plans_flow import _task, city, settings  # noqa: F401  (fixtures)

from serving.db.tables import Draw, QueryLogEntry

pytestmark = pytest.mark.usefixtures("city")
ROOT = Path(__file__).resolve().parents[2]
SOURCE = "福彩3D 第2026325期"


def commit(client, auth, user="reg_samr", **kw) -> dict:
    body = {**_task(items=("SAMR-03", "SAMR-02")), "salt_source": SOURCE, "salt_pattern": r"\d \d \d", **kw}
    r = client.post("/api/v1/plans/v2", json=body, headers=auth(user))
    assert r.status_code == 201, r.text
    return r.json()


def salt(client, auth, plan_id: int, user="reg_samr2", value="5 8 1", **kw):
    return client.post(f"/api/v1/plans/{plan_id}/salt", json={"value": value, **kw}, headers=auth(user))


def _write(path: Path, content: bytes | str) -> Path:
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


def _tiers_verify(*args: str) -> str:
    run = subprocess.run([sys.executable, "-m", "serving.cli.main", "plan", "verify", *args],
                         capture_output=True, text=True, timeout=120, cwd=ROOT)
    return run.stdout + run.stderr


def _stdlib_verify(*args: str) -> str:
    run = subprocess.run([sys.executable, "-I", str(ROOT / "verifier" / "tiers_draw_verify.py"), *args],
                         capture_output=True, text=True, timeout=120)
    return run.stdout + run.stderr


def test_commit_salt_draw_and_both_verifiers_match(client, auth, session, tmp_path):
    plan = commit(client, auth)
    assert plan["status"] == "committed" and plan["plan"] is None and plan["draw_seed_hex"] is None
    commitment = plan["commitment_v2"]
    assert commitment["salt_source"] == SOURCE
    secret = session.scalars(select(Draw).where(Draw.plan_id == plan["id"])).one().payload["v2_secret"]
    assert secret["seed"] not in json.dumps(plan) and secret["nonce_key"] not in json.dumps(plan)
    # the commitment is public at once, before any draw, without a login
    public = client.get(f"/public/plans/{plan['id']}/commitment.json")
    assert public.status_code == 200 and public.json() == commitment
    assert client.get(f"/api/v1/plans/{plan['id']}/bundle.json", headers=auth("reg_samr")).status_code == 404

    for path in ("/export.csv", "/export.xlsx", "/plan.json", "/bundle.json"):  # nothing drawn yet
        assert client.get(f"/api/v1/plans/{plan['id']}{path}", headers=auth("reg_samr")).status_code == 404
    early_result = {"uscc": "91320102MA1AAAAA11", "inspection_item": "SAMR-03", "inspected_on": "2026-12-01",
                    "outcome": "no_problem"}
    assert _post_results(client, auth, plan["id"], early_result).status_code == 422
    listed = client.get("/api/v1/plans", headers=auth("reg_samr")).json()
    assert [p["status"] for p in listed] == ["committed"]
    refused = salt(client, auth, plan["id"], user="reg_samr")
    assert refused.status_code == 403 and "创建" in refused.json()["error"]["message"]
    assert salt(client, auth, plan["id"], user="reg_tax").status_code == 404  # not its plan
    early = salt(client, auth, plan["id"], known_at="2020-01-01T00:00:00Z")
    assert early.status_code == 422 and early.json()["error"]["field"] == "known_at"

    drawn = salt(client, auth, plan["id"])
    assert drawn.status_code == 200, drawn.text
    drawn = drawn.json()
    assert drawn["status"] == "drawn" and drawn["salt"]["entered_by"] == "reg_samr2"
    assert commitment["committed_at"] < drawn["salt"]["known_at"] <= drawn["salt"]["entered_at"]
    assert drawn["plan"]["draws_total"] > 0 and drawn["draw_algorithm"] == "tiers-draw-v2"
    assert salt(client, auth, plan["id"]).status_code == 409
    # the secrets left the payload once drawn
    session.expire_all()
    stored = session.scalars(select(Draw).where(Draw.plan_id == plan["id"])).one()
    assert "v2_secret" not in stored.payload and "v2_snapshot" not in stored.payload

    bundle = client.get(f"/api/v1/plans/{plan['id']}/bundle.json", headers=auth("reg_samr"))
    assert bundle.status_code == 200
    text = bundle.text
    assert '"grade"' not in text and "pool" not in json.loads(text)["tasks"][0]
    b = _write(tmp_path / "bundle.json", bundle.content)
    c = _write(tmp_path / "commitment.json", json.dumps(commitment))
    assert _tiers_verify(str(b), "--commitment", str(c)).startswith("MATCH")
    assert _stdlib_verify(str(b), "--commitment", str(c)).startswith("MATCH")

    before = session.scalar(select(func.count(QueryLogEntry.seq)).where(QueryLogEntry.actor == "reg_samr"))
    full = client.get(f"/api/v1/plans/{plan['id']}/plan.json", headers=auth("reg_samr"))
    assert full.status_code == 200
    pool = {row[0] for t in full.json()["tasks"] for row in t["pool"]}
    session.expire_all()
    after = session.scalar(select(func.count(QueryLogEntry.seq)).where(QueryLogEntry.actor == "reg_samr"))
    assert after - before == len(pool)
    p = _write(tmp_path / "plan.json", full.content)
    assert _tiers_verify(str(p), "--commitment", str(c), "--bundle", str(b)).startswith("MATCH")
    assert _stdlib_verify(str(p), "--commitment", str(c), "--bundle", str(b)).startswith("MATCH")
    assert client.get(f"/api/v1/plans/{plan['id']}/verify", headers=auth("reg_samr")).json()["match"] is True

    # a tampered bundle fails, naming what is wrong
    tampered = json.loads(text)
    tampered["seed"] = "0" * 64
    t = _write(tmp_path / "tampered.json", json.dumps(tampered))
    assert _stdlib_verify(str(t), "--commitment", str(c)).startswith("MISMATCH: seed")


def test_salt_from_a_named_source_records_both_times(client, auth):
    plan = commit(client, auth)
    known = "2099-01-01T00:00:00Z"  # a publication time after now: entered before it was known → 422
    assert salt(client, auth, plan["id"], known_at=known).status_code == 422
    import datetime as dt

    just_now = (dt.datetime.now(dt.UTC)).isoformat()
    drawn = salt(client, auth, plan["id"], known_at=just_now)
    assert drawn.status_code == 200, drawn.text
    s = drawn.json()["salt"]
    assert s["source"] == SOURCE and s["known_at"] <= s["entered_at"]
    assert plan["commitment_v2"]["committed_at"] < s["known_at"]


def test_enterprise_opening_is_its_own_and_verifies(client, auth, world, session, tmp_path):
    plan = commit(client, auth)
    salt(client, auth, plan["id"])
    r = client.get(f"/api/v1/subjects/{world.ent1}/draw-openings", headers=auth("ent1"))
    assert r.status_code == 200, r.text
    openings = r.json()
    assert [o["plan_id"] for o in openings] == [plan["plan_id"]] and openings[0]["uscc"] == world.ent1
    # another subject's opening: answered like any subject it may not read (no existence oracle)
    assert client.get(f"/api/v1/subjects/{world.ent2}/draw-openings", headers=auth("ent1")).status_code in (403, 404)
    assert client.get(f"/api/v1/subjects/{world.ent1}/draw-openings", headers=auth("reg_samr")).status_code == 403
    session.expire_all()
    logged = session.scalar(select(func.count(QueryLogEntry.seq)).where(QueryLogEntry.actor == "ent1"))
    assert logged >= 1
    bundle = client.get(f"/api/v1/plans/{plan['id']}/bundle.json", headers=auth("reg_samr")).content
    b = _write(tmp_path / "bundle.json", bundle)
    o = _write(tmp_path / "opening.json", json.dumps(openings[0]))
    assert _tiers_verify(str(b), "--subject", world.ent1, "--opening", str(o)).startswith("MATCH")
    assert _stdlib_verify(str(b), "--subject", world.ent1, "--opening", str(o)).startswith("MATCH")


def test_opening_404_when_in_no_pool(client, auth, world):
    # no v2 plan drawn yet: the enterprise was in no pool
    r = client.get(f"/api/v1/subjects/{world.ent1}/draw-openings", headers=auth("ent1"))
    assert r.status_code == 404 and "名录库" in r.json()["error"]["message"]


def _drawn_plan_with_visits(client, auth) -> tuple[dict, list[dict]]:
    plan = commit(client, auth)
    assert salt(client, auth, plan["id"]).status_code == 200
    return plan, client.get(f"/api/v1/plans/{plan['id']}", headers=auth("reg_samr")).json()["visits"]


def _post_results(client, auth, plan_id: int, *rows: dict):
    return client.post(f"/api/v1/plans/{plan_id}/results", json={"results": list(rows)}, headers=auth("reg_samr"))


def test_a_second_result_is_a_correction_never_an_overwrite(client, auth, session):
    import datetime as dt

    from serving.db.tables import InspectionResult, Record
    from serving.deps import get_today

    plan, visits = _drawn_plan_with_visits(client, auth)
    client.app.dependency_overrides[get_today] = lambda: dt.date(2026, 12, 28)
    first = {"uscc": visits[0]["uscc"], "inspection_item": visits[0]["items"][0], "inspected_on": "2026-12-02",
             "outcome": "no_problem", "published_on": "2026-12-04"}
    assert _post_results(client, auth, plan["id"], first).status_code == 200
    # a different outcome without a reason: refused, nothing changes
    changed = {**first, "outcome": "case_opened", "published_on": None}
    refused = _post_results(client, auth, plan["id"], changed)
    assert refused.status_code == 422 and "更正" in refused.json()["error"]["message"]
    corrected = _post_results(client, auth, plan["id"], {**changed, "correction_reason": "复核发现台账未登记"})
    assert corrected.status_code == 200, corrected.text
    session.expire_all()
    rows = session.scalars(select(InspectionResult).where(InspectionResult.uscc == first["uscc"])
                           .order_by(InspectionResult.id)).all()
    assert [(r.outcome, r.published_on) for r in rows] == [("no_problem", dt.date(2026, 12, 4)), ("case_opened", None)]
    assert rows[1].payload["version"] == 2 and rows[1].payload["supersedes"] == rows[0].id
    assert rows[1].payload["correction_reason"] == "复核发现台账未登记" and rows[1].payload["recorded_by"] == "reg_samr"
    # the mirrored record is versioned with the reason, one current record
    records = session.scalars(select(Record).where(Record.uscc == first["uscc"], Record.kind == "inspection")
                              .order_by(Record.version)).all()
    assert [r.is_current for r in records] == [False, True] and records[1].change_reason.startswith("更正")
    # the plan shows both versions, the correction marked
    detail = client.get(f"/api/v1/plans/{plan['id']}", headers=auth("reg_samr")).json()
    mine = [r for r in detail["results"] if r["uscc"] == first["uscc"]]
    assert [(r["version"], r["outcome"], r["superseded"]) for r in mine] == [
        (1, "no_problem", True), (2, "case_opened", False)]
    # the published version stays published until the correction is published
    public = client.get("/public/samr")
    assert public.status_code == 200 and "未发现问题" in public.text and "复核发现台账未登记" not in public.text
    publish = _post_results(client, auth, plan["id"], {**changed, "published_on": "2026-12-20"})
    assert publish.status_code == 200, publish.text
    public = client.get("/public/samr").text
    assert "已立案" in public or "立案" in public
    assert "复核发现台账未登记" in public
    # history counts one inspection per visit (the superseded version is not a second visit)
    from serving.services.plans import history_frame

    history = history_frame(session)
    assert (history["uscc"] == first["uscc"]).sum() == 1


def test_public_department_page_and_csv(client, auth, session, tmp_path):
    import csv
    import datetime as dt
    import io

    from serving.db.tables import Subject
    from serving.deps import get_today

    plan, visits = _drawn_plan_with_visits(client, auth)
    client.app.dependency_overrides[get_today] = lambda: dt.date(2026, 12, 28)
    person = next((v for v in visits if "*" in v["name"]), None)
    company = next(v for v in visits if "*" not in v["name"])
    session.get(Subject, company["uscc"]).name = "=HYPERLINK(\"http://x\")公司"
    session.commit()
    rows = [{"uscc": v["uscc"], "inspection_item": v["items"][0], "inspected_on": "2026-12-02",
             "outcome": "corrected", "published_on": "2026-12-04"} for v in visits[:3]]
    unpublished = {**rows[-1], "published_on": None}
    assert _post_results(client, auth, plan["id"], *rows[:-1], unpublished).status_code == 200
    page = client.get("/public/samr")  # no login
    assert page.status_code == 200
    shown = set(re.findall(r'<tr class="public-result" data-uscc="(\w+)"', page.text))
    assert shown == {r["uscc"] for r in rows[:-1]}  # the unpublished one is not public
    assert "信用等级" not in page.text.replace("不公开任何信用等级", "") and "grade" not in page.text.lower()
    assert plan["commitment_v2"]["seed_commitment"] in page.text and "MATCH" in page.text
    if person is not None and person["uscc"] in shown:
        full_name = session.get(Subject, person["uscc"]).name
        assert full_name not in page.text
    csv_response = client.get("/public/samr/results.csv")
    table = list(csv.DictReader(io.StringIO(csv_response.content.decode("utf-8-sig"))))
    assert list(table[0]) == ["统一社会信用代码", "名称", "抽查事项", "检查日期", "检查结果", "文书号", "公示日期",
                              "更正说明", "抽查计划"]
    names = {r["统一社会信用代码"]: r["名称"] for r in table}
    if company["uscc"] in names:
        assert names[company["uscc"]].startswith("'=")
    assert client.get("/public/tax").status_code == 200 and client.get("/public/plans/999").status_code == 404
    bundle = client.get(f"/public/plans/{plan['id']}/bundle.json")
    assert bundle.status_code == 200 and '"grade"' not in bundle.text


def test_public_page_shows_the_commitment_before_the_draw(client, auth):
    plan = commit(client, auth)
    page = client.get(f"/public/plans/{plan['id']}")
    assert page.status_code == 200
    assert plan["commitment_v2"]["seed_commitment"] in page.text and "等待公开随机数" in page.text
    assert client.get(f"/public/plans/{plan['id']}/bundle.json").status_code == 404
    assert "Waiting" in client.get(f"/public/plans/{plan['id']}?lang=en").text or \
        "waits for the public salt" in client.get(f"/public/plans/{plan['id']}?lang=en").text


def test_enterprise_page_offers_its_openings(client, auth, world, tmp_path):
    from srv_fixtures import form_login

    plan = commit(client, auth)
    salt(client, auth, plan["id"])
    assert form_login(client, "ent1").status_code == 303
    page = client.get(f"/credit/{world.ent1}")
    assert 'id="draw-openings-link"' in page.text
    listing = client.get(f"/credit/{world.ent1}/draw-openings")
    assert listing.status_code == 200 and f'data-plan="{plan["id"]}"' in listing.text and "--opening" in listing.text
    file = client.get(f"/credit/{world.ent1}/draw-openings/{plan['id']}.json")
    assert file.status_code == 200 and file.json()["uscc"] == world.ent1
    assert client.get(f"/credit/{world.ent1}/draw-openings/{plan['id'] + 1}.json").status_code == 404
    assert client.get(f"/credit/{world.ent2}/draw-openings").status_code in (403, 404)
    # the downloaded file is what the verifier reads, with the public bundle
    o = _write(tmp_path / "opening.json", file.content)
    b = _write(tmp_path / "bundle.json", client.get(f"/public/plans/{plan['id']}/bundle.json").content)
    assert _stdlib_verify(str(b), "--subject", world.ent1, "--opening", str(o)).startswith("MATCH")
    client.cookies.clear()
    assert form_login(client, "reg_samr").status_code == 303
    assert client.get(f"/credit/{world.ent1}/draw-openings", params={"purpose": "日常监管核查"}).status_code == 403


def test_two_salts_at_once_store_one_draw(client, auth, session, monkeypatch):
    """Another salt is stored while this draw runs: this one is refused (409), the other kept."""
    import supervision.plan_v2 as plan_v2

    plan = commit(client, auth)
    original = plan_v2.create_plan_v2

    def draw_while_another_lands(*args, **kwargs):
        drawn = original(*args, **kwargs)
        other = session.scalars(select(Draw).where(Draw.plan_id == plan["id"])).one()
        other.draw_seed = "f" * 64
        session.commit()
        return drawn

    monkeypatch.setattr(plan_v2, "create_plan_v2", draw_while_another_lands)
    late = salt(client, auth, plan["id"])
    assert late.status_code == 409, late.text
    session.expire_all()
    kept = session.scalars(select(Draw).where(Draw.plan_id == plan["id"])).one()
    assert kept.draw_seed == "f" * 64 and "plan" not in kept.payload
