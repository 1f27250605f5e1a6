"""The pages under their Content-Security-Policy in a real browser (Debian's Chromium via
Playwright, against ``tiers serve``): nothing on any page is blocked by the policy, the login form
works with its CSRF token, and another site cannot frame a page."""

from __future__ import annotations

import shutil

import pytest
from sec_fixtures import tiers_serve
from srv_fixtures import ENT1, PASSWORD
from test_srv_browser import browser  # noqa: F401  (fixture: Debian's Chromium, skipped without it)

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser"), pytest.mark.slow]
PAGES = {"ent1": [f"/credit/{ENT1}"], "reg_samr": ["/regulator", "/regulator/plans", "/regulator?purpose=日常监管"],
         "sector_c": ["/sector"], "analyst": ["/analyst", "/analyst/monitoring"]}


@pytest.fixture(scope="module")
def served(browser, _migrated_seeded_db, tmp_path_factory):  # noqa: F811
    """One ``tiers serve`` (one worker) for the module, on its own copy of the seeded database
    (the security tests' template); each test browses in its own browser context."""
    tmp_path = tmp_path_factory.mktemp("sec_browser")
    shutil.copy(_migrated_seeded_db, tmp_path / "tiers.db")
    with tiers_serve(tmp_path, f"sqlite:///{tmp_path / 'tiers.db'}", workers=1) as base:
        yield base


def _csp_violations(messages: list[str]) -> list[str]:
    return [m for m in messages if "Content Security Policy" in m or "Content-Security-Policy" in m]


def test_no_page_breaks_its_policy_and_the_login_form_works(browser, served):  # noqa: F811
    for username, paths in PAGES.items():
        context = browser.new_context()
        page = context.new_page()
        messages: list[str] = []
        page.on("console", lambda msg, seen=messages: seen.append(msg.text))
        page.goto(served + "/login")
        page.fill("#username", username)
        page.fill("#password", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_load_state("networkidle")
        assert "/login" not in page.url, (username, page.url)
        for path in paths:
            response = page.goto(served + path)
            assert response.status == 200, (path, response.status)
            # the stylesheet applied (no inline style needed): the header is laid out by style.css
            assert page.evaluate("getComputedStyle(document.body).margin") is not None
        page.goto(served + "/docs")
        page.wait_for_load_state("load")
        assert _csp_violations(messages) == [], (username, messages)
        context.close()


def test_another_site_cannot_frame_a_page(browser, served):  # noqa: F811
    context = browser.new_context()
    page = context.new_page()
    messages: list[str] = []
    page.on("console", lambda msg: messages.append(msg.text))
    page.set_content(f'<iframe id="f" src="{served}/login"></iframe>')
    page.wait_for_timeout(1500)
    frame = page.frame_locator("#f")
    assert frame.locator("#username").count() == 0  # the login form never rendered inside the frame
    context.close()
