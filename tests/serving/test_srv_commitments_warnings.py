"""Issue 20, items 1 and 3: 信用承诺 signed online, shown publicly, found kept or broken by the
department (a broken one becomes a counted, repairable record, a lead and a warning); 预警 after
each ingest and grading, one open per subject and cause, shown only to the staff who cover the
subject, acknowledged, closed and downloaded as CSV. Tenancy: another enterprise's commitments,
another department's commitments and warnings."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from srv_fixtures import TODAY, World, keyed_copy, principal

from serving.app import create_app
from serving.db.session import dispose_engine
from serving.db.tables import RiskWarning
from serving.deps import get_today
from serving.security import create_access_token, csrf_token, decode_access_token
from serving.services.grades import store_grades
from serving.services.plans import leads_frame
from serving.services.querylog import list_entries
from serving.services.subjects import store_records
from supervision.leads import open_leads

# the module fixture (app, database, models) is built once, on one worker
pytestmark = pytest.mark.xdist_group("commitments_warnings")

# One app and one database for the module (a new app's first request costs ≈ 2 s): each test
# works on its own subjects, matters and causes, so they hold in any order and on any worker.


@pytest.fixture(scope="module")
def _mod(_template_db, tmp_path_factory):
    _dir, url, settings = keyed_copy(_template_db, tmp_path_factory, "commitments_warnings")
    app = create_app(settings)
    app.dependency_overrides[get_today] = lambda: TODAY
    yield app, settings
    dispose_engine(url)


@pytest.fixture(scope="module")
def app(_mod):
    return _mod[0]


@pytest.fixture(scope="module")
def settings(_mod):
    return _mod[1]


@pytest.fixture(scope="module")
def database_url(settings):
    return settings.database_url


@pytest.fixture(autouse=True)
def _log_keys():  # the module's keys are registered once, above
    return None


@pytest.fixture(scope="module")
def client(app):
    return TestClient(app)


@pytest.fixture(scope="module")
def world():
    return World()


@pytest.fixture(scope="module")
def auth(settings):
    def headers(username: str) -> dict[str, str]:
        token, _ = create_access_token(principal(username), settings.jwt_key, 30)
        return {"Authorization": f"Bearer {token}"}

    return headers

SIGN = "/api/v1/commitments/subjects/{}"
DAY = TODAY - dt.timedelta(days=3)


def _sign(client, auth, uscc, matter, who="ent1"):
    return client.post(SIGN.format(uscc), json={"matter_code": matter}, headers=auth(who))


def _warnings(client, auth, who, **params):
    r = client.get("/api/v1/warnings", params={"purpose": "风险预警处置", **params}, headers=auth(who))
    assert r.status_code == 200, r.text
    return r.json()


def _cookie(client, settings, username: str) -> str:
    """Log ``username`` in on the pages (session cookie); returns the forms' CSRF token."""
    token, _ = create_access_token(principal(username), settings.jwt_key, 30)
    client.cookies.set("tiers_session", token)
    return csrf_token(settings.jwt_key, decode_access_token(token, settings.jwt_key).token_id)


def test_sign_own_only_and_the_public_list(client, auth, world):
    r = _sign(client, auth, world.ent1, "samr-quality-public")
    assert r.status_code == 201, r.text
    signed = r.json()
    assert signed["status"] == "pending" and signed["kind"] == "主动公示型" and "产品质量" in signed["text"]
    assert signed["due_on"] == str(TODAY + dt.timedelta(days=365))
    assert _sign(client, auth, world.ent1, "samr-food-licence").status_code == 201  # 审批替代型: not public
    # once pending per matter; another enterprise's USCC: the same 404 as an unknown one; staff may not sign
    again = _sign(client, auth, world.ent1, "samr-quality-public")
    assert again.status_code == 409 and "重复" in again.json()["error"]["message"]
    assert _sign(client, auth, world.ent2, "samr-quality-public").status_code == 404
    assert _sign(client, auth, world.ent1, "samr-quality-public", who="reg_samr").status_code == 403
    unknown = _sign(client, auth, world.ent1, "no-such-matter")
    assert unknown.status_code == 422 and unknown.json()["error"]["field"] == "matter_code"
    # public: no login, only 主动公示型, never a grade
    public = client.get("/api/v1/commitments/public").json()
    assert (world.ent1, "主动公示型") in [(c["uscc"], c["kind"]) for c in public]
    assert {c["kind"] for c in public} == {"主动公示型"}
    assert public[0]["name"] == "南京甲制造有限公司" and "grade" not in public[0]
    page = client.get("/commitments/public")
    assert page.status_code == 200 and "产品质量信用承诺" in page.text and "食品经营许可" not in page.text
    assert len(client.get("/api/v1/commitments/matters").json()) == 4
    # the subject's own list: the owner and covering staff; another enterprise cannot read it
    mine = client.get(SIGN.format(world.ent1), headers=auth("ent1")).json()
    assert {"samr-quality-public", "samr-food-licence"} <= {c["matter_code"] for c in mine}
    assert client.get(SIGN.format(world.ent1), params={"purpose": "日常监管"}, headers=auth("reg_samr")).status_code == 200
    assert client.get(SIGN.format(world.ent1), headers=auth("ent2")).status_code == 404
    # signing wrote the made records into the credit file
    records = client.get(f"/api/v1/subjects/{world.ent1}/records", headers=auth("ent1")).json()
    assert {r["record_id"] for r in records if r["kind"] == "commitment_made"} >= {
        f"CMT{c['id']:09d}-M" for c in mine}


