"""A regulator creates a 双随机 plan in a real browser, sees MATCH, and downloads the list."""

from __future__ import annotations

import csv
import io
import os
import re
import time
from pathlib import Path

import httpx
import pytest
from srv_fixtures import PASSWORD, database_copy, uvicorn_server
from test_srv_browser import _login, browser, page  # noqa: F401  (fixtures reused)
from test_srv_plans_flow import AS_OF, _task, store_graded_city, write_scheduler_data
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
    page.wait_for_selector("#salt-not-yours")  # the creator is told, not offered the form (review17c)
    assert page.locator("#salt-form").count() == 0
    assert page.locator("tr.visit").count() == 0 and page.inner_text("#committed-at")
    plan_url = page.url

    public = browser.new_context().new_page()  # no login
    public.goto(plan_url.replace("/regulator/plans/", "/public/plans/"))
    assert "等待公开随机数" in public.content() and public.locator(".bundle-download").count() == 0

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


# --------------------------------------------------------------------------- phones and accessibility
# Issue 17 item 8, on this module's server: axe-core (vendored, tests/serving/axe/axe.min.js; injected,
# no network) finds no serious or critical violation on the main pages (login, the enterprise's
# credit page, the regulator's list, a plan, the analyst's page) in Chinese and in English; at 375 px
# the page itself never scrolls sideways (wide tables stack or scroll in their own box); the lists'
# pager keeps the filters in the browser; screenshots at 1280 and 375 px in pytest's tmp dir (printed).

AXE = Path(__file__).parent / "axe" / "axe.min.js"
WIDE, PHONE = 1280, 375


@pytest.fixture(scope="module")
def site(plan_server):
    """The module's server with one drawn plan (tiers-draw-v1, through the API): (base URL, plan id)."""
    with httpx.Client(base_url=plan_server) as client:
        token = client.post("/api/v1/auth/token", data={"username": "reg_samr", "password": PASSWORD}).json()
        plan = client.post("/api/v1/plans", json=_task(plan_id="2026Q4-a11y"),
                           headers={"Authorization": f"Bearer {token['access_token']}"})
        assert plan.status_code == 201, plan.text
    return plan_server, plan.json()["id"]


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    """Where the screenshots go: pytest's tmp dir, or TIERS_SCREENSHOT_DIR to keep them (printed)."""
    kept = os.environ.get("TIERS_SCREENSHOT_DIR")
    path = Path(kept) if kept else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    print(f"\nscreenshots: {path}")
    return path


def _serious(tab) -> list[str]:
    """axe's serious and critical violations of the page as it is: rule, impact, first nodes."""
    tab.add_script_tag(path=str(AXE))
    result = tab.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    return [f"{v['id']} ({v['impact']}): {v['help']} — {[n['target'] for n in v['nodes'][:3]]}"
            for v in result["violations"] if v["impact"] in ("serious", "critical")]


def _sideways(tab) -> int:
    """How far the page itself scrolls sideways (0: it fits the viewport)."""
    return tab.evaluate("() => document.documentElement.scrollWidth - document.documentElement.clientWidth")


def _check(tab, url: str, name: str, lang: str, shots: Path, problems: list[str],
           status: tuple[int, ...] = (200,)) -> None:
    """axe at 1280 px, then the page at 375 px; screenshots at both widths (Chinese: the default)."""
    started = time.perf_counter()
    tab.set_viewport_size({"width": WIDE, "height": 900})
    response = tab.goto(f"{url}{'&' if '?' in url else '?'}lang={lang}")
    assert response.status in status, (name, response.status)
    problems += [f"{name}/{lang}: {v}" for v in _serious(tab)]
    if lang == "zh":
        tab.screenshot(path=str(shots / f"{name}-{WIDE}.png"), full_page=True)
    tab.set_viewport_size({"width": PHONE, "height": 800})
    if overflow := _sideways(tab):
        problems.append(f"{name}/{lang}: the page scrolls {overflow}px sideways at {PHONE}px")
    if lang == "zh":
        tab.screenshot(path=str(shots / f"{name}-{PHONE}.png"), full_page=True)
    print(f"{name}/{lang}: {time.perf_counter() - started:.1f}s")


