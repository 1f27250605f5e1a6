"""信用承诺 commitments: signed online by an enterprise, shown publicly when the matter says so,
checked by the department, and written into the credit file.

The matters are the catalogue's (``features.commitments``). Signing writes a ``made`` record;
the department's finding writes the ``kept`` record or the breach's record, whose kind the
catalogue maps to the catalogue policy (a broken commitment counts against the subject for its
window and is repaired by the policy's rules). A broken commitment's record is also what makes
the subject a lead for the department's next inspection plan (``plans.LEAD_KINDS``: the A grade's
无事不扰 shield is lifted, the ``A_lead`` stratum) and raises its early warning (the record goes
through ``subjects.store_records`` like every ingested record). Finding, record and regrade are
one transaction.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache

from sqlalchemy import func, select, tuple_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from features.catalogue import default_policy
from features.commitments import CommitmentCatalogue, Matter, load_commitment_catalogue
from serving.db.tables import Commitment, Subject
from serving.errors import (
    AlreadyDecided,
    Conflict,
    InvalidInput,
    NotFound,
    NotOwningDepartment,
    ServiceError,
)
from serving.labels import department_name
from serving.security import Principal, shown_name
from serving.services.access import owning_department_decides
from serving.services.grades import Regrader, run_regrader
from serving.services.subject_lists import decode_cursor, encode_cursor
from serving.services.subjects import store_records

STATUS_ZH = {"pending": "履约中", "kept": "已履约", "broken": "已违约"}
REVIEW_PURPOSE = "commitment_review 信用承诺核查"  # the department's reads of its commitments, logged
REMINDER_DAYS = 30  # a pending commitment is shown as due on the enterprise's page this long before its date


class UnknownCommitment(NotFound):
    code = "unknown_commitment"
    uscc = ""  # the subject of a commitment that exists but is not the caller's: logged, never shown


def may_decide(principal: Principal, commitment: Commitment) -> bool:
    """Who finds a commitment kept or broken: a regulator of the department it was addressed to,
    which accepted it and holds the basis of the finding (the one rule of
    ``access.owning_department_decides``: an admin reads every department's commitments and
    decides none)."""
    return owning_department_decides(principal, commitment.department)


# The one rule of which commitments are public information, for the public list and the credit
# report alike: those whose matter the commitment catalogue marks public (``Matter.public``:
# 主动公示型), as the catalogue stood when the commitment was signed (the text signed is the text
# shown; ``sign`` stores the mark in ``Commitment.public``). Everything else is the subject's file.
PUBLIC = Commitment.public.is_(True)


def public_ids(session: Session, uscc: str, ids: Iterable[int]) -> set[int]:
    """Of the commitments ``ids``, those of ``uscc`` that are public (``PUBLIC``). A record that
    names a commitment of another subject, or none, is not made public by it."""
    wanted = set(ids)
    if not wanted:
        return set()
    return set(session.scalars(select(Commitment.id).where(Commitment.id.in_(wanted), Commitment.uscc == uscc,
                                                           PUBLIC)))


def refused_decision_purpose(exc: ServiceError, commitment_id: int | str) -> str:
    """The purpose a refused finding is logged with (as a refused read: ``denied``)."""
    return f"拒绝（{exc.code}）认定信用承诺 #{commitment_id}"


def subject_of(session: Session, commitment_id: int) -> str:
    """The subject of commitment ``commitment_id`` ("" if there is none): what a refused finding logs."""
    return session.scalar(select(Commitment.uscc).where(Commitment.id == commitment_id)) or ""


@cache
def default_catalogue() -> CommitmentCatalogue:
    """The packaged catalogue, checked against the packaged catalogue policy (immutable, cached)."""
    return load_commitment_catalogue(None, default_policy())


def matter_of(catalogue: CommitmentCatalogue, code: str) -> Matter:
    matter = catalogue.matter(code)
    if matter is None:
        raise InvalidInput(f"承诺事项 {code!r} 不在承诺事项目录中（目录版本 {catalogue.version}）；"
                           f"matter_code {code!r} is not in the commitment catalogue", field="matter_code")
    return matter


def _record_id(commitment: Commitment, suffix: str) -> str:
    return f"CMT{commitment.id:09d}-{suffix}"


def commitment_id_of(record_id: str) -> int | None:
    """The commitment whose record ``record_id`` is (:func:`_record_id`), None for another record."""
    head, _, suffix = record_id.partition("-")
    return int(head[3:]) if head.startswith("CMT") and head[3:].isdigit() and suffix else None


def sign(session: Session, principal: Principal, uscc: str, matter_code: str, today: dt.date,
         catalogue: CommitmentCatalogue | None = None) -> Commitment:
    """The subject signs the matter's standard text as it stands in the catalogue today; its
    ``made`` record is written. One pending commitment per subject and matter."""
    catalogue = catalogue or default_catalogue()
    matter = matter_of(catalogue, matter_code)
    commitment = Commitment(
        uscc=uscc, matter_code=matter.code, kind=matter.kind, title=matter.title, department=matter.department,
        text=matter.template, catalogue_version=catalogue.version, public=matter.public,
        signed_by=principal.username, signed_on=today, due_on=matter.due_on(today), status="pending",
        open_key=f"{uscc}:{matter.code}")
    try:
        session.add(commitment)
        session.flush()
    except IntegrityError as exc:
        session.rollback()
        raise Conflict(f"本企业已有待核查的承诺“{matter.title}”，请勿重复签署；"
                       f"a pending commitment to {matter.code} exists", field="matter_code") from exc
    store_records(session, [{
        "record_id": _record_id(commitment, "M"), "uscc": uscc, "kind": matter.made.record_kind,
        "decision_date": today, "department": matter.department,
        "description": f"签署信用承诺（{matter.kind}）：{matter.title}"}], today=today, commit=False)
    session.commit()
    return commitment


def signable(session: Session, uscc: str, catalogue: CommitmentCatalogue | None = None) -> list[Matter]:
    """The catalogue's matters the subject may sign now: every one without a pending commitment of
    it (one pending commitment per subject and matter, as :func:`sign` enforces)."""
    catalogue = catalogue or default_catalogue()
    pending = set(session.scalars(select(Commitment.matter_code).where(Commitment.uscc == uscc,
                                                                       Commitment.status == "pending")))
    return [m for m in catalogue.matters if m.code not in pending]


def decide(session: Session, principal: Principal, commitment_id: int, *, outcome: str, basis: str,
           document_no: str | None, breach: str | None, today: dt.date, regrader: Regrader,
           catalogue: CommitmentCatalogue | None = None) -> Commitment:
    """The department marks a pending commitment kept or broken, with its basis (依据).

    Only the commitment's department (``may_decide``): another department's is the same 404 as
    an absent one; an admin, who reads them all, gets 403 naming the department. Either refusal
    carries the subject (``uscc``) for the caller to log. Kept writes the matter's ``kept`` record; broken the record of the ``breach`` found
    (a document number is required when the catalogue policy requires one for that kind). The
    subject is regraded in the same transaction.
    """
    catalogue = catalogue or default_catalogue()
    commitment = session.scalars(select(Commitment).where(Commitment.id == commitment_id).with_for_update()).first()
    if commitment is None or not may_decide(principal, commitment):
        refused: UnknownCommitment | NotOwningDepartment
        if commitment is not None and principal.role == "admin":
            refused = NotOwningDepartment(
                f"commitment #{commitment_id} was made to {commitment.department}: only that department finds it "
                "kept or broken", field="commitment_id",
                zh=f"承诺 #{commitment_id} 由{department_name(commitment.department)}受理，只有该部门才能认定履约或违约；"
                   "管理员可以查看，不能代为认定。")
        else:
            refused = UnknownCommitment(f"没有提交给您所在部门的承诺 #{commitment_id}；no commitment "
                                        f"#{commitment_id} addressed to your department", field="commitment_id")
        refused.uscc = commitment.uscc if commitment is not None else ""
        raise refused
    if commitment.status != "pending":
        raise AlreadyDecided(f"承诺 #{commitment_id} {STATUS_ZH[commitment.status]}，不能重复认定；"
                             f"commitment already {commitment.status}", field="commitment_id")
    matter = matter_of(catalogue, commitment.matter_code)
    choices = "、".join(f"{k}（{o.label}）" if o.label else k for k, o in matter.breaches.items())
    if outcome == "kept":
        if breach:  # a finding names a breach or says kept, never both
            raise InvalidInput(f"认定为已履约时不应填写违约情形（{breach}）；请改为认定违约，或清空违约情形；"
                               "a kept commitment has no breach", field="breach")
        record_kind, suffix, label = matter.kept.record_kind, "K", "履行信用承诺"
    elif not breach:
        raise InvalidInput(f"认定为违约须选择违约情形，可选：{choices}；a broken commitment needs its breach",
                           field="breach")
    elif breach not in matter.breaches:
        raise InvalidInput(f"违约情形 {breach!r} 不是承诺事项“{matter.title}”的违约情形，可选：{choices}",
                           field="breach")
    else:
        record_kind, suffix = matter.breaches[breach].record_kind, "B"
        label = f"违反信用承诺（{matter.breaches[breach].label or breach}）"
    rule = default_policy().kinds.get(record_kind)
    if rule is not None and rule.legal_basis_required and not document_no:
        raise InvalidInput(f"认定为“{label}”须填写文书号（记录类别 {record_kind} 须有法律文书依据）；"
                           f"document_no is required for a {record_kind} record", field="document_no")
    try:
        commitment.status, commitment.breach, commitment.basis = outcome, breach, basis
        commitment.document_no, commitment.decided_by, commitment.decided_on = document_no, principal.username, today
        commitment.record_id, commitment.open_key = _record_id(commitment, suffix), None
        store_records(session, [{
            "record_id": commitment.record_id, "uscc": commitment.uscc, "kind": record_kind,
            "decision_date": today, "department": commitment.department, "document_no": document_no,
            "description": f"{label}：{matter.title}。依据：{basis}"[:2000]}], today=today, commit=False)
        run_regrader(regrader, session, commitment.uscc, f"commitment #{commitment.id} {outcome}")
        session.commit()
    except Exception:
        session.rollback()
        raise
    return commitment


def of_subject(session: Session, uscc: str) -> list[Commitment]:
    return list(session.scalars(select(Commitment).where(Commitment.uscc == uscc)
                                .order_by(Commitment.signed_on.desc(), Commitment.id.desc())))


def of_department(session: Session, principal: Principal, *, status: str | None = None,
                  limit: int = 500) -> list[tuple[Commitment, str]]:
    """(commitment, subject name as the lists show it: ``shown_name``) addressed to the principal's
    department (an admin: all), the earliest due first."""
    stmt = select(Commitment, Subject.name, Subject.legal_form).join(Subject, Subject.uscc == Commitment.uscc)
    if principal.role != "admin":
        stmt = stmt.where(Commitment.department == principal.department)
    if status:
        stmt = stmt.where(Commitment.status == status)
    return [(c, shown_name(n, f)) for c, n, f in session.execute(stmt.order_by(Commitment.due_on, Commitment.id)
                                                                 .limit(limit))]


@dataclass(frozen=True)
class PublicPage:
    total: int
    rows: list[tuple[Commitment, str]]
    next: str | None  # the cursor of the next page; None on the last


def _public_cursor(values: list) -> bool:
    # a date that does not parse raises ValueError: refused by decode_cursor as any other bad cursor
    return (len(values) == 3 and isinstance(values[0], str) and isinstance(values[1], int)
            and bool(dt.date.fromisoformat(values[0])))


def public_page(session: Session, *, after: str | None = None, limit: int = 50) -> PublicPage:
    """One page of the 主动公示型 commitments (public by their matter), newest first, with the
    subject's name as every list shows it (an individual business's masked): paged by key (signed_on, id; ``ix_commitments_public``), so a deep page costs
    what the first does; the total is counted on the first page and carried in the cursor, as the
    lists of subjects do (``serving.services.subject_lists``)."""
    cursor = decode_cursor(after, _public_cursor) if after else None
    public = PUBLIC
    stmt = (select(Commitment, Subject.name, Subject.legal_form).join(Subject, Subject.uscc == Commitment.uscc)
            .where(public)
            .order_by(Commitment.signed_on.desc(), Commitment.id.desc()))
    if cursor:
        stmt = stmt.where(tuple_(Commitment.signed_on, Commitment.id)
                          < tuple_(dt.date.fromisoformat(cursor[0]), cursor[1]))
        total = cursor[2]
    else:
        total = session.scalar(select(func.count()).select_from(Commitment).where(public)) or 0
    rows = [(c, shown_name(n, f)) for c, n, f in session.execute(stmt.limit(limit + 1))]
    more = len(rows) > limit
    rows = rows[:limit]
    last = rows[-1][0] if more else None
    return PublicPage(total=total, rows=rows,
                      next=encode_cursor([last.signed_on.isoformat(), last.id, total]) if last is not None else None)


def reminders(session: Session, uscc: str, today: dt.date, days: int = REMINDER_DAYS) -> list[Commitment]:
    """The subject's pending commitments due within ``days`` (or overdue), the earliest first."""
    stmt = (select(Commitment).where(Commitment.uscc == uscc, Commitment.status == "pending",
                                     Commitment.due_on <= today + dt.timedelta(days=days))
            .order_by(Commitment.due_on, Commitment.id))
    return list(session.scalars(stmt))
