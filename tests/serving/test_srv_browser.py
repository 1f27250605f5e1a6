"""Pages in a real browser (Debian's Chromium via Playwright) against a real uvicorn server."""

from __future__ import annotations

import os

import httpx
import pytest
from srv_fixtures import PASSWORD, database_copy, form_login, uvicorn_server

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser"), pytest.mark.slow]
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]



@pytest.fixture(scope="module")
def server(_template_db, tmp_path_factory):
    """One uvicorn for the module, on its own copy of the seeded database."""
    tmp_path, database_url = database_copy(_template_db, tmp_path_factory, "browser")
    with uvicorn_server(tmp_path, database_url) as base:
        yield base


@pytest.fixture(scope="module")
def browser():
    if not os.path.exists(CHROMIUM):
        pytest.skip("Debian chromium not installed")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    """A fresh context (no cookies) per test."""
    context = browser.new_context(viewport={"width": 1100, "height": 1400})
    yield context.new_page()
    context.close()


def _login(page, base, username):
    page.goto(base + "/login")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")


def test_enterprise_sees_own_page_objects_and_cannot_see_others(server, page, world, tmp_path):
    _login(page, server, "ent1")
    page.wait_for_url(f"**/credit/{world.ent1}")
    assert "我的信用" in page.content() and page.inner_text("#grade") == "C"
    assert page.locator("#waterfall rect").count() == 6  # base + 4 reasons + total
    assert "张**" in page.inner_text("#legal-rep") and "张三丰" not in page.content()
    page.screenshot(path=str(tmp_path / "enterprise.png"), full_page=True)

    # object to R1 through the form; the objection shows as pending with its due date
    row = page.locator("tr[data-record=R1]")
    row.locator("summary", has_text="提出异议").click()
    row.locator("textarea[name=reason]").fill("该处罚决定已被复议撤销")
    row.locator("form[action$=objections] button").click()
    page.wait_for_selector("tr.objection[data-record=R1]")
    assert "处理中" in page.inner_text("tr.objection[data-record=R1]")

    # another enterprise's page is refused and shows none of its data
    response = page.goto(f"{server}/credit/{world.ent2}")
    assert response.status == 404 and "南京乙建筑" not in page.content()  # as if it did not exist

    page.goto(f"{server}/credit/{world.ent1}?lang=en")
    assert "My credit" in page.content()
    page.screenshot(path=str(tmp_path / "enterprise_en.png"), full_page=True)


def test_staff_pages_render(server, page, tmp_path):
    _login(page, server, "reg_samr")
    page.wait_for_url("**/regulator")
    page.click("button[type=submit].primary")
    page.wait_for_selector("#subjects")
    assert page.locator("#subjects tr").count() == 4  # header + 3 subjects
    page.screenshot(path=str(tmp_path / "regulator.png"), full_page=True)


def test_a_refused_decision_comes_back_as_typed(server, page):
    """Issue 17: the regulator's decision on the objection above, refused (a one-character reason),
    keeps the decision and the reason typed, with the reason for the refusal at the field."""
    _login(page, server, "reg_samr")
    page.wait_for_url("**/regulator")
    row = page.locator("tr.objection").first
    row.locator("select[name=decision]").select_option("rejected")
    row.locator("input[name=reason]").fill(" 否")
    row.locator("button[type=submit]").click()
    page.wait_for_selector("tr.objection p.error")
    row = page.locator("tr.objection").first
    assert "理由" in row.locator("p.error").inner_text()
    assert row.locator("input[name=reason]").input_value() == " 否"
    assert row.locator("select[name=decision]").input_value() == "rejected"
    assert row.locator("input[name=reason]").get_attribute("aria-invalid") == "true"


def test_forged_form_post_is_refused(server, world):
    """A cross-site form post carries no valid CSRF token: refused even with the cookie."""
    with httpx.Client(base_url=server) as client:
        form_login(client, "ent1")
        r = client.post(f"/credit/{world.ent1}/objections",
                        data={"record_id": "R1", "reason": "伪造的异议请求", "csrf_token": "forged"})
        assert r.status_code == 403 and "csrf" in r.text.lower()


def test_people_read_chinese_when_something_goes_wrong(server, page, world):
    """Issue 17: a refused login keeps the name and says why in Chinese; an error page keeps the
    header; a refused objection keeps its text with the reason at the field; a pending one hides the form."""
    page.goto(server + "/login")
    page.fill("#username", "ent1")
    page.fill("#password", "not-the-password")
    page.click("button[type=submit]")
    assert "用户名或密码错误" in page.inner_text("p.error") and page.input_value("#username") == "ent1"
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"**/credit/{world.ent1}")
    # R1 has a pending objection (the first test of the module): its form is gone
    assert "异议处理中" in page.inner_text("tr[data-record=R1]")
    assert page.locator("tr[data-record=R1] summary", has_text="提出异议").count() == 0
    row = page.locator("tr[data-record=R2]")
    row.locator("summary", has_text="提出异议").click()
    row.locator("textarea[name=reason]").fill("   不对   ")  # five characters with blanks, two without
    row.locator("form[action$=objections] button").click()
    page.wait_for_selector("tr[data-record=R2] p.error")
    refused = page.locator("tr[data-record=R2]")
    assert "理由" in refused.locator("p.error").inner_text() and "至少" in refused.locator("p.error").inner_text()
    assert refused.locator("textarea[name=reason]").input_value().strip() == "不对"
    response = page.goto(server + "/regulator")
    assert response.status == 403 and "没有使用此功能的权限" in page.inner_text("main")
    assert "ent1" in page.inner_text("header") and page.locator("header button", has_text="退出").count() == 1
