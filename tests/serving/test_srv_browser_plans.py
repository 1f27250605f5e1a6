"""A regulator creates a 双随机 plan in a real browser, sees MATCH, and downloads the list."""

from __future__ import annotations

import csv
import io

import pytest
from srv_fixtures import database_copy, uvicorn_server
from test_srv_browser import _login, browser, page  # noqa: F401  (fixtures reused)
from test_srv_plans_flow import AS_OF, store_graded_city, write_scheduler_data
from test_srv_plans_v2 import _stdlib_verify

from serving.db.session import dispose_engine, iter_session

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser"), pytest.mark.slow]


@pytest.fixture(scope="module")
def plan_server(_template_db, tmp_path_factory):
    """uvicorn on a copy of the seeded DB plus a graded city and the scheduler's data directory."""
    tmp_path, database_url = database_copy(_template_db, tmp_path_factory, "browser_plans")
    session = next(iter_session(database_url))
    store_graded_city(session)
    session.close()
    dispose_engine(database_url)
    data_dir = write_scheduler_data(tmp_path / "data")
    with uvicorn_server(tmp_path, database_url, TIERS_DATA_DIR=str(data_dir)) as base:
        yield base


def test_commit_then_second_person_salt_then_draw_download_and_public_page(plan_server, browser, page, tmp_path):  # noqa: F811
    """tiers-draw-v2 in the pages: the creator publishes the commitment (public at once, before the
    draw), a second regulator types the salt, the plan is drawn; downloads and the public page."""
    _login(page, plan_server, "reg_samr")
    page.wait_for_url("**/regulator")
    page.click("#plans-link")
    page.wait_for_url("**/regulator/plans")
    page.fill("#plan_id", "2026Q4-browser")
    page.fill("#period_start", "2026-12-01")
    page.fill("#period_end", "2026-12-31")
    page.fill("#as_of", AS_OF)
    page.check("input[name=items][value=SAMR-03]")
    page.click("#create-plan")
    page.wait_for_selector("#salt-form")
    assert page.locator("tr.visit").count() == 0 and page.inner_text("#committed-at")
    plan_url = page.url

    public = browser.new_context().new_page()  # no login
    public.goto(plan_url.replace("/regulator/plans/", "/public/plans/"))
    assert "等待公开随机数" in public.content() and public.locator(".bundle-download").count() == 0

    page.fill("#salt-value", "5 8 1")  # the creator may not enter it
    page.click("#enter-salt")
    page.wait_for_load_state()
    assert "创建抽查计划的人员不能录入公开随机数" in page.content()

    second = browser.new_context(viewport={"width": 1100, "height": 1400}).new_page()
    _login(second, plan_server, "reg_samr2")
    second.wait_for_url("**/regulator")
    second.goto(plan_url)
    second.fill("#salt-value", "5 8 1")
    second.click("#enter-salt")
    second.wait_for_selector("#verify-result")
    assert "MATCH" in second.inner_text("#verify-result") and "MISMATCH" not in second.inner_text("#verify-result")
    assert "reg_samr2" in second.inner_text("#salt")
    shown = second.locator("tr.visit").count()
    assert shown > 0
    second.screenshot(path=str(tmp_path / "plan.png"), full_page=True)

    with second.expect_download() as download_info:
        second.click("#download-csv")
    rows = list(csv.DictReader(io.StringIO(download_info.value.path().read_text(encoding="utf-8-sig"))))
    assert len(rows) == shown and all(r["信用等级（内部）"] in "ABCD" for r in rows)  # headers in Chinese
    with second.expect_download() as xlsx_info:
        second.click("#download-xlsx")
    assert xlsx_info.value.path().read_bytes()[:2] == b"PK"  # a zip container: an .xlsx workbook
    with second.expect_download() as bundle_info:
        second.click("#download-bundle")
    bundle = bundle_info.value.path().read_text(encoding="utf-8")
    assert '"grade"' not in bundle
    (tmp_path / "bundle.json").write_text(bundle, encoding="utf-8")
    assert _stdlib_verify(str(tmp_path / "bundle.json")).startswith("MATCH")

    public.goto(plan_server + "/public/samr")
    assert "MATCH" in public.inner_text("#public-plans") and public.locator(".bundle-download").count() == 1
    public.screenshot(path=str(tmp_path / "public.png"), full_page=True)
