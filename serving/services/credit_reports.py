"""信用报告: the signed 公共信用信息报告 of one subject — issued, logged and verified.

What a report shows is the subject's registration and its *public* information in force today:
records of the public kinds (administrative actions, inspection results), list entries and the
public commitments — those whose matter the commitment catalogue marks public (主动公示型;
``commitments.public_ids``, the public list's rule), never a private one nor a commitment record
no public commitment of the service stands behind (an ingested one). Which records are in force is the catalogue's one rule,
``features.evidence.records_in_force`` (``features/sql/counted_records.sql``: publicity periods,
windows, repair, revocation, exemption, list exit, licence term; the rule the joint checks cite
and the grade's evidence counts by), applied to the service's current records with its
revocations and repairs replayed as the regrader replays them (``serving.services.regrade``),
restricted to the public kinds (:func:`report_records`).

Never shown: the grade, its score, probability or reasons (a grade is not public), complaints,
arrears and self-declared information (not public), personal data of the legal representative.

Who may issue: the enterprise its own report; a regulator the subjects it covers
(``serving.services.access``). The caller's read is checked and logged before (the routes'
``SubjectAccessDep``; the CLI through :func:`issue_as`). Every issuance is a row of
``credit_reports`` (serial, subject, issuer, issued_at, valid_until, SHA-256 of the signed file).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from serving.db.tables import CreditReport, Subject
from serving.errors import NotAllowed, ReportUnavailable, TooManyAttempts, UnknownReport, UnknownSubject
from serving.i18n import kind_name, text
from serving.labels import department_name, industry_name, legal_form_name
from serving.security import Principal

REPORT_ISSUER_ROLES = ("enterprise", "regulator")
# public kinds a report lists as records (双公示 and the other administrative actions, and the
# published results of random inspections); list entries and commitments have their own sections
PUBLIC_RECORD_KINDS = frozenset({
    "admin_license", "admin_penalty", "admin_enforcement", "admin_confirmation", "admin_levy", "admin_payment",
    "admin_adjudication", "admin_compensation", "admin_reward", "admin_check", "inspection",
})
COMMITMENT_KINDS = frozenset({"commitment_made", "commitment_kept", "commitment_broken"})
SERIAL_PREFIX = "CR"
STATUS_NAMES = {"active": "存续", "deregistered": "注销", "revoked": "吊销"}  # features.schema.SUBJECT_STATUSES


@dataclass(frozen=True)
class ReportSigner:
    """What issuing needs from the settings: the signing key and certificate (PEM), the public
    address the QR code points to, and how long a report is valid."""

    key_pem: str
    cert_pem: str
    public_url: str
    valid_days: int
    per_hour: int = 30
    data_dir: str | None = None  # whose departments.csv names the departments (serving.labels)

    @classmethod
    def of(cls, settings) -> ReportSigner:  # a serving.settings.Settings passed through with_keys
        return cls(key_pem=settings.secret("report_signing_key"), cert_pem=settings.secret("report_certificate"),
                   public_url=settings.public_url.rstrip("/"), valid_days=settings.credit_report_valid_days,
                   per_hour=settings.credit_reports_per_hour,
                   data_dir=str(settings.data_dir) if settings.data_dir else None)


def verification_url(public_url: str, serial: str) -> str:
    return f"{public_url.rstrip('/')}/verify/credit-reports/{serial}"


def is_public_kind(kind: str) -> bool:
    """Whether records of ``kind`` are public information a report may list."""
    return kind in PUBLIC_RECORD_KINDS or kind in COMMITMENT_KINDS or kind.startswith("list_")


def report_records(records: pd.DataFrame, today: dt.date, policy=None) -> pd.DataFrame:
    """The records of ``records`` (contract columns) a public report shows on ``today``, newest
    first: the catalogue's records in force (``features.evidence.records_in_force``, the joint
    checks' rule, neutral records included) of the public kinds. One publication rule is added,
    for the two policy options that let a record count without being public: a repaired record
    (``repaired_counts``; 信用修复 ends its publication) and a penalty of a severity whose publicity
    rule does not publish it (``minor_penalty_counts``). Under the catalogue's default policy
    neither applies (tests/serving/test_srv_credit_report_rule.py)."""
    from features.catalogue import SEVERITIES, default_policy
    from features.evidence import records_in_force

    policy = policy or default_policy()
    in_force = records_in_force(records, today, policy, neutral=True)
    if in_force.empty:
        return in_force

    def published(kind: str, severity, decided: dt.date, negative_class, repaired) -> bool:
        if isinstance(negative_class, str) and bool(repaired):
            return False
        return kind != "admin_penalty" or (severity in SEVERITIES
                                           and policy.publicity_rule_for(decided).period(severity).published)

    shown = [is_public_kind(str(k)) and published(str(k), s, d, n, r) for k, s, d, n, r in zip(
        in_force["kind"], in_force["severity"], in_force["decision_date"], in_force["negative_class"],
        in_force["is_repaired"], strict=True)]
    return in_force.loc[shown].reset_index(drop=True)


def public_records(session: Session, uscc: str, today: dt.date, policy=None) -> pd.DataFrame:
    """The subject's records a public report shows on ``today`` (:func:`report_records`) among the
    service's current records with its revocations and repairs replayed as the regrader does."""
    return _public_commitments_only(session, uscc, report_records(_replayed_records(session, uscc), today, policy))


