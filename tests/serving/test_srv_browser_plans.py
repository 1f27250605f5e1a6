"""A regulator creates a 双随机 plan in a real browser, sees MATCH, and downloads the list."""

from __future__ import annotations

import csv
import io

import pytest
from srv_fixtures import database_copy, uvicorn_server
from test_srv_browser import _login, browser, page  # noqa: F401  (fixtures reused)
from test_srv_plans_flow import AS_OF, store_graded_city, write_scheduler_data

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


def test_regulator_creates_and_downloads_a_plan(plan_server, page, tmp_path):  # noqa: F811
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
    page.wait_for_selector("#verify-result")
    assert "MATCH" in page.inner_text("#verify-result") and "MISMATCH" not in page.inner_text("#verify-result")
    shown = page.locator("tr.visit").count()
    assert shown > 0
    page.screenshot(path=str(tmp_path / "plan.png"), full_page=True)

    with page.expect_download() as download_info:
        page.click("#download-csv")
    rows = list(csv.DictReader(io.StringIO(download_info.value.path().read_text(encoding="utf-8-sig"))))
    assert len(rows) == shown and all(r["grade"] in "ABCD" for r in rows)
    with page.expect_download() as xlsx_info:
        page.click("#download-xlsx")
    assert xlsx_info.value.path().read_bytes()[:2] == b"PK"  # a zip container: an .xlsx workbook