def test_broken_commitment_becomes_a_counted_record_a_lead_and_a_warning(client, auth, world, session):
    cid = _sign(client, auth, world.ent2, "samr-repair", who="ent2").json()["id"]
    url = f"/api/v1/commitments/{cid}/decision"
    body = {"outcome": "broken", "basis": "修复后再次发生同类违法行为", "breach": "repeat_offence",
            "document_no": "宁市监承〔2026〕5号"}
    # another department: the same 404 as an absent commitment; an enterprise: refused by role
    assert client.post(url, json=body, headers=auth("reg_eco")).status_code == 404
    assert client.post(url, json=body, headers=auth("ent2")).status_code == 403
    assert cid not in [c["id"] for c in client.get("/api/v1/commitments/department", headers=auth("reg_eco")).json()]
    assert cid in [c["id"] for c in client.get("/api/v1/commitments/department", headers=auth("reg_samr")).json()]
    # the breach and the document number are required, in Chinese, naming the field
    no_breach = client.post(url, json={**body, "breach": None}, headers=auth("reg_samr"))
    assert no_breach.status_code == 422 and no_breach.json()["error"]["field"] == "breach"
    no_doc = client.post(url, json={**body, "document_no": None}, headers=auth("reg_samr"))
    assert no_doc.status_code == 422 and no_doc.json()["error"]["field"] == "document_no"
    assert "文书号" in no_doc.json()["error"]["message"]
    r = client.post(url, json=body, headers=auth("reg_samr"))
    assert r.status_code == 200, r.text
    decided = r.json()
    assert decided["status"] == "broken" and decided["record_id"] == f"CMT{cid:09d}-B"
    assert client.post(url, json=body, headers=auth("reg_samr")).status_code == 409
    # the record: counted by the catalogue (commitment_broken), repairable by its rules (3 months)
    records = {x["record_id"]: x for x in
               client.get(f"/api/v1/subjects/{world.ent2}/records", headers=auth("ent2")).json()}
    record = records[decided["record_id"]]
    assert record["kind"] == "commitment_broken" and record["department"] == "samr"
    assert record["document_no"] == "宁市监承〔2026〕5号" and "同类违法" in record["description"]
    elig = client.get(f"/api/v1/subjects/{world.ent2}/records/{decided['record_id']}/repair-eligibility",
                      headers=auth("ent2")).json()
    assert elig["eligible_from"] == "2027-02-23" and not elig["eligible"]
    # an open lead of the department that found it (the A_lead stratum of its next plan), not of others
    leads = leads_frame(session)
    period = dict(period_start=TODAY, period_end=TODAY + dt.timedelta(days=30), window_days=90)
    assert world.ent2 in open_leads(leads, None, department="samr", **period)
    assert world.ent2 not in open_leads(leads, None, department="tax", **period)
    # and a warning, with the record behind it
    found = [w for w in _warnings(client, auth, "reg_samr") if w["cause"] == "commitment_broken"]
    assert [(w["uscc"], w["record_ids"]) for w in found] == [(world.ent2, [decided["record_id"]])]


def test_kept_commitment_writes_the_kept_record(client, auth, world):
    cid = _sign(client, auth, world.ent1, "tax-self-discipline").json()["id"]
    r = client.post(f"/api/v1/commitments/{cid}/decision", json={"outcome": "kept", "basis": "按期申报无欠税"},
                    headers=auth("reg_tax"))
    assert r.status_code == 200 and r.json()["status"] == "kept"
    kinds = {x["record_id"]: x["kind"] for x in
             client.get(f"/api/v1/subjects/{world.ent1}/records", headers=auth("ent1")).json()}
    assert kinds[r.json()["record_id"]] == "commitment_kept"


def test_due_reminders_on_the_enterprise_page(client, auth, world, app, settings):
    _sign(client, auth, world.ent2, "samr-food-licence", who="ent2")  # due in 90 days
    _cookie(client, settings, "ent2")
    try:
        assert "commitment-reminder" not in client.get(f"/credit/{world.ent2}").text
        app.dependency_overrides[get_today] = lambda: TODAY + dt.timedelta(days=70)
        page = client.get(f"/credit/{world.ent2}").text
        assert "信用承诺到期提醒" in page and "食品经营许可告知承诺" in page
    finally:
        app.dependency_overrides[get_today] = lambda: TODAY
        client.cookies.clear()