def _public_commitments_only(session: Session, uscc: str, shown: pd.DataFrame) -> pd.DataFrame:
    """``shown`` without the records of commitments that are not public (``commitments.public_ids``:
    the catalogue decides); a commitment record of no commitment of the service is not shown."""
    from serving.services.commitments import commitment_id_of, public_ids

    if shown.empty:
        return shown
    numbers = [commitment_id_of(str(r)) if k in COMMITMENT_KINDS else None
               for k, r in zip(shown["kind"].astype(str), shown["record_id"], strict=True)]
    public = public_ids(session, uscc, {n for n in numbers if n is not None})
    keep = [k not in COMMITMENT_KINDS or n in public for k, n in zip(shown["kind"].astype(str), numbers, strict=True)]
    return shown.loc[keep].reset_index(drop=True)


def _replayed_records(session: Session, uscc: str) -> pd.DataFrame:
    """The subject's current records with its revocations and repairs replayed as the regrader does."""
    from serving.services.regrade import service_changes, service_records

    records = service_records(session, uscc)
    changes = service_changes(session, uscc)
    if not changes.empty:
        records = pd.concat([records.astype(object), changes.reindex(columns=[*records.columns, "ref_record_id"])
                            .astype(object)], ignore_index=True)
    return records


def record_ids_in_force(session: Session, uscc: str, today: dt.date, policy=None) -> set[str]:
    """The ids of the subject's records in force on ``today`` (``features.evidence.records_in_force``,
    neutral records included: the rule of the report and the joint checks) under ``policy`` (by
    default the subject's section's, as the joint checks take it), so a page calls no other
    record 有效 and no one applies to repair a record nobody sees any more."""
    from features.evidence import records_in_force
    from serving.services.credit_checks import policy_for

    if policy is None:
        subject = session.get(Subject, uscc)
        policy = policy_for(subject.industry if subject is not None else None)
    records = _replayed_records(session, uscc)
    if records.empty:
        return set()
    return set(records_in_force(records, today, policy, neutral=True)["record_id"].astype(str))


def _row(rec: pd.Series, data_dir: str | None = None):
    from serving.report_pdf import ReportRow

    def day(value) -> str:
        return "" if value is None or pd.isna(value) else pd.Timestamp(value).date().isoformat()

    severity = rec.get("severity")
    return ReportRow(record_id=str(rec["record_id"]), kind=kind_name(str(rec["kind"]), "zh"),
                     severity=text(severity, "zh") if isinstance(severity, str) and severity else "",
                     decision_date=day(rec["decision_date"]),
                     # a penalty's publicity ends; a list entry's exit, a licence's or a commitment's term
                     end_date=day(rec.get("publicity_end")) or day(rec.get("end_date")),
                     department=department_name(str(rec.get("department") or ""), "zh", data_dir),
                     document_no=str(rec.get("document_no") or ""))


