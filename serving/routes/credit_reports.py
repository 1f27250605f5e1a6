"""信用报告: issue a signed credit report (API and the 我的信用 page), look a serial up, verify a file.

- ``POST /api/v1/credit-reports/{uscc}``: the PDF, for the enterprise itself or a regulator covering
  the subject (the read checked and logged by ``SubjectAccessDep``; staff give a purpose).
- ``GET /api/v1/credit-reports/certificate.pem``: the certificate that signs reports (public: what
  a receiver keeps to verify reports offline, ``tiers credit-report verify --cert``).
- ``GET /api/v1/credit-reports/{serial}`` and the page ``/verify/credit-reports/{serial}`` (the
  QR code's target; public): whether the serial was issued, for whom, until when, and the SHA-256
  of the file issued. A serial carries 64 random bits, so only a holder of the report can ask.
- ``POST /api/v1/credit-reports/verify`` (public; the PDF as the body): the offline check plus the
  issuance log's answer.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import Depends, Form, Path, Request
from fastapi.responses import HTMLResponse, Response

from serving.deps import (
    SessionDep,
    SettingsDep,
    SubjectAccess,
    TodayDep,
    api_principal,
    make_subject_access,
    page_principal,
    require_page_csrf,
)
from serving.errors import (
    InvalidInput,
    NotAllowed,
    NotAuthenticated,
    ReportUnavailable,
    TooManyAttempts,
    UnknownReport,
    UnknownSubject,
    error_responses,
)
from serving.pages import render
from serving.routes._routers import api_and_page_routers
from serving.schemas import IssuedReportOut, ReportVerificationOut
from serving.services import credit_reports as reports

router, pages_router = api_and_page_routers("/api/v1/credit-reports", "credit reports")
Serial = Annotated[str, Path(pattern=r"^CR\d{8}[0-9A-F]{16}$", description="report serial (报告编号)")]
_PDF = {"content": {"application/pdf": {"schema": {"type": "string", "format": "binary"}}},
        "description": "the signed report (PDF, PAdES)"}
MAX_REPORT_BYTES = 2 * 1024 * 1024
# the readers who may issue: another reader's attempt (admin, sector) is logged as denied, then refused
IssuerAccess = Annotated[SubjectAccess, Depends(make_subject_access(api_principal, reports.REPORT_ISSUER_ROLES))]
PageIssuerAccess = Annotated[SubjectAccess, Depends(make_subject_access(page_principal, reports.REPORT_ISSUER_ROLES))]





def _pdf(signed: bytes, serial: str, status_code: int = 201) -> Response:
    return Response(signed, status_code=status_code, media_type="application/pdf",
                    headers={"Content-Disposition": f'attachment; filename="credit-report-{serial}.pdf"',
                             "X-Report-Serial": serial, "Cache-Control": "no-store"})


@router.get("/certificate.pem", response_class=Response, responses={
    200: {"content": {"application/x-pem-file": {"schema": {"type": "string"}}},
          "description": "the report signing certificate (PEM)"}, **error_responses()})
def certificate(settings: SettingsDep) -> Response:
    """The certificate that signs credit reports: keep it to verify reports offline."""
    return Response(settings.secret("report_certificate"), media_type="application/x-pem-file",
                    headers={"Content-Disposition": 'attachment; filename="tiers-report-certificate.pem"'})


@router.post("/verify", response_model=ReportVerificationOut, responses={
    **error_responses(InvalidInput)}, openapi_extra={"requestBody": {"required": True, "content": {
        # the PDF's bytes as they are (any Content-Type is read the same; application/pdf is fine)
        "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}})
async def verify(request: Request, settings: SettingsDep, session: SessionDep, today: TodayDep) -> ReportVerificationOut:
    """Check a report file (the PDF as the request body): signed by this service's certificate,
    unchanged, whole, not expired, and its serial issued for that subject."""
    data = await request.body()
    if not data:
        raise InvalidInput("请求体应为 PDF 文件；the request body must be the report's PDF", field="body")
    if len(data) > MAX_REPORT_BYTES:
        raise InvalidInput(f"the report may not exceed {MAX_REPORT_BYTES} bytes", field="body")
    from starlette.concurrency import run_in_threadpool

    out = await run_in_threadpool(reports.verify_file, session, data, settings.secret("report_certificate"), today)
    return ReportVerificationOut.model_validate(out)


@router.get("/{serial}", response_model=IssuedReportOut, responses=error_responses(UnknownReport))
def lookup(serial: Serial, session: SessionDep, today: TodayDep) -> IssuedReportOut:
    """Whether ``serial`` was issued: subject, dates and the SHA-256 of the file issued."""
    return _issued_out(session, serial, today)


def _issued_out(session, serial: str, today: dt.date) -> IssuedReportOut:
    from serving.db.tables import Subject

    row = reports.issued(session, serial)
    subject = session.get(Subject, row.uscc)
    return IssuedReportOut(serial=row.serial, uscc=row.uscc, name=subject.name if subject else "",
                           issued_at=row.issued_at, valid_until=row.valid_until, expired=today > row.valid_until,
                           sha256=row.sha256)


@router.post("/{uscc}", response_class=Response, status_code=201, responses={
    201: _PDF, **error_responses(NotAuthenticated, NotAllowed, UnknownSubject, InvalidInput, ReportUnavailable,
                                 TooManyAttempts)})
def issue(access: IssuerAccess, session: SessionDep, settings: SettingsDep, today: TodayDep) -> Response:
    """Issue the subject's signed 公共信用信息报告 (its public records in force, list entries and
    public commitments — their matter public in the commitment catalogue, 主动公示型; never a
    private commitment, never its grade): the enterprise its own, a regulator a subject it covers."""
    row, signed = reports.issue_report(session, access.principal, access.uscc, reports.ReportSigner.of(settings),
                                     today)
    return _pdf(signed, row.serial)


# --- pages ---------------------------------------------------------------------------------------

@pages_router.post("/credit/{uscc}/credit-report")
def issue_from_page(access: PageIssuerAccess, session: SessionDep,
                    settings: SettingsDep, today: TodayDep, csrf_token_: Annotated[str, Form(alias="csrf_token", max_length=200)] = "",
                    ) -> Response:
    """The 我的信用 page's download (a form carrying the session's CSRF token)."""
    require_page_csrf(settings, access.principal, csrf_token_)
    row, signed = reports.issue_report(session, access.principal, access.uscc, reports.ReportSigner.of(settings),
                                     today)
    return _pdf(signed, row.serial, status_code=200)


@pages_router.get("/verify/credit-reports/{serial}", response_class=HTMLResponse)
def verification_page(request: Request, serial: Serial, session: SessionDep, today: TodayDep) -> Response:
    """The QR code's target: whether the serial was issued, for whom, until when, and the file's
    SHA-256 (public, no login)."""
    try:
        report = _issued_out(session, serial, today)
    except UnknownReport:
        report = None
    return render(request, "credit_report_verify.html", {"user": None, "serial": serial, "report": report},
                  status_code=200 if report else 404)

