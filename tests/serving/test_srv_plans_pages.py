"""The regulator's plan pages: create from a form (CSRF), see commitment and MATCH, download, record results."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re

from srv_fixtures import form_login
from test_srv_plans_flow import AS_OF, city, settings  # noqa: F401  (fixtures: data dir and graded city)
from test_srv_plans_v2 import _stdlib_verify, _tiers_verify

from serving.deps import get_today


def _login(client, username: str) -> None:
    r = form_login(client, username)
    assert r.status_code == 303


def _csrf(html: str) -> str:
    return re.search(r'name="csrf_token" value="([0-9a-f]+)"', html).group(1)


def test_regulator_creates_a_plan_from_the_form(client, city, tmp_path):  # noqa: F811
    _login(client, "reg_samr")
    home = client.get("/regulator")
    assert 'href="/regulator/plans"' in home.text
    page = client.get("/regulator/plans")
    assert page.status_code == 200 and "新建抽查计划" in page.text and 'value="SAMR-03"' in page.text
    form = {"plan_id": "2026Q4-web", "period_start": "2026-12-01", "period_end": "2026-12-31", "as_of": AS_OF,
            "items": ["SAMR-03"], "csrf_token": _csrf(page.text)}
    forged = client.post("/regulator/plans", data={**form, "csrf_token": "forged"}, follow_redirects=False)
    assert forged.status_code == 403
    created = client.post("/regulator/plans", data=form, follow_redirects=False)
    assert created.status_code == 303
    committed = client.get(created.headers["location"])
    # tiers-draw-v2: the commitment is shown (and public) at once; the draw waits for the salt
    # the creator is told a second person enters the salt, not offered the form (review17c)
    assert "承诺公布时间" in committed.text and 'id="salt-form"' not in committed.text
    assert 'id="salt-not-yours"' in committed.text
    assert '<tr class="visit"' not in committed.text
    own_salt = client.post(created.headers["location"] + "/salt",
                           data={"value": "5 8 1", "csrf_token": _csrf(committed.text)}, follow_redirects=False)
    assert own_salt.status_code == 403 and "创建抽查计划的人员不能录入公开随机数" in own_salt.text
    client.cookies.clear()
    _login(client, "reg_samr2")
    second = client.get(created.headers["location"])
    forged_salt = client.post(created.headers["location"] + "/salt", data={"value": "5 8 1", "csrf_token": "forged"},
                              follow_redirects=False)
    assert forged_salt.status_code == 403 and 'id="salt-form"' in client.get(created.headers["location"]).text
    drawn = client.post(created.headers["location"] + "/salt",
                        data={"value": "5 8 1", "csrf_token": _csrf(second.text)}, follow_redirects=False)
    assert drawn.status_code == 303
    detail = client.get(created.headers["location"])
    assert "MATCH" in detail.text and "MISMATCH" not in detail.text and "reg_samr2" in detail.text
    # a plan made in the pages verifies with `tiers plan verify` and the standard-library verifier
    plan_no = created.headers["location"].rsplit("/", 1)[1]
    bundle = tmp_path / "bundle.json"
    bundle.write_bytes(client.get(created.headers["location"] + "/bundle.json").content)
    commitment = tmp_path / "commitment.json"
    commitment.write_bytes(client.get(f"/public/plans/{plan_no}/commitment.json").content)
    full = tmp_path / "plan.json"
    full.write_bytes(client.get(created.headers["location"] + "/plan.json").content)
    for check in (_tiers_verify, _stdlib_verify):
        assert check(str(bundle), "--commitment", str(commitment)).startswith("MATCH")
        assert check(str(full), "--commitment", str(commitment), "--bundle", str(bundle)).startswith("MATCH")
    visit_usccs = re.findall(r'<tr class="visit" data-uscc="(\w+)"', detail.text)
    assert visit_usccs
    download = client.get(created.headers["location"] + "/export.csv")
    rows = list(csv.DictReader(io.StringIO(download.content.decode("utf-8-sig"))))
    assert [r["统一社会信用代码"] for r in rows] == visit_usccs  # the page download: headers in Chinese

    client.app.dependency_overrides[get_today] = lambda: dt.date(2026, 12, 15)  # during the plan's period
    result = client.post(created.headers["location"] + "/results", data={
        "uscc": visit_usccs[0], "inspection_item": "SAMR-03", "outcome": "no_problem", "inspected_on": "2026-12-01",
        "csrf_token": _csrf(detail.text)}, follow_redirects=False)
    assert result.status_code == 303
    after = client.get(created.headers["location"])
    assert f'<tr class="result" data-uscc="{visit_usccs[0]}">' in after.text and "2026-12-21" in after.text
    english = client.get(created.headers["location"] + "?lang=en")
    assert "Visit list" in english.text and "检查名单" not in english.text


def test_other_department_cannot_open_the_plan_page(client, city):  # noqa: F811
    _login(client, "reg_samr")
    page = client.get("/regulator/plans")
    created = client.post("/regulator/plans", data={
        "plan_id": "p1", "period_start": "2026-12-01", "period_end": "2026-12-31", "as_of": AS_OF,
        "items": ["SAMR-03"], "csrf_token": _csrf(page.text)}, follow_redirects=False)
    client.cookies.clear()
    _login(client, "reg_tax")
    r = client.get(created.headers["location"])
    assert r.status_code == 404 and "南京测试" not in r.text  # another department's plan: as if absent