def _record(rid: str, uscc: str, department: str, kind: str = "admin_penalty", severity: str | None = "serious") -> dict:
    return dict(record_id=rid, uscc=uscc, kind=kind, severity=severity, decision_date=DAY,
                department=department, document_no=f"罚〔2026〕{rid}号")


def test_ingest_warnings_one_open_per_subject_and_cause_and_department_isolation(client, auth, world, session):
    store_records(session, [_record("W1", world.ent2, "ecology")], today=TODAY)
    store_records(session, [_record("W2", world.ent2, "ecology")], today=TODAY)
    eco = [w for w in _warnings(client, auth, "reg_eco") if w["uscc"] == world.ent2 and w["cause"] == "serious_record"]
    assert [(w["record_ids"], w["status"]) for w in eco] == [(["W1", "W2"], "open")]
    wid = eco[0]["id"]
    # tax issued no record about ent2: it neither sees nor handles the warning (the same 404 as none)
    assert all(w["uscc"] != world.ent2 for w in _warnings(client, auth, "reg_tax"))
    assert client.post(f"/api/v1/warnings/{wid}/acknowledge", headers=auth("reg_tax")).status_code == 404
    assert client.post(f"/api/v1/warnings/{wid}/close", json={"note": "已处理"},
                       headers=auth("reg_tax")).status_code == 404
    assert client.get("/api/v1/warnings", params={"purpose": "看看"}, headers=auth("ent2")).status_code == 403
    assert client.get("/api/v1/warnings", headers=auth("reg_eco")).status_code == 422  # purpose required
    # every subject shown is logged as read
    assert list_entries(session, uscc=world.ent2, actor="reg_eco", limit=10)[1]
    # samr covers the whole city and sees it, but it is ecology's to handle
    assert any(w["id"] == wid for w in _warnings(client, auth, "reg_samr"))
    refused = client.post(f"/api/v1/warnings/{wid}/acknowledge", headers=auth("reg_samr"))
    assert refused.status_code == 403 and "ecology" in refused.json()["error"]["message"]
    ack = client.post(f"/api/v1/warnings/{wid}/acknowledge", headers=auth("reg_eco"))
    assert ack.status_code == 200 and ack.json()["status"] == "acknowledged"
    assert client.post(f"/api/v1/warnings/{wid}/acknowledge", headers=auth("reg_eco")).status_code == 409
    closed = client.post(f"/api/v1/warnings/{wid}/close", json={"note": "已约谈并立案调查"}, headers=auth("reg_eco"))
    assert closed.status_code == 200 and closed.json()["closed_by"] == "reg_eco"
    # closed: the next serious record raises a new warning; the old one stays closed
    store_records(session, [_record("W3", world.ent2, "ecology")], today=TODAY)
    rows = [(w.status, w.record_ids) for w in session.query(RiskWarning).filter_by(uscc=world.ent2,
                                                                                    cause="serious_record")
            .order_by(RiskWarning.id)]
    assert rows == [("closed", ["W1", "W2"]), ("open", ["W3"])]


def _grade(uscc, as_of, grade, probability, reasons=()):
    return dict(uscc=uscc, as_of=as_of, score=600.0, grade=grade, probability=probability,
                model_version="general-v4", profile_hash="c" * 64, base_score=700.0, reasons=list(reasons))


def test_grading_warnings_from_store_grades_and_the_bulk_load(client, auth, world, session, database_url):
    from serving.db.session import engine_for
    from serving.services.bulk import load_grades

    reason = dict(code="penalty", label_zh="处罚", contribution=-40.0, value=1, record_ids=["R4"])
    store_grades(session, [_grade(world.ent2, "2026-10-31", "C", 0.20, [reason])])  # was A, 0.02
    causes = {w["cause"]: w for w in _warnings(client, auth, "reg_eco") if w["uscc"] == world.ent2}
    assert {"grade_drop", "probability_rise"} <= set(causes)
    assert causes["grade_drop"]["record_ids"] == ["R4"] and "A 降为 C" in causes["grade_drop"]["message"]
    # the bulk load (tiers grade --into-service, tiers db load grades) raises them too
    report = load_grades(engine_for(database_url), [pd.DataFrame([_grade(world.ent1, "2026-10-31", "D", 0.60)])],
                         load_id="t-warn")  # ent1 was C, 0.21
    assert report.stored == 1
    ent1 = {w["cause"] for w in _warnings(client, auth, "reg_samr") if w["uscc"] == world.ent1}
    assert {"grade_drop", "probability_rise"} <= ent1
    # an older grading loaded later does not become the current grade: no warning
    before = session.query(RiskWarning).count()
    load_grades(engine_for(database_url), [pd.DataFrame([_grade(world.ent1, "2026-01-31", "D", 0.9)])],
                load_id="t-old")
    assert session.query(RiskWarning).count() == before