def report_content(session: Session, uscc: str, serial: str, issued_at: dt.datetime, valid_until: dt.date,
                   verify_url: str, today: dt.date, policy=None, data_dir: str | None = None):
    """The report's content for ``uscc`` on ``today`` (no grade: see the module's docstring), with
    names, not codes (``serving.labels``; departments from ``data_dir``'s departments.csv)."""
    from serving.report_pdf import ReportContent

    subject = session.get(Subject, uscc)
    if subject is None:
        raise UnknownSubject(f"no subject with uscc {uscc!r}", field="uscc")
    shown = public_records(session, uscc, today, policy)
    kinds = shown["kind"].astype(str) if not shown.empty else pd.Series(dtype=str)
    lines = tuple((label, value) for label, value in (
        ("主体类型", legal_form_name(subject.legal_form)),
        ("成立日期", subject.registered_on.isoformat() if subject.registered_on else ""),
        ("所属行业（门类）", f"{subject.industry} {industry_name(subject.industry)}" if subject.industry else ""), ("所在地区", subject.district_name or subject.district_code or ""),
        ("登记状态", STATUS_NAMES.get(subject.status or "", subject.status or ""))) if value)
    return ReportContent(
        serial=serial, uscc=uscc, name=subject.name, issued_at=issued_at, valid_until=valid_until, valid_from=today,
        verify_url=verify_url, subject_lines=lines,
        records=tuple(_row(r, data_dir) for _, r in shown.loc[kinds.isin(PUBLIC_RECORD_KINDS)].iterrows()),
        lists=tuple(_row(r, data_dir) for _, r in shown.loc[kinds.str.startswith("list_")].iterrows()),
        commitments=_commitment_rows(session, shown.loc[kinds.isin(COMMITMENT_KINDS)], data_dir),
    )


def _commitment_rows(session: Session, shown: pd.DataFrame, data_dir: str | None = None) -> tuple:
    """The commitment records as the report names them: the matter signed and its check date (from
    the commitment the record was written for; a record of none keeps its own kind and dates)."""
    from serving.db.tables import Commitment
    from serving.report_pdf import CommitmentRow
    from serving.services.commitments import commitment_id_of

    rows = []
    for _, rec in shown.iterrows():
        row = _row(rec, data_dir)
        number = commitment_id_of(row.record_id)
        commitment = session.get(Commitment, number) if number is not None else None
        if commitment is None:
            rows.append(CommitmentRow(matter=row.kind, status=row.kind, signed_on=row.decision_date,
                                      due_on=row.end_date, department=row.department, document_no=row.document_no))
            continue
        rows.append(CommitmentRow(matter=commitment.title, status=row.kind, signed_on=commitment.signed_on.isoformat(),
                                  due_on=commitment.due_on.isoformat(), department=row.department,
                                  document_no=commitment.document_no or row.document_no))
    return tuple(rows)


def new_serial(issued_at: dt.datetime) -> str:
    """``CR`` + the issuing date + 64 random bits (16 hex digits): unguessable, so the public
    verification page answers only someone who holds the report."""
    return f"{SERIAL_PREFIX}{issued_at:%Y%m%d}{secrets.token_hex(8).upper()}"


def issue_report(session: Session, principal: Principal, uscc: str, signer: ReportSigner, today: dt.date, *,
                 now: dt.datetime | None = None, policy=None) -> tuple[CreditReport, bytes]:
    """Render, sign and log a report of ``uscc`` issued by ``principal`` (whose read the caller has
    checked and logged): the records in force on ``today`` (the regulator's calendar day), valid
    until ``today`` + the configured days. Commits the log row; returns it with the signed PDF."""
    from serving.report_pdf import ReportFontMissing, find_cjk_font, render_pdf, sign_pdf

    if principal.role not in REPORT_ISSUER_ROLES:
        raise NotAllowed(f"信用报告仅由企业本身或监管部门出具；role {principal.role!r} may not issue credit reports "
                         f"(allowed: {', '.join(REPORT_ISSUER_ROLES)})")
    issued_at = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).replace(microsecond=0)
    _check_rate(session, principal.username, signer.per_hour, issued_at)
    try:
        font = find_cjk_font()
    except ReportFontMissing as exc:
        raise ReportUnavailable(str(exc)) from exc
    valid_until = today + dt.timedelta(days=signer.valid_days)
    serial = new_serial(issued_at)
    content = report_content(session, uscc, serial, issued_at, valid_until,
                             verification_url(signer.public_url, serial), today, policy, signer.data_dir)
    signed = sign_pdf(render_pdf(content, font), signer.key_pem, signer.cert_pem)
    row = CreditReport(serial=serial, uscc=uscc, issuer=principal.username, issued_at=issued_at,
                       valid_until=valid_until, sha256=hashlib.sha256(signed).hexdigest())
    session.add(row)
    session.commit()
    return row, signed