def test_main_pages_have_no_serious_axe_violation_and_fit_a_phone(site, browser, shots):  # noqa: F811
    base, plan_id = site
    problems: list[str] = []
    users = {"login": None, "enterprise": "ent1", "regulator": "reg_samr", "analyst": "analyst"}
    for role, username in users.items():
        context = browser.new_context(viewport={"width": WIDE, "height": 900}, bypass_csp=True)  # axe is injected
        tab = context.new_page()
        if username:
            _login(tab, base, username)
            tab.wait_for_load_state()
        home = tab.url  # the enterprise lands on its own credit page
        for lang in ("zh", "en"):
            if role == "login":
                _check(tab, base + "/login", "login", lang, shots, problems)
            elif role == "enterprise":
                uscc = home.rsplit("/", 1)[1].split("?")[0]
                assert "/credit/" in home, home
                _check(tab, f"{base}/credit/{uscc}", "credit", lang, shots, problems)
                _check(tab, f"{base}/credit/{uscc}/draw-openings", "openings", lang, shots, problems,
                       status=(200, 404))  # 404: in no tiers-draw-v2 pool yet (the error page)
            elif role == "regulator":
                _check(tab, f"{base}/regulator?purpose=日常监管&size=10", "regulator", lang, shots, problems)
                _check(tab, f"{base}/regulator/plans/{plan_id}", "plan", lang, shots, problems)
            else:
                _check(tab, base + "/analyst", "analyst", lang, shots, problems)
        context.close()
    assert not problems, "\n".join(problems)


def test_regulator_pages_through_its_list_in_the_browser_keeping_the_filters(site, browser):  # noqa: F811
    base, _plan = site
    context = browser.new_context(viewport={"width": PHONE, "height": 800})
    tab = context.new_page()
    _login(tab, base, "reg_samr")
    tab.wait_for_url("**/regulator")
    tab.select_option("#f-industry", "C")
    tab.select_option("#f-size", "10")
    tab.click("#subject-filters button[type=submit]")
    tab.wait_for_selector("#subjects-pager")
    total = int("".join(ch for ch in tab.inner_text("#subjects-pager .pager-total") if ch.isdigit()))
    first = tab.locator("#subjects tr.subject").count()
    assert total > 10 and first == 10
    tab.click("#subjects-pager a.next")
    tab.wait_for_load_state()
    assert "industry=C" in tab.url and "size=10" in tab.url and tab.input_value("#f-industry") == "C"
    assert tab.locator("#subjects tr.subject").count() == min(10, total - 10)
    assert _sideways(tab) == 0
    first_rows = tab.locator("#subjects tr.subject td:first-child").all_inner_texts()
    tab.click("#subjects-pager a.prev")  # keyset paging goes back too, filters kept
    tab.wait_for_load_state()
    assert "industry=C" in tab.url and "after=" not in tab.url and tab.locator("#subjects tr.subject").count() == 10
    assert tab.locator("#subjects tr.subject td:first-child").all_inner_texts() != first_rows
    district = tab.locator("#f-district option").nth(1)  # the district filter: names to choose from
    name, code = district.inner_text(), district.get_attribute("value")
    assert re.search("[\u4e00-\u9fff]", name) and code.isdigit()
    tab.select_option("#f-district", code)
    tab.click("#subject-filters button[type=submit]")
    tab.wait_for_load_state()
    assert f"district={code}" in tab.url and tab.locator("#f-district option:checked").inner_text() == name
    context.close()


def test_plan_pages_speak_chinese(site):
    """The crawl of test_srv_browser_admin on this module's server, which has plans (a drawn one and
    the browser test's) and the scheduler's data: the plan pages, their public pages, the openings."""
    from srv_fixtures import form_login
    from test_srv_browser_admin import _crawl

    base, plan_id = site
    problems = []
    for username, starts in {"reg_samr": ["/regulator/plans", f"/regulator/plans/{plan_id}", "/public/samr"],
                             "ent1": ["/credit/" + _ent1() + "/draw-openings"]}.items():
        with httpx.Client(base_url=base, timeout=60) as client:
            assert form_login(client, username).status_code == 303
            found = _crawl(client, starts)
            assert found, username
            problems += [f"{username} {url}: {sorted(words)}" for url, words in found.items() if words]
    assert not problems, "\n".join(problems)


def _ent1() -> str:
    from srv_fixtures import ENT1

    return ENT1