def test_csv_has_chinese_headers_and_neutralised_cells(client, auth, world, session):
    store_records(session, [_record("=1+1", world.ent3, "ecology", "list_key_attention", None)], today=TODAY)
    r = client.get("/api/v1/warnings/export.csv", params={"purpose": "导出预警"}, headers=auth("reg_eco"))
    assert r.status_code == 200 and r.content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert "预警原因" in rows[0] and "统一社会信用代码" in rows[0]
    row = next(x for x in rows if x["统一社会信用代码"] == world.ent3)
    assert row["相关记录"] == "'=1+1" and row["预警原因"] == "新列入名单"


def test_staff_page_lists_acknowledges_and_closes_only_what_it_covers(client, settings, world, session):
    store_records(session, [_record("P1", world.ent1, "samr", "list_abnormal_operation", None),
                            _record("P2", world.ent3, "ecology", "admin_penalty", "serious")], today=TODAY)
    ent1_list = session.query(RiskWarning).filter_by(uscc=world.ent1, cause="list_entry", status="open").one()
    ent3_serious = session.query(RiskWarning).filter_by(uscc=world.ent3, cause="serious_record", status="open").one()
    csrf = _cookie(client, settings, "reg_samr")
    try:
        bare = client.get("/regulator/warnings")
        assert bare.status_code == 200 and 'class="warning"' not in bare.text  # nothing read without a purpose
        page = client.get("/regulator/warnings", params={"purpose": "风险预警处置"})
        assert f'data-id="{ent1_list.id}"' in page.text and "P1" in page.text and "新列入名单" in page.text
        # ecology's warning about ent3: samr sees it, ecology handles it
        other = page.text[page.text.index(f'data-id="{ent3_serious.id}"'):]
        assert "由来源部门处理" in other[:other.index("</tr>")]
        forged = client.post(f"/regulator/warnings/{ent1_list.id}/acknowledge",
                             data={"csrf_token": "x", "purpose": "处置"}, follow_redirects=False)
        assert forged.status_code == 403
        ok = client.post(f"/regulator/warnings/{ent1_list.id}/close",
                         data={"csrf_token": csrf, "purpose": "处置", "note": "已核查"}, follow_redirects=False)
        assert ok.status_code == 303
        session.expire_all()
        assert session.get(RiskWarning, ent1_list.id).status == "closed"
        csv_page = client.get("/regulator/warnings.csv", params={"purpose": "导出", "status": "closed"})
        assert csv_page.status_code == 200 and world.ent1 in csv_page.content.decode("utf-8-sig")
        # tax does not cover ent3 (ecology's record): its page cannot close ent3's warning
        csrf = _cookie(client, settings, "reg_tax")
        r = client.post(f"/regulator/warnings/{ent3_serious.id}/close",
                        data={"csrf_token": csrf, "purpose": "处置", "note": "关掉"}, follow_redirects=False)
        assert r.status_code == 404
        session.expire_all()
        assert session.get(RiskWarning, ent3_serious.id).status == "open"
        assert "P2" not in client.get("/regulator/warnings", params={"purpose": "风险预警处置"}).text
    finally:
        client.cookies.clear()


def test_department_commitments_page_marks_kept(client, auth, settings, world):
    cid = _sign(client, auth, world.ent1, "samr-repair").json()["id"]
    csrf = _cookie(client, settings, "reg_samr")
    try:
        page = client.get("/regulator/commitments")
        assert page.status_code == 200 and f'data-id="{cid}"' in page.text and "信用修复承诺" in page.text
        r = client.post(f"/regulator/commitments/{cid}/decision",
                        data={"csrf_token": csrf, "outcome": "kept", "basis": "期内未再违法"}, follow_redirects=False)
        assert r.status_code == 303
        csrf = _cookie(client, settings, "reg_tax")
        assert f'data-id="{cid}"' not in client.get("/regulator/commitments").text
    finally:
        client.cookies.clear()
    status = {c["id"]: c["status"] for c in client.get(SIGN.format(world.ent1), headers=auth("ent1")).json()}
    assert status[cid] == "kept"


# --- outside review (issue 20, review20): findings, each a failing test until fixed -----------------


def _pending(client, auth, uscc: str, matter: str, who: str) -> int:
    """A pending commitment of ``uscc`` to ``matter``: signed now, or the one already pending."""
    r = _sign(client, auth, uscc, matter, who=who)
    if r.status_code == 201:
        return r.json()["id"]
    assert r.status_code == 409, r.text
    mine = client.get(SIGN.format(uscc), headers=auth(who)).json()
    return next(c["id"] for c in mine if c["matter_code"] == matter and c["status"] == "pending")


