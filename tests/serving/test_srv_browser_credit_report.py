"""The credit report in a real browser: an enterprise downloads its signed report from 我的信用,
and the address its QR code carries shows the issuance (Debian's Chromium against uvicorn)."""

from __future__ import annotations

import os

import pytest
from srv_fixtures import ENT1, PASSWORD, database_copy, uvicorn_server

from serving.deps import get_today
from serving.report_pdf import verify_pdf

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser"), pytest.mark.slow]
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def test_the_enterprise_downloads_its_signed_report_and_the_qr_address_confirms_it(_template_db, tmp_path_factory):
    if not os.path.exists(CHROMIUM):
        pytest.skip("Debian chromium not installed")
    from playwright.sync_api import sync_playwright

    tmp_path, database_url = database_copy(_template_db, tmp_path_factory, "browser-report")
    keys = tmp_path / "keys"
    with uvicorn_server(tmp_path, database_url, TIERS_KEYS_DIR=str(keys)) as base, sync_playwright() as pw:
        # (the QR code carries TIERS_PUBLIC_URL's address; the same path is opened on this server)
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_context(accept_downloads=True).new_page()
            page.goto(base + "/login")
            page.fill("#username", "ent1")
            page.fill("#password", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url(f"**/credit/{ENT1}")
            with page.expect_download(timeout=120_000) as download:
                page.click("#credit-report-download")
            saved = tmp_path / "downloaded.pdf"
            download.value.save_as(saved)
            # the server dates a report by China's calendar: checked by UTC's, it is "not yet valid"
            # from 16:00 to 24:00 UTC
            verdict = verify_pdf(saved.read_bytes(), (keys / "report-certificate.pem").read_text(), get_today())
            assert verdict.valid and verdict.uscc == ENT1, verdict
            page.goto(f"{base}/verify/credit-reports/{verdict.serial}")
            assert "由本平台出具" in page.inner_text("#report-issued")
            assert page.inner_text("#report-sha256") == verdict.sha256
            page.screenshot(path=str(tmp_path / "verification-page.png"), full_page=True)
        finally:
            browser.close()
