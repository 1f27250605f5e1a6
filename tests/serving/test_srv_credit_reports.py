"""信用报告 (issue 20 item 4): a signed 公共信用信息报告 per subject — what it shows (public records
in force, list entries, commitments; never the grade), who may have one, its PAdES signature
checked offline, altered files refused, every issuance logged.

Two reports are rendered for the whole module (a render and signature cost seconds): one issued
by the enterprise through the API, one by a regulator through `tiers credit-report issue`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import shutil
import subprocess
from io import BytesIO

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from srv_fixtures import ENT1, TODAY, database_copy, make_uscc, principal
from typer.testing import CliRunner

from serving.app import create_app
from serving.db.session import dispose_engine, iter_session
from serving.db.tables import CreditReport, QueryLogEntry
from serving.deps import get_today
from serving.keys import make_report_certificate, make_report_key, with_keys
from serving.report_pdf import verify_pdf
from serving.security import create_access_token
from serving.services.querylog import LogKeys, use_keys
from serving.services.subjects import store_records
from serving.settings import Settings

# one worker renders the module's reports once (`make test` runs --dist loadgroup)
pytestmark = pytest.mark.xdist_group("credit_reports")

# besides the seeded R1 (general penalty, published to 2027-03-10), R2 (serious penalty) and R3
# (tax arrears: not public)
EXTRA_RECORDS = [
    dict(record_id="L1", uscc=ENT1, kind="list_abnormal_operation", decision_date="2026-05-01", department="samr",
         document_no="宁市监异〔2026〕7号"),
    dict(record_id="L2", uscc=ENT1, kind="list_key_attention", decision_date="2025-01-01", end_date="2026-01-01",
         department="samr", document_no="宁市监重〔2025〕1号"),  # left the list: not shown
    dict(record_id="C1", uscc=ENT1, kind="commitment_made", subkind="application", decision_date="2026-04-01",
         end_date="2027-04-01", department="samr", document_no="承诺书〔2026〕5号"),
    dict(record_id="P0", uscc=ENT1, kind="admin_penalty", severity="general", decision_date="2024-01-10",
         publicity_end="2025-01-10", department="samr", document_no="宁市监罚〔2024〕1号"),  # publicity over
    dict(record_id="K1", uscc=ENT1, kind="complaint", decision_date="2026-10-01", department="samr"),  # not public
]
# commitments signed in the service: the report lists only those whose catalogue matter is public
# (主动公示型), named by the matter, never a private one (审批替代型, 行业自律型, 信用修复型) nor an
# ingested commitment record, which no public matter stands behind (C1, 审批类)
PUBLIC_MATTER, PRIVATE_MATTERS = "samr-quality-public", ("samr-food-licence", "tax-self-discipline")
SHOWN = ("R1", "R2", "L1", "宁市监罚〔2026〕12号", "宁市监异〔2026〕7号", "产品质量信用承诺")
NOT_SHOWN = ("R3", "L2", "P0", "K1", "承诺书〔2026〕5号", "食品经营许可告知承诺", "依法诚信纳税承诺")
# what the seeded grade of ENT1 is (C, score 640, probability 0.21), in every form it could be shown
GRADE_WORDS = ("信用等级", "信用分", "信用风险较高", "风险等级", "640", "0.21", "评分")


def _headers(app, username: str) -> dict[str, str]:
    token, _ = create_access_token(principal(username), app.state.settings.jwt_key, 30)
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def world(_template_db, tmp_path_factory):
    base, url = database_copy(_template_db, tmp_path_factory, "credit-reports")
    settings = with_keys(Settings(database_url=url, run_migrations_on_startup=False, data_dir=base,
                                  mlflow_tracking_uri=f"sqlite:///{base / 'mlflow.db'}", keys_dir=base / "keys",
                                  public_url="https://credit.example.gov.cn"))
    use_keys(url, LogKeys.of(settings))
    session = next(iter_session(url))
    store_records(session, EXTRA_RECORDS)
    from serving.services import commitments

    for code in (PUBLIC_MATTER, *PRIVATE_MATTERS):
        commitments.sign(session, principal("ent1"), ENT1, code, TODAY - dt.timedelta(days=10))
    session.close()
    app = create_app(settings)
    app.dependency_overrides[get_today] = lambda: TODAY
    client = TestClient(app)
    issued = client.post(f"/api/v1/credit-reports/{ENT1}", headers=_headers(app, "ent1"))
    assert issued.status_code == 201, issued.text
    yield {"app": app, "client": client, "settings": settings, "url": url, "base": base, "response": issued,
           "pdf": issued.content, "cert": settings.secret("report_certificate")}
    dispose_engine(url)


def _text(pdf: bytes) -> str:
    from pypdf import PdfReader

    return "\n".join(page.extract_text() or "" for page in PdfReader(BytesIO(pdf)).pages)


def test_the_report_shows_public_records_in_force_lists_and_commitments_and_never_the_grade(world):
    response, pdf = world["response"], world["pdf"]
    assert response.headers["content-type"] == "application/pdf"
    serial = response.headers["X-Report-Serial"]
    text = _text(pdf)
    assert "公共信用信息报告" in text and "南京甲制造有限公司" in text and ENT1 in text and serial in text
    assert f"有效期至 {TODAY + dt.timedelta(days=30)}" in text.replace("\n", " ")
    for shown in SHOWN:
        assert shown in text, shown
    for hidden in (*NOT_SHOWN, *GRADE_WORDS):
        assert hidden not in text, hidden
    fonts = subprocess.run(["pdffonts", "-"], input=pdf, capture_output=True, check=False).stdout.decode()
    assert "yes yes yes" in " ".join(fonts.split()), fonts  # the Chinese font embedded, subset, with ToUnicode


def test_the_catalogue_decides_which_commitments_a_report_lists(world):
    # the report's data layer: one rule (commitments.public_ids), whatever the record's kind says
    from serving.db.tables import Commitment
    from serving.services import commitments
    from serving.services.credit_reports import public_records

    session = next(iter_session(world["url"]))
    try:
        signed = {c.matter_code: c for c in session.scalars(select(Commitment).where(Commitment.uscc == ENT1))}
        catalogue = commitments.default_catalogue()
        assert {code: catalogue.matter(code).public for code in signed} == {
            PUBLIC_MATTER: True, **dict.fromkeys(PRIVATE_MATTERS, False)}
        shown = set(public_records(session, ENT1, TODAY)["record_id"])
        assert signed[PUBLIC_MATTER].id in {int(r[3:12]) for r in shown if r.startswith("CMT")}
        assert not any(r.startswith(f"CMT{signed[code].id:09d}") for r in shown for code in PRIVATE_MATTERS)
        assert "C1" not in shown
        # a record that names a public commitment of another subject does not borrow its publicity
        assert commitments.public_ids(session, "91320100MA1XXXXX9X", [signed[PUBLIC_MATTER].id]) == set()
    finally:
        session.close()


def test_page_one_renders_to_png(world, tmp_path_factory):
    assert shutil.which("pdftoppm"), "pdftoppm missing: scripts/system-deps.sh installs poppler-utils"
    out = tmp_path_factory.mktemp("rendered-report")
    (out / "report.pdf").write_bytes(world["pdf"])
    subprocess.run(["pdftoppm", "-png", "-r", "70", "-f", "1", "-l", "1", "-singlefile", str(out / "report.pdf"),
                    str(out / "credit-report-page1")], check=True, timeout=60)
    png = out / "credit-report-page1.png"
    assert png.stat().st_size > 5_000 and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    print(f"rendered credit report, page 1: {png}")


def test_the_signature_verifies_offline_and_any_altered_byte_fails(world, tmp_path):
    pdf, cert = world["pdf"], world["cert"]
    good = verify_pdf(pdf, cert, TODAY)
    assert good.valid and good.serial == world["response"].headers["X-Report-Serial"] and good.uscc == ENT1

    async def inside_an_event_loop():  # pyhanko's sync API calls asyncio.run (found by the browser test)
        return verify_pdf(pdf, cert, TODAY)

    assert asyncio.run(inside_an_event_loop()).valid
    for position in (len(pdf) // 7, len(pdf) // 2, len(pdf) - 600):  # content, middle, near the end
        altered = bytearray(pdf)
        altered[position] ^= 0x01
        assert not verify_pdf(bytes(altered), cert, TODAY).valid, position
    # appending a revision (an incremental update) leaves the signed bytes intact but not the whole file
    appended = verify_pdf(pdf + b"\n1 0 obj\n<<>>\nendobj\n", cert, TODAY)
    assert not appended.valid and not appended.whole_file
    # another implementation reads it the same way: poppler's pdfsig (what poppler-based readers show)
    (tmp_path / "good.pdf").write_bytes(pdf)
    altered = bytearray(pdf)
    altered[len(pdf) // 2] ^= 0x01
    (tmp_path / "altered.pdf").write_bytes(bytes(altered))
    poppler = {name: subprocess.run(["pdfsig", str(tmp_path / name)], capture_output=True, text=True,
                                    timeout=60, check=False).stdout for name in ("good.pdf", "altered.pdf")}
    assert "Signature is Valid." in poppler["good.pdf"] and "Total document signed" in poppler["good.pdf"]
    assert "ETSI.CAdES.detached" in poppler["good.pdf"]  # PAdES
    assert "Signature is Valid." not in poppler["altered.pdf"], poppler["altered.pdf"]
    forged_key = make_report_key()  # a report signed by anyone else is not the service's
    assert not verify_pdf(pdf, make_report_certificate(forged_key), TODAY).trusted
    assert verify_pdf(pdf, cert, good.valid_until + dt.timedelta(days=1)).expired


def test_the_service_says_whether_a_serial_was_issued_and_whether_the_file_is_that_one(world):
    client, pdf = world["client"], world["pdf"]
    serial = world["response"].headers["X-Report-Serial"]
    checked = client.post("/api/v1/credit-reports/verify", content=pdf, headers={"Content-Type": "application/pdf"})
    assert checked.status_code == 200 and checked.json()["valid"] and checked.json()["issued"]
    assert checked.json()["same_file_as_issued"]
    altered = bytearray(pdf)
    altered[len(pdf) // 2] ^= 0x01
    refused = client.post("/api/v1/credit-reports/verify", content=bytes(altered))
    assert refused.status_code == 200 and not refused.json()["valid"]
    looked_up = client.get(f"/api/v1/credit-reports/{serial}").json()
    assert looked_up["uscc"] == ENT1 and looked_up["sha256"] == checked.json()["sha256"]
    assert "grade" not in looked_up and "score" not in looked_up
    page = client.get(f"/verify/credit-reports/{serial}")  # where the QR code points (no login)
    assert page.status_code == 200 and ENT1 in page.text and looked_up["sha256"] in page.text
    assert client.get("/verify/credit-reports/CR20261123FFFFFFFFFFFFFFFF").status_code == 404
    assert client.get("/api/v1/credit-reports/certificate.pem").text == world["cert"]


def test_another_tenant_is_refused_and_every_attempt_is_logged(world):
    app, client = world["app"], world["client"]
    # not its own / not covered: the same 404 as an absent subject; roles that may not issue: 403
    for username, status in (("ent2", 404), ("reg_eco", 404), ("sector_c", 403), ("admin", 403), ("analyst", 403)):
        r = client.post(f"/api/v1/credit-reports/{ENT1}?purpose=采购资格审查", headers=_headers(app, username))
        assert r.status_code == status and r.headers["content-type"] == "application/json", (username, r.text)
    absent = client.post(f"/api/v1/credit-reports/{make_uscc('91320102MA1XXXXX9')}", headers=_headers(app, "ent2"))
    not_yours = client.post(f"/api/v1/credit-reports/{ENT1}", headers=_headers(app, "ent2"))
    assert absent.json() != not_yours.json() and absent.json()["error"]["code"] == not_yours.json()["error"]["code"]
    session = next(iter_session(world["url"]))
    try:
        denied = session.scalars(select(QueryLogEntry).where(QueryLogEntry.actor == "ent2",
                                                             QueryLogEntry.uscc == ENT1)).all()
        assert denied and all(e.outcome == "denied" for e in denied)
        assert {r.issuer for r in session.scalars(select(CreditReport))} <= {"ent1", "reg_samr"}
    finally:
        session.close()


def test_a_regulator_issues_for_a_covered_subject_from_the_cli_and_it_verifies(world, monkeypatch, tmp_path):
    from serving.cli.main import app as cli
    from serving.settings import get_settings

    monkeypatch.setenv("TIERS_DATABASE_URL", world["url"])
    monkeypatch.setenv("TIERS_KEYS_DIR", str(world["base"] / "keys"))
    monkeypatch.setenv("TIERS_PUBLIC_URL", "https://credit.example.gov.cn")
    get_settings.cache_clear()
    try:
        out = tmp_path / "report.pdf"
        refused = CliRunner().invoke(cli, ["credit-report", "issue", ENT1, "--issuer", "reg_eco", "--purpose",
                                           "招标投标资格审查", "--out", str(out), "--today", TODAY.isoformat()])
        assert refused.exit_code == 2 and not out.exists()  # ecology covers ENT2 only
        issued = CliRunner().invoke(cli, ["credit-report", "issue", ENT1, "--issuer", "reg_samr", "--purpose",
                                          "招标投标资格审查", "--out", str(out), "--today", TODAY.isoformat(), "--json"])
        assert issued.exit_code == 0, issued.output
        ok = CliRunner().invoke(cli, ["credit-report", "verify", str(out), "--check-issued",
                                      "--today", TODAY.isoformat(), "--json"])
        assert ok.exit_code == 0 and '"issued": true' in ok.output, ok.output
        altered = tmp_path / "altered.pdf"
        data = bytearray(out.read_bytes())
        data[len(data) // 3] ^= 0x20
        altered.write_bytes(bytes(data))
        bad = CliRunner().invoke(cli, ["credit-report", "verify", str(altered), "--today", TODAY.isoformat()])
        assert bad.exit_code == 1 and "INVALID" in bad.output
    finally:
        get_settings.cache_clear()
    session = next(iter_session(world["url"]))
    try:
        rows = session.scalars(select(CreditReport).order_by(CreditReport.id)).all()
        assert [(r.issuer, r.uscc) for r in rows] == [("ent1", ENT1), ("reg_samr", ENT1)]
        assert all(len(r.sha256) == 64 and r.valid_until == TODAY + dt.timedelta(days=30) for r in rows)
        assert len({r.serial for r in rows}) == 2
    finally:
        session.close()


def test_the_enterprise_page_offers_the_download_and_the_form_needs_its_csrf_token(world):
    from srv_fixtures import form_login

    client = TestClient(world["app"])
    assert form_login(client, "ent1").status_code in (200, 303)
    page = client.get(f"/credit/{ENT1}")
    assert page.status_code == 200 and 'id="credit-report-download"' in page.text
    forged = client.post(f"/credit/{ENT1}/credit-report", data={"csrf_token": "x"})
    assert forged.status_code == 403


def test_production_refuses_to_start_without_the_report_key_or_with_a_mismatched_certificate(tmp_path):
    import secrets

    from pydantic import ValidationError

    key, other = make_report_key(), make_report_key()
    base = dict(environment="production", keys_dir=tmp_path / "production-keys", jwt_secret=secrets.token_urlsafe(48),
                querylog_mac_key=secrets.token_urlsafe(48), querylog_signing_key=secrets.token_hex(32))
    with pytest.raises(ValidationError, match="TIERS_REPORT_SIGNING_KEY"):
        Settings(**base, report_certificate=make_report_certificate(key))
    with pytest.raises(ValidationError, match="is not the certificate of TIERS_REPORT_SIGNING_KEY"):
        Settings(**base, report_signing_key=key, report_certificate=make_report_certificate(other))
    assert Settings(**base, report_signing_key=key, report_certificate=make_report_certificate(key))
    assert not (tmp_path / "production-keys").exists()  # nothing made in production


def test_issuing_is_rate_limited_per_user_before_anything_is_rendered(world):
    from serving.errors import TooManyAttempts
    from serving.services.credit_reports import ReportSigner, issue_report

    signer = ReportSigner.of(world["settings"])
    session = next(iter_session(world["url"]))
    try:
        with pytest.raises(TooManyAttempts) as limited:  # ent1 issued one this hour (the module's report)
            issue_report(session, principal("ent1"), ENT1, ReportSigner(**{**signer.__dict__, "per_hour": 1}), TODAY)
        assert 1 <= int(limited.value.headers["Retry-After"]) <= 3600
    finally:
        session.close()


# --- outside review (issue 20, review20): findings, each a failing test until fixed -----------------


def test_review20_the_report_names_departments_in_chinese(world):
    # a report handed to a procurement office showed the department codes (samr, fire, hrss…) in
    # the 作出部门 column; the enterprise's own credit page names them (南京市市场监督管理局)
    text = _text(world["pdf"])
    assert "samr" not in text and "市场监督管理局" in text


def test_review20_a_refused_issuance_is_not_logged_as_allowed(world):
    # admin and sector are refused (403), but the query log recorded their attempt as "allowed"
    app, client = world["app"], world["client"]
    for username in ("admin", "sector_c"):
        r = client.post(f"/api/v1/credit-reports/{ENT1}?purpose=复核出具", headers=_headers(app, username))
        assert r.status_code == 403, r.text
    session = next(iter_session(world["url"]))
    try:
        entries = session.scalars(select(QueryLogEntry).where(QueryLogEntry.actor.in_(("admin", "sector_c")),
                                                              QueryLogEntry.endpoint.contains("credit-reports"))).all()
        assert all(e.outcome != "allowed" for e in entries), [(e.actor, e.outcome) for e in entries]
    finally:
        session.close()


def test_review20_an_appended_revision_cannot_set_the_serial_or_validity_the_check_reports(world):
    # docs/security.md: "the report's serial, subject and valid-until read from the signed document".
    # An unsigned incremental update rewriting the Info dictionary's Keywords made the offline check
    # and the public endpoint answer serial=FORGED, valid_until=2099-12-31 next to intact=trusted=true
    from pyhanko.pdf_utils.generic import pdf_string
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

    pdf, cert = world["pdf"], world["cert"]
    writer = IncrementalPdfFileWriter(BytesIO(pdf))
    info_ref = writer.trailer.raw_get("/Info")
    info = info_ref.get_object()
    info["/Keywords"] = pdf_string(f"tiers-credit-report-v1 serial=CR20991231FORGED uscc={ENT1} valid_until=2099-12-31")
    writer.mark_update(info_ref)
    out = BytesIO()
    writer.write(out)
    forged = out.getvalue()
    offline = verify_pdf(forged, cert, TODAY)
    assert not offline.valid
    assert offline.serial != "CR20991231FORGED" and str(offline.valid_until) != "2099-12-31", offline
    online = world["client"].post("/api/v1/credit-reports/verify", content=forged,
                                  headers={"Content-Type": "application/pdf"}).json()
    assert online["serial"] != "CR20991231FORGED" and online["valid_until"] != "2099-12-31", online


def test_a_report_checked_before_its_issuing_day_is_not_yet_valid(world, tmp_path):
    # `verify --today` a day before the report was issued said VALID: the validity has a start too,
    # the issuing day the signed document states
    from serving.cli.main import app as cli

    early = verify_pdf(world["pdf"], world["cert"], TODAY - dt.timedelta(days=1))
    assert not early.valid and early.signature_ok and early.valid_from == TODAY, early
    assert any("not yet valid" in p for p in early.problems), early.problems
    assert verify_pdf(world["pdf"], world["cert"], TODAY).valid
    report, cert = tmp_path / "report.pdf", tmp_path / "cert.pem"
    report.write_bytes(world["pdf"])
    cert.write_text(world["cert"], encoding="ascii")
    out = CliRunner().invoke(cli, ["credit-report", "verify", str(report), "--cert", str(cert),
                                   "--today", (TODAY - dt.timedelta(days=1)).isoformat()])
    assert out.exit_code == 1 and "INVALID" in out.output and "not yet valid" in out.output, out.output


def test_the_report_names_the_legal_form_and_the_industry(world):
    # 主体类型 read "individual_business" and 所属行业 "F": the codes, where the pages name them
    from serving.db.tables import Subject
    from serving.services.credit_reports import report_content

    session = next(iter_session(world["url"]))
    try:
        subject = session.get(Subject, ENT1)
        subject.legal_form, subject.industry = "individual_business", "F"  # never committed: rolled back
        content = report_content(session, ENT1, "CR20261123FFFFFFFFFFFFFFFF", dt.datetime(2026, 11, 23),
                                 TODAY + dt.timedelta(days=30), "https://credit.example.gov.cn/verify", TODAY)
    finally:
        session.rollback()
        session.close()
    lines = dict(content.subject_lines)
    assert lines["主体类型"] == "个体工商户" and lines["所属行业（门类）"] == "F 批发和零售业", lines


@pytest.mark.parametrize("purpose", ["审", " 审 ", "用" * 201], ids=["one", "one-padded", "201"])
def test_cli_refuses_a_purpose_the_service_refuses(purpose, tmp_path, monkeypatch):
    """`tiers credit-report issue --purpose` follows the service's one rule (serving.validation.PURPOSE_LENGTH:
    2–200 characters), refused before any settings or database are read (review 16)."""
    from serving.cli.main import app as cli

    monkeypatch.chdir(tmp_path)  # were the purpose let through, the default database would be made here

    result = CliRunner().invoke(cli, ["credit-report", "issue", ENT1, "--issuer", "reg_samr", "--purpose", purpose])
    assert result.exit_code == 2 and "--purpose" in result.output, result.output
    assert not (tmp_path / "var").exists()