def test_review20_a_basis_of_invisible_characters_is_refused(client, auth, world):
    # 依据 is what the department found: four zero-width spaces are no basis, yet they passed min_length=4
    cid = _pending(client, auth, world.ent2, "samr-food-licence", "ent2")
    r = client.post(f"/api/v1/commitments/{cid}/decision", json={"outcome": "kept", "basis": "  \u200b\u200b\u200b\u200b "},
                    headers=auth("reg_samr"))
    assert r.status_code == 422 and r.json()["error"]["field"] == "basis", r.text


def test_review20_the_already_decided_message_reads_once(client, auth, world):
    # "承诺 #N 已已履约": the status label already starts with 已
    cid = _pending(client, auth, world.ent1, "tax-self-discipline", "ent1")
    url = f"/api/v1/commitments/{cid}/decision"
    assert client.post(url, json={"outcome": "kept", "basis": "按期申报无欠税"}, headers=auth("reg_tax")).status_code == 200
    again = client.post(url, json={"outcome": "kept", "basis": "按期申报无欠税"}, headers=auth("reg_tax"))
    assert again.status_code == 409
    assert "已已" not in again.json()["error"]["message_zh"], again.json()["error"]["message_zh"]


def test_review20_the_department_list_of_commitments_is_in_the_query_log(client, auth, world, session):
    # a 审批替代型 commitment is not public: a department reading it (and deciding on it) reads the
    # subject's credit file, yet neither GET /commitments/department nor the decision left a log entry
    cid = _pending(client, auth, world.ent1, "samr-food-licence", "ent1")
    listed = client.get("/api/v1/commitments/department", headers=auth("reg_samr"))
    assert listed.status_code == 200 and cid in [c["id"] for c in listed.json()]
    _, entries = list_entries(session, uscc=world.ent1, actor="reg_samr", limit=1000)
    assert any("commitments/department" in e.endpoint for e in entries), sorted({e.endpoint for e in entries})


def test_review20_public_commitments_name_the_department_in_chinese(client, auth, world):
    # the public page and API print the department's code ("samr"), where the credit page says
    # 南京市市场监督管理局
    _pending(client, auth, world.ent1, "samr-quality-public", "ent1")
    page = client.get("/commitments/public").text
    assert "<td>samr</td>" not in page and "市场监督管理局" in page


def test_review20_the_public_list_is_paged(client, auth, world):
    # GET /api/v1/commitments/public needs no login and answered every 主动公示型 commitment of the city
    # in one response (no limit, no paging), as the page /commitments/public did: a city-sized dump
    # for any anonymous caller; the other lists page through serving/routes/_page_lists.py
    _pending(client, auth, world.ent1, "samr-quality-public", "ent1")
    _pending(client, auth, world.ent2, "samr-quality-public", "ent2")
    everything = client.get("/api/v1/commitments/public").json()
    assert len(everything) >= 2
    one = client.get("/api/v1/commitments/public", params={"limit": 1})
    assert one.status_code == 200 and len(one.json()) == 1, len(one.json())


def test_review20_the_enterprise_signs_a_commitment_on_its_page(client, settings, world):
    # issue 20 item 1: "an enterprise signs online" (pages); the credit page offers objections,
    # repairs and the report, but no form to sign a commitment: only the API could
    _cookie(client, settings, "ent1")
    try:
        page = client.get(f"/credit/{world.ent1}").text
        assert 'action="/credit/' + world.ent1 + '/commitments' in page or "签署承诺" in page
    finally:
        client.cookies.clear()


# --- issue 20 review, found while fixing review20 -----------------------------------------------


def test_a_broken_finding_without_a_breach_asks_for_one_in_chinese(client, auth, world):
    # it said "违约情形 None 不是承诺事项…的违约情形": the breach is missing, not wrong
    cid = _pending(client, auth, world.ent2, "tax-self-discipline", "ent2")
    r = client.post(f"/api/v1/commitments/{cid}/decision", json={"outcome": "broken", "basis": "承诺期内新增欠税"},
                    headers=auth("reg_tax"))
    assert r.status_code == 422 and r.json()["error"]["field"] == "breach", r.text
    message = r.json()["error"]["message_zh"]
    assert "None" not in message and "须选择违约情形" in message and "arrears" in message, message


def test_a_kept_finding_with_a_breach_is_refused(client, auth, world):
    # kept with a breach was stored as kept, the breach silently dropped: the finding contradicts itself
    cid = _pending(client, auth, world.ent2, "tax-self-discipline", "ent2")
    url = f"/api/v1/commitments/{cid}/decision"
    r = client.post(url, json={"outcome": "kept", "basis": "按期申报无欠税", "breach": "arrears"}, headers=auth("reg_tax"))
    assert r.status_code == 422 and r.json()["error"]["field"] == "breach", r.text
    status = {c["id"]: c["status"] for c in client.get(SIGN.format(world.ent2), headers=auth("ent2")).json()}
    assert status[cid] == "pending"


