"""Issue 17 items 6 and 7 in a real browser: the admin deactivates a user and checks the query log;
a sector user uploads a labelled file, watches the fit's progress, reads the report with its charts
and promotes the new challenger through the gate (one server and one browser for the module)."""

from __future__ import annotations

import pytest
from srv_fixtures import database_copy, uvicorn_server
from test_srv_browser import _login, browser, page  # noqa: F401  (fixtures reused)
from test_srv_sector_fit import labelled_csv

from serving.services import sector_fit

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser"), pytest.mark.slow]


@pytest.fixture(scope="module")
def admin_server(_template_db, tmp_path_factory):
    """uvicorn on a copy of the seeded DB, with a registry holding a general champion and a
    tiers-sector-C champion (tiny, fitted here through the workflows), so an upload that is too
    small for its own model recalibrates the general one quickly and becomes the challenger."""
    from features.specs import FEATURE_SPECS
    from serving.workflows.training import fit_labelled, open_registry, train_one
    from training.config import TrainingConfig
    from training.pipeline import feature_metas_from_specs

    tmp_path, database_url = database_copy(_template_db, tmp_path_factory, "browser_admin")
    tracking = f"sqlite:///{tmp_path / 'mlflow' / 'mlflow.db'}"
    registry = open_registry(tracking, tmp_path / "mlflow" / "mlartifacts")
    data = sector_fit.parse_labelled_csv(labelled_csv(seed=5).encode(), "C")
    config = TrainingConfig(train_as_of=tuple(sorted(set(data["as_of"])))[:2],
                            validate_as_of=max(data["as_of"]), candidates=("gbm_additive",), n_boot=20)
    train_one(data, feature_metas_from_specs(FEATURE_SPECS), config, registry, sector=None)
    fit_labelled(data, registry, sector="C", n_boot=20)  # too few outcomes: the general one, recalibrated
    with uvicorn_server(tmp_path, database_url, TIERS_MLFLOW_TRACKING_URI=tracking) as base:
        yield base, tmp_path


def test_admin_deactivates_a_user_and_checks_the_query_log(admin_server, page, tmp_path):  # noqa: F811
    base, _ = admin_server
    page.set_default_timeout(90_000)  # a loaded machine: a login (argon2) may take long
    _login(page, base, "admin")
    page.wait_for_url("**/admin")
    page.click("#admin-users-link")
    page.wait_for_url("**/admin/users")
    page.locator("tr[data-username=reg_tax] button.deactivate").click()
    page.wait_for_url("**/admin/users?done=deactivated")
    assert "已停用" in page.inner_text("tr[data-username=reg_tax] .user-status")
    page.screenshot(path=str(tmp_path / "admin_users.png"), full_page=True)
    # the service signs its checkpoint a moment after the last entry (its own thread): on a loaded
    # machine the first check may come before it; a real break stays a break on the next check
    for _ in range(5):
        page.goto(base + "/admin/querylog")
        page.click("#run-check")
        page.wait_for_selector("#check-verdict")
        verdict = page.inner_text("#check-verdict")
        if page.get_attribute("#check-verdict", "data-ok") == "true":
            break
        page.wait_for_timeout(2_000)
    assert page.get_attribute("#check-verdict", "data-ok") == "true" and "校验通过" in verdict, verdict
    page.set_viewport_size({"width": 375, "height": 800})
    page.screenshot(path=str(tmp_path / "admin_querylog_375.png"), full_page=True)


def test_sector_uploads_watches_progress_reads_report_and_promotes(admin_server, page, tmp_path):  # noqa: F811
    base, _ = admin_server
    page.set_default_timeout(90_000)
    _login(page, base, "sector_c")
    page.wait_for_url("**/sector")
    page.click("#fit-link")
    page.wait_for_url("**/sector/fit")
    bad = tmp_path / "bad.csv"
    lines = labelled_csv(n=30).splitlines()
    lines[2] = "123" + lines[2][18:]  # the uscc cell (18 characters) of file line 3
    bad.write_text("\n".join(lines) + "\n", encoding="utf-8")
    page.set_input_files("#fit-file", str(bad))
    page.click("#fit-submit")
    page.wait_for_selector("#fit-error")
    assert "文件第 3 行" in page.inner_text("#fit-error") and "uscc" in page.inner_text("#fit-error")
    good = tmp_path / "labels.csv"
    good.write_text(labelled_csv(seed=6), encoding="utf-8")
    page.set_input_files("#fit-file", str(good))
    page.click("#fit-submit")
    page.wait_for_url("**/sector/fit/*")
    page.wait_for_selector("#fit-report:not([hidden])", timeout=120_000)  # the page polls; no reload
    assert page.get_attribute("#fit-progress", "value") == "100" and "候选版本" in page.inner_text("#fit-outcome")
    page.screenshot(path=str(tmp_path / "fit_done.png"), full_page=True)
    page.click("#fit-report")
    page.wait_for_selector("#calibration-chart")
    assert page.locator("#grade-score-chart rect").count() > 0 and page.locator("#calibration-chart circle").count() > 0
    page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
    page.click("#back-to-sector")
    page.wait_for_url("**/sector")
    form = page.locator("form.promote[action$='/versions/2/promote']")
    form.locator("input[name=reason]").fill("上传本行业最新标注数据重新训练")
    form.locator("button").click()
    page.wait_for_selector("#gate-outcome")
    assert page.get_attribute("#gate-outcome", "data-outcome") in ("promoted", "refused")
    page.screenshot(path=str(tmp_path / "promotion.png"), full_page=True)
