"""The commitment and warning pages in a real browser (Debian's Chromium via Playwright) against a
real uvicorn: the public list without login, a regulator finding a commitment broken, and the
warning it raises acknowledged and closed from the staff page."""

from __future__ import annotations

import datetime as dt

import pytest
from srv_fixtures import ENT1, ENT2, database_copy, principal, uvicorn_server
from test_srv_browser import _login, browser, page  # noqa: F401  (one browser per module)

from serving.db.session import dispose_engine, iter_session
from serving.services import commitments

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser"), pytest.mark.slow]


@pytest.fixture(scope="module")
def server(_template_db, tmp_path_factory):
    """uvicorn on a copy of the seeded database holding two signed commitments."""
    tmp_path, database_url = database_copy(_template_db, tmp_path_factory, "browser_warnings")
    session = next(iter_session(database_url))
    day = dt.date.today()
    commitments.sign(session, principal("ent1"), ENT1, "samr-quality-public", day)
    commitments.sign(session, principal("ent2"), ENT2, "samr-food-licence", day)
    session.close()
    dispose_engine(database_url)
    with uvicorn_server(tmp_path, database_url) as base:
        yield base


def test_public_list_then_broken_commitment_to_closed_warning(server, page, tmp_path):  # noqa: F811
    page.goto(server + "/commitments/public")
    assert page.locator("tr.public-commitment").count() == 1
    assert "产品质量信用承诺" in page.content() and "食品经营许可" not in page.content()

    _login(page, server, "reg_samr")
    page.wait_for_url("**/regulator")
    page.click("#commitments-link")
    row = page.locator("tr.commitment", has_text="食品经营许可告知承诺")
    row.locator("select[name=outcome]").select_option("broken")
    row.locator("select[name=breach]").select_option("false_statement")
    row.locator("input[name=basis]").fill("现场核查发现经营场所与承诺不符")
    row.locator("input[name=document_no]").fill("宁市监承〔2026〕9号")
    row.locator("button[type=submit]").click()
    page.wait_for_url("**/regulator/commitments")
    assert "已违约" in page.locator("tr.commitment", has_text="食品经营许可告知承诺").inner_text()

    page.goto(server + "/regulator/warnings")
    page.click("button.primary")  # the default purpose
    warning = page.locator("tr.warning", has_text="违反信用承诺")
    assert ENT2 in warning.inner_text()
    assert "共 " in page.locator("#warnings-pager").inner_text()  # the list is paged, its total said
    page.set_viewport_size({"width": 375, "height": 800})  # a phone: the page never scrolls sideways
    page.screenshot(path=str(tmp_path / "warnings-375.png"), full_page=True)
    assert page.evaluate("() => document.documentElement.scrollWidth - document.documentElement.clientWidth") <= 0
    page.set_viewport_size({"width": 1280, "height": 900})
    warning.locator("text=确认").click()
    warning = page.locator("tr.warning", has_text="违反信用承诺")
    assert "已确认" in warning.inner_text()
    warning.locator("input[name=note]").fill("已列入本期双随机重点抽查")
    warning.locator("button.primary").click()
    page.screenshot(path=str(tmp_path / "warnings.png"), full_page=True)
    assert page.locator("tr.warning", has_text="违反信用承诺").count() == 0  # closed: off the default list
    with page.expect_download() as download:
        page.click("#warnings-csv")
    assert download.value.suggested_filename == "warnings.csv"