def _check_rate(session: Session, username: str, per_hour: int, now: dt.datetime) -> None:
    """At most ``per_hour`` reports per user and hour, counted in the issuance log itself (so the
    limit holds across workers): ``TooManyAttempts`` with ``Retry-After``."""
    import math

    from sqlalchemy import func

    recent = session.execute(select(func.count(), func.min(CreditReport.issued_at)).where(
        CreditReport.issuer == username, CreditReport.issued_at > now - dt.timedelta(hours=1))).one()
    if recent[0] >= per_hour:
        oldest = recent[1] if recent[1].tzinfo else recent[1].replace(tzinfo=dt.UTC)
        wait = max(1, math.ceil((oldest + dt.timedelta(hours=1) - now).total_seconds()))
        raise TooManyAttempts(f"{username!r} issued {recent[0]} credit reports in the last hour (at most {per_hour}); "
                              f"retry in {wait} s", field="uscc", headers={"Retry-After": str(wait)})


def issue_as(session: Session, username: str, uscc: str, purpose: str, signer: ReportSigner, today: dt.date, *,
             now: dt.datetime | None = None) -> tuple[CreditReport, bytes]:
    """Issue as the service user ``username`` (the CLI): the user must be active, may issue and
    cover ``uscc``; the read is logged (allowed or denied) before anything is read."""
    from serving.services.access import can_read
    from serving.services.querylog import append_entry
    from serving.services.users import get_user, principal_of

    user = get_user(session, username)
    if user is None or not user.active:
        raise NotAllowed(f"no active user {username!r}", field="issuer")
    principal = principal_of(user)
    if principal.role not in REPORT_ISSUER_ROLES:
        raise NotAllowed(f"role {principal.role!r} may not issue credit reports (allowed: "
                         f"{', '.join(REPORT_ISSUER_ROLES)})", field="issuer")
    allowed = can_read(session, principal, uscc)
    append_entry(session, principal=principal, uscc=uscc, purpose=purpose, endpoint="CLI tiers credit-report issue",
                 outcome="allowed" if allowed else "denied")
    if not allowed:
        raise UnknownSubject(f"no subject {uscc} that {principal.role} {username!r} may read", field="uscc")
    return issue_report(session, principal, uscc, signer, today, now=now)


def issued(session: Session, serial: str) -> CreditReport:
    """The issuance of ``serial``; ``UnknownReport`` if none."""
    row = session.scalars(select(CreditReport).where(CreditReport.serial == serial)).first()
    if row is None:
        raise UnknownReport(f"报告编号 {serial} 未经本平台出具；no credit report with serial {serial!r} was issued",
                            field="serial")
    return row


def verify_file(session: Session | None, data: bytes, cert_pem: str, today: dt.date) -> dict:
    """The offline check of ``data`` (``serving.report_pdf.verify_pdf``) and, with a session, the
    issuance log's: whether the serial was issued, for that subject, and whether this very file
    (its SHA-256) is the one issued."""
    from serving.report_pdf import verify_pdf

    verdict = verify_pdf(data, cert_pem, today)
    out = verdict.as_dict()
    if session is None or verdict.serial is None:
        out["issued"] = None
        return out
    row = session.scalars(select(CreditReport).where(CreditReport.serial == verdict.serial)).first()
    out["issued"] = row is not None and row.uscc == verdict.uscc
    out["same_file_as_issued"] = row is not None and row.sha256 == verdict.sha256
    if not out["issued"]:
        out["problems"] = [*out["problems"], f"serial {verdict.serial} was not issued by this service"]
        out["valid"] = False
    return out