def test_a_basis_keeps_its_visible_text(client, auth, world):
    # the invisible characters go, what a person wrote stays (full-width punctuation included)
    cid = _pending(client, auth, world.ent2, "samr-quality-public", "ent2")
    r = client.post(f"/api/v1/commitments/{cid}/decision",
                    json={"outcome": "kept", "basis": "\u200b 抽检合格，无违法行为\ufeff "}, headers=auth("reg_samr"))
    assert r.status_code == 200 and r.json()["basis"] == "抽检合格，无违法行为", r.text


def test_a_warning_names_the_department_in_chinese(session, world):
    # the warning's text read "记录 W9（ecology）": the code, where the pages name the department
    store_records(session, [_record("W9", world.ent3, "ecology", "list_key_attention", None)], today=TODAY)
    warning = session.query(RiskWarning).filter_by(uscc=world.ent3, cause="list_entry", status="open").one()
    assert "W9" in warning.message and "ecology" not in warning.message and "生态环境局" in warning.message, \
        warning.message


def test_the_public_list_pages_by_key_through_every_commitment_once(client, auth, world):
    _pending(client, auth, world.ent1, "samr-quality-public", "ent1")
    _pending(client, auth, world.ent2, "samr-quality-public", "ent2")
    whole = client.get("/api/v1/commitments/public", params={"limit": 200})
    assert int(whole.headers["X-Total-Count"]) == len(whole.json()) >= 2 and "Link" not in whole.headers
    seen, url, pages = [], "/api/v1/commitments/public?limit=1", 0
    while url and pages < 50:
        r = client.get(url)
        assert r.status_code == 200 and len(r.json()) == 1 and r.headers["X-Total-Count"] == whole.headers["X-Total-Count"]
        seen += r.json()
        url = r.headers["Link"].split(">")[0].lstrip("<") if "Link" in r.headers else None
        pages += 1
    assert seen == whole.json()
    bad = client.get("/api/v1/commitments/public", params={"after": "bm90LWEtY3Vyc29y"})
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "after", bad.text
    page = client.get("/commitments/public", params={"size": 10})
    assert page.status_code == 200 and 'id="public-commitments-pager"' in page.text


def test_the_enterprise_page_signs_a_commitment_with_csrf_and_says_why_not_at_the_form(client, auth, settings, world):
    import re

    csrf = _cookie(client, settings, "ent2")
    try:
        page = client.get(f"/credit/{world.ent2}").text
        offered = re.findall(r'<option value="([a-z0-9-]+)"', page[page.index('id="commitment-form"'):])
        assert offered and "签署承诺" in page
        url = f"/credit/{world.ent2}/commitments"
        assert client.post(url, data={"matter_code": offered[0], "csrf_token": "forged"},
                           follow_redirects=False).status_code == 403
        signed = client.post(url, data={"matter_code": offered[0], "csrf_token": csrf}, follow_redirects=False)
        assert signed.status_code == 303 and signed.headers["location"] == f"/credit/{world.ent2}#commitments"
        mine = client.get(SIGN.format(world.ent2), headers=auth("ent2")).json()
        assert any(c["matter_code"] == offered[0] and c["status"] == "pending" for c in mine)
        after = client.get(f"/credit/{world.ent2}").text
        assert f'<option value="{offered[0]}"' not in after  # one pending commitment per matter
        refused = client.post(url, data={"matter_code": "no-such-matter", "csrf_token": csrf}, follow_redirects=False)
        assert refused.status_code == 422 and 'id="error-commitment"' in refused.text
        assert "不在承诺事项目录中" in refused.text
    finally:
        client.cookies.clear()


def test_a_decision_is_in_the_query_log(client, auth, world, session):
    # the decision answers the subject's commitment (its basis, its record): a read of its file
    cid = _pending(client, auth, world.ent1, "samr-repair", "ent1")
    r = client.post(f"/api/v1/commitments/{cid}/decision", json={"outcome": "kept", "basis": "期内未再违法"},
                    headers=auth("reg_samr"))
    assert r.status_code == 200, r.text
    _, entries = list_entries(session, uscc=world.ent1, actor="reg_samr", limit=1000)
    assert any(e.endpoint == "POST /api/v1/commitments/{commitment_id}/decision" and e.outcome == "allowed"
               for e in entries), sorted({e.endpoint for e in entries})


def test_the_department_page_refuses_an_invisible_basis_with_a_422(client, auth, settings, world):
    cid = _pending(client, auth, world.ent2, "samr-food-licence", "ent2")
    csrf = _cookie(client, settings, "reg_samr")
    try:
        r = client.post(f"/regulator/commitments/{cid}/decision",
                        data={"csrf_token": csrf, "outcome": "kept", "basis": "\u200b\u200b\u200b\u200b\u200b"},
                        follow_redirects=False)
        assert r.status_code == 422, r.status_code
    finally:
        client.cookies.clear()


# --- issue 20, open question 2: only the owning department decides ---------------------------------


