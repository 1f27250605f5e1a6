"""The regulator's plan pages: create from a form (CSRF), see commitment and MATCH, download, record results."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re

from srv_fixtures import form_login
from test_srv_plans_flow import AS_OF, city, settings  # noqa: F401  (fixtures: data dir and graded city)

from serving.deps import get_today


def _login(client, username: str) -> None:
    r = form_login(client, username)
    assert r.status_code == 303


def _csrf(html: str) -> str:
    return re.search(r'name="csrf_token" value="([0-9a-f]+)"', html).group(1)


def test_regulator_creates_a_plan_from_the_form(client, city):  # noqa: F811
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
    detail = client.get(created.headers["location"])
    assert "MATCH" in detail.text and "MISMATCH" not in detail.text
    visit_usccs = re.findall(r'<tr class="visit" data-uscc="(\w+)"', detail.text)
    assert visit_usccs
    download = client.get(created.headers["location"] + "/export.csv")
    rows = list(csv.DictReader(io.StringIO(download.content.decode("utf-8-sig"))))
    assert [r["uscc"] for r in rows] == visit_usccs

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
