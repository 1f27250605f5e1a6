"""``tiers credit-report issue USCC`` and ``tiers credit-report verify FILE.pdf``: the signed
公共信用信息报告 (``serving.services.credit_reports``).

(``tiers report`` is the model validation report, so the credit report has its own group.)
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from serving.cli.app import app
from serving.cli.options import fail

credit_app = typer.Typer(help="Signed credit reports (公共信用信息报告): issue one, verify a file offline.",
                         no_args_is_help=True)
app.add_typer(credit_app, name="credit-report")


@credit_app.command("issue")
def issue(
    uscc: str = typer.Argument(..., help="the subject's unified social credit code"),
    issuer: str = typer.Option(..., "--issuer", help="the service user issuing it: the enterprise itself or a "
                                                     "regulator covering the subject (the read is logged as theirs)"),
    purpose: str = typer.Option(..., "--purpose", help="查询用途, logged with the read"),
    out: Path = typer.Option(None, "--out", help="the PDF to write (default credit-report-SERIAL.pdf)"),
    today: str = typer.Option(None, "--today", help="the day whose records in force it shows (default: today in China)"),
    as_json: bool = typer.Option(False, "--json", help="print only JSON"),
) -> None:
    """Issue a subject's signed credit report, logged like the service's: never its grade."""
    from serving.cli.admin import _log_session, settings_or_exit
    from serving.cli.options import parse_date
    from serving.deps import get_today
    from serving.errors import ServiceError
    from serving.services import credit_reports
    from serving.validation import PURPOSE_LENGTH

    shortest, longest = PURPOSE_LENGTH["min_length"], PURPOSE_LENGTH["max_length"]
    if not shortest <= len(purpose.strip()) <= longest:
        fail(f"--purpose: {len(purpose.strip())} characters; rule: {shortest}–{longest} characters (查询用途)")
    settings = settings_or_exit()
    day = parse_date("--today", today) if today else get_today()
    session = _log_session(settings)
    try:
        row, signed = credit_reports.issue_as(session, issuer, uscc, purpose.strip(),
                                              credit_reports.ReportSigner.of(settings), day)
    except ServiceError as exc:
        fail(f"{'--' + exc.field if exc.field else 'credit-report'}: {exc.message}")
    finally:
        session.close()
    path = out or Path(f"credit-report-{row.serial}.pdf")
    path.write_bytes(signed)
    summary = {"serial": row.serial, "uscc": row.uscc, "issuer": row.issuer, "issued_at": row.issued_at.isoformat(),
               "valid_until": row.valid_until.isoformat(), "sha256": row.sha256, "file": str(path)}
    typer.echo(json.dumps(summary, ensure_ascii=False) if as_json else
               f"issued {row.serial} for {row.uscc}, valid until {row.valid_until}: {path} (sha256 {row.sha256})")


@credit_app.command("verify")
def verify(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True, help="the report (PDF)"),
    cert: Path = typer.Option(None, "--cert", exists=True, dir_okay=False,
                              help="the service's report certificate (PEM; GET /api/v1/credit-reports/certificate.pem); "
                                   "default: the one in TIERS_KEYS_DIR"),
    check_issued: bool = typer.Option(False, "--check-issued",
                                      help="also ask the service's database whether the serial was issued"),
    today: str = typer.Option(None, "--today", help="check validity as of this date (default: today in China)"),
    as_json: bool = typer.Option(False, "--json", help="print only JSON"),
) -> None:
    """Check a report offline: signed by the report certificate, unchanged, whole, not expired.
    Exit code 0 when valid, 1 when not, 2 on bad input."""
    import logging

    from serving.cli.options import parse_date
    from serving.services.credit_reports import verify_file

    logging.getLogger("pyhanko").setLevel(logging.CRITICAL)  # the verdict says why; no tracebacks
    logging.getLogger("pyhanko_certvalidator").setLevel(logging.CRITICAL)
    from serving.deps import get_today

    # the regulator's calendar, as issuing counts it: a report issued this morning in China is valid today
    day = parse_date("--today", today) if today else get_today()
    settings = None
    if cert is not None:
        cert_pem = cert.read_text(encoding="ascii", errors="replace")
    else:  # the service's own: given by the environment, else kept in TIERS_KEYS_DIR (never made here)
        from pydantic import ValidationError

        from serving.cli.admin import settings_or_exit
        from serving.keys import KEY_FILES
        from serving.settings import Settings

        try:
            configured = Settings()  # without with_keys: nothing is made here
        except ValidationError:
            configured = settings_or_exit()  # says which setting is wrong and exits with 2
        default = configured.keys_dir / KEY_FILES["report_certificate"]
        if configured.report_certificate is not None:
            cert_pem = configured.report_certificate.get_secret_value()
        elif default.is_file():
            cert_pem = default.read_text(encoding="ascii")
        else:
            fail(f"--cert: no certificate given and none at {default}; rule: pass the service's report certificate "
                 "(GET /api/v1/credit-reports/certificate.pem)")
    from serving.keys import report_identity_problem

    problem = report_identity_problem(None, cert_pem)
    if problem:
        fail(f"--cert: {problem}")
    session = None
    if check_issued:
        from serving.cli.admin import _log_session, settings_or_exit

        settings = settings_or_exit()
        session = _log_session(settings)
    try:
        out = verify_file(session, file.read_bytes(), cert_pem, day)
    finally:
        if session is not None:
            session.close()
    if as_json:
        typer.echo(json.dumps(out, ensure_ascii=False))
    else:
        verdict = "VALID" if out["valid"] else "INVALID"
        typer.echo(f"{verdict}: {file} serial {out['serial']} subject {out['uscc']} valid until {out['valid_until']}"
                   f" sha256 {out['sha256']}")
        for line in out["problems"]:
            typer.echo(f"  - {line}")
        if out.get("issued") is not None:
            typer.echo(f"  issued by this service: {'yes' if out['issued'] else 'no'}"
                       f"{' (this very file)' if out.get('same_file_as_issued') else ''}")
    raise typer.Exit(0 if out["valid"] else 1)