def test_only_the_owning_department_decides_a_commitment_an_admin_reads_it(client, auth, world, session):
    # separation of duties: the department that accepted the commitment holds the basis of the finding
    cid = _pending(client, auth, world.ent2, "samr-food-licence", "ent2")
    url = f"/api/v1/commitments/{cid}/decision"
    kept = {"outcome": "kept", "basis": "现场核查经营条件与承诺一致"}
    assert cid in [c["id"] for c in client.get("/api/v1/commitments/department", headers=auth("admin")).json()]
    refused = client.post(url, json=kept, headers=auth("admin"))
    assert refused.status_code == 403, refused.text
    error = refused.json()["error"]
    assert error["field"] == "commitment_id" and "市场监督管理局" in error["message_zh"] and "认定" in error["message_zh"]
    assert client.post(url, json=kept, headers=auth("reg_eco")).status_code == 404  # another department, as before
    mine = client.get(SIGN.format(world.ent2), headers=auth("ent2")).json()
    assert next(c["status"] for c in mine if c["id"] == cid) == "pending"  # neither wrote anything
    # both refusals are logged like other refusals: denied, naming the commitment
    for actor in ("admin", "reg_eco"):
        _, entries = list_entries(session, uscc=world.ent2, actor=actor, limit=1000)
        denied = [e for e in entries if e.outcome == "denied" and e.endpoint.endswith("/decision")
                  and e.purpose.endswith(f"#{cid}")]
        assert len(denied) == 1 and "认定信用承诺" in denied[0].purpose, (actor, [e.purpose for e in entries])
    # an absent commitment: refused as before, logged without a subject
    assert client.post("/api/v1/commitments/999999/decision", json=kept, headers=auth("reg_eco")).status_code == 404
    _, entries = list_entries(session, actor="reg_eco", limit=1000)
    assert any(e.uscc == "" and "#999999" in e.purpose and e.outcome == "denied" for e in entries)
    assert client.post(url, json=kept, headers=auth("reg_samr")).status_code == 200  # its own department


def test_the_admin_page_shows_no_decision_form_and_its_post_is_refused(client, auth, settings, world):
    cid = _pending(client, auth, world.ent1, "samr-repair", "ent1")
    csrf = _cookie(client, settings, "admin")
    try:
        page = client.get("/regulator/commitments")
        assert page.status_code == 200 and f'data-id="{cid}"' in page.text
        assert f'action="/regulator/commitments/{cid}/decision"' not in page.text
        r = client.post(f"/regulator/commitments/{cid}/decision",
                        data={"csrf_token": csrf, "outcome": "kept", "basis": "期内未再违法"}, follow_redirects=False)
        assert r.status_code == 403 and "认定" in r.text
    finally:
        client.cookies.clear()
    status = {c["id"]: c["status"] for c in client.get(SIGN.format(world.ent1), headers=auth("ent1")).json()}
    assert status[cid] == "pending"


# --- attacker's pass (issue 20): findings, each a failing test until fixed ------------------------


def test_handling_a_warning_is_a_logged_read_and_a_refused_one_is_logged_denied(client, auth, world, session):
    # acknowledge and close answer the warning (subject, name, records): a read of the subject's
    # file, which left no query-log entry; a refused try (not covered, another department's) left none
    store_records(session, [_record("H1", world.ent3, "ecology", "list_abnormal_operation", None)], today=TODAY)
    wid = session.query(RiskWarning).filter_by(uscc=world.ent3, cause="list_entry", status="open").one().id

    def trail(actor: str) -> list[tuple[str, str]]:
        _, entries = list_entries(session, uscc=world.ent3, actor=actor, limit=1000)
        return [(e.outcome, e.endpoint) for e in entries if "/api/v1/warnings/{warning_id}" in e.endpoint]

    before = {actor: len(trail(actor)) for actor in ("reg_tax", "reg_samr", "reg_eco")}  # other tests' too
    assert client.post(f"/api/v1/warnings/{wid}/acknowledge", headers=auth("reg_tax")).status_code == 404
    assert client.post(f"/api/v1/warnings/{wid}/acknowledge", headers=auth("reg_samr")).status_code == 403
    assert client.post(f"/api/v1/warnings/{wid}/acknowledge", headers=auth("reg_eco")).status_code == 200
    assert client.post(f"/api/v1/warnings/{wid}/close", json={"note": "已约谈整改"},
                       headers=auth("reg_eco")).status_code == 200
    assert trail("reg_tax")[:-before["reg_tax"] or None] == [("denied", "POST /api/v1/warnings/{warning_id}/acknowledge")]
    assert trail("reg_samr")[:-before["reg_samr"] or None] == [
        ("denied", "POST /api/v1/warnings/{warning_id}/acknowledge")]
    assert sorted(trail("reg_eco")[:-before["reg_eco"] or None]) == [
        ("allowed", "POST /api/v1/warnings/{warning_id}/acknowledge"),
        ("allowed", "POST /api/v1/warnings/{warning_id}/close")]


def test_a_department_refused_a_matter_reads_the_departments_names_in_chinese(client, auth, world):
    r = client.get(f"/api/v1/credit-checks/{world.ent1}", params={"matter": "government_procurement",
                                                                  "purpose": "项目资格审查"}, headers=auth("reg_tax"))
    assert r.status_code == 403
    message = r.json()["error"]["message_zh"]
    assert "税务局" in message and "财政局" in message and "'tax'" not in message and "finance" not in message


def test_an_enterprise_trying_to_decide_its_own_commitment_is_refused_and_logged(client, auth, world, session):
    # found as attacker: a role that may never decide was refused by the role check, leaving no trace
    cid = _pending(client, auth, world.ent2, "samr-quality-public", "ent2")
    r = client.post(f"/api/v1/commitments/{cid}/decision", json={"outcome": "kept", "basis": "本企业自认已履约"},
                    headers=auth("ent2"))
    assert r.status_code == 403 and r.json()["error"]["message_zh"]
    _, entries = list_entries(session, uscc=world.ent2, actor="ent2", limit=1000)
    assert [e.outcome for e in entries if e.purpose.endswith(f"认定信用承诺 #{cid}")] == ["denied"]


# --- issue 20, decision: only the owning department acknowledges or closes a warning ------------


def test_an_admin_reads_warnings_but_only_the_owning_department_handles_them(client, auth, world, session):
    # the commitments' rule (the department that owns the matter decides; an admin reads, decides
    # none): a record's warning is its department's, a grading's any covering regulator's
    store_records(session, [_record("A1", world.ent2, "ecology", "list_abnormal_operation", None)], today=TODAY)
    wid = session.query(RiskWarning).filter_by(uscc=world.ent2, cause="list_entry", status="open").one().id
    assert any(w["id"] == wid for w in _warnings(client, auth, "admin"))  # the admin reads it
    for action, body in (("acknowledge", None), ("close", {"note": "管理员代为关闭"})):
        r = client.post(f"/api/v1/warnings/{wid}/{action}", json=body, headers=auth("admin"))
        assert r.status_code == 403, r.text
        error = r.json()["error"]
        assert error["code"] == "not_owning_department" and error["field"] == "warning_id"
        assert "生态环境局" in error["message_zh"] and "管理员" in error["message_zh"], error
    session.expire_all()
    assert session.get(RiskWarning, wid).status == "open"  # nothing written
    _, entries = list_entries(session, uscc=world.ent2, actor="admin", limit=1000)
    denied = [e.purpose for e in entries if e.outcome == "denied" and e.purpose.endswith(f"预警 #{wid}")]
    assert sorted(denied) == sorted([f"拒绝（not_owning_department）确认预警 #{wid}",
                                     f"拒绝（not_owning_department）关闭预警 #{wid}"])
    # a grading's warning (no department): every covering regulator handles it, the admin none
    grade_warning = RiskWarning(uscc=world.ent2, cause="grade_drop", message="等级下降", record_ids=[],
                                department=None, raised_on=TODAY, open_key=f"{world.ent2}|grade_drop|admin-test")
    session.add(grade_warning)
    session.commit()
    r = client.post(f"/api/v1/warnings/{grade_warning.id}/acknowledge", headers=auth("admin"))
    assert r.status_code == 403 and r.json()["error"]["code"] == "not_owning_department"
    assert client.post(f"/api/v1/warnings/{grade_warning.id}/acknowledge", headers=auth("reg_samr")).status_code == 200
    assert client.post(f"/api/v1/warnings/{wid}/acknowledge", headers=auth("reg_eco")).status_code == 200


def test_the_admin_warnings_page_has_no_buttons_and_its_post_is_refused(client, settings, world, session):
    store_records(session, [_record("A2", world.ent3, "samr", "list_abnormal_operation", None)], today=TODAY)
    wid = session.query(RiskWarning).filter_by(uscc=world.ent3, cause="list_entry", status="open").one().id
    csrf = _cookie(client, settings, "admin")
    try:
        page = client.get("/regulator/warnings", params={"purpose": "风险预警处置"})
        assert page.status_code == 200 and f'data-id="{wid}"' in page.text
        assert "/acknowledge" not in page.text and "/close" not in page.text  # no form for any warning
        r = client.post(f"/regulator/warnings/{wid}/close",
                        data={"csrf_token": csrf, "purpose": "处置", "note": "代为关闭"}, follow_redirects=False)
        assert r.status_code == 403 and "管理员" in r.text
        csrf = _cookie(client, settings, "reg_samr")  # its department's page still has them
        page = client.get("/regulator/warnings", params={"purpose": "风险预警处置"})
        row = page.text[page.text.index(f'data-id="{wid}"'):]
        assert f'action="/regulator/warnings/{wid}/acknowledge"' in row[:row.index("</tr>")]
    finally:
        client.cookies.clear()
    session.expire_all()
    assert session.get(RiskWarning, wid).status == "open"
