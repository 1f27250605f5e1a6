"""Subjects and the mirror of their records, written by the pipeline (records row by row, or a first
load from the feature store; subjects in bulk: ``serving.services.bulk.load_subjects``), read by routes."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd
from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from serving.db.tables import Record, Subject
from serving.errors import UnknownRecord, UnknownSubject
from serving.schemas import RecordIn, SubjectIn
from serving.services.list_counts import forget_counts
from serving.services.warnings import warn_after_records
from supervision.warnings import RecordEvent

_RECORD_FIELDS = tuple(RecordIn.model_fields)


def store_records(session: Session, rows: Iterable[Mapping[str, Any] | RecordIn], *,
                  change_reasons: Mapping[str, str] | None = None, today: dt.date | None = None,
                  commit: bool = True) -> int:
    """Mirror records: a new record_id is version 1; a changed record becomes a new version
    (its reason: ``change_reasons[record_id]``, else "source update"). The versions written raise
    their early warnings (``services.warnings``, as of ``today``) in the same transaction.

    Returns the number of versions written. Unchanged records are skipped (idempotent).
    """
    events: list[RecordEvent] = []
    added = False
    for row in rows:
        rec = row if isinstance(row, RecordIn) else RecordIn.model_validate(dict(row))
        current = current_record(session, rec.record_id, rec.uscc, missing_ok=True)
        values = rec.model_dump()
        if current is not None:
            if all(getattr(current, f) == values[f] for f in _RECORD_FIELDS):
                continue
            previous = (current.kind, current.severity)
            new = _supersede(session, current, values,
                             change_reason=(change_reasons or {}).get(rec.record_id, "source update"))
        else:
            previous, new = None, Record(**values, version=1, is_current=True)
            session.add(new)
            added = True
        events.append(RecordEvent(uscc=new.uscc, record_id=new.record_id, kind=new.kind, severity=new.severity,
                                  department=new.department, decision_date=new.decision_date,
                                  revoked=bool(new.revoked), repaired=bool(new.repaired), previous=previous))
    if added:
        forget_counts(session)  # a department's regulator covers the subjects its records name
    if events:
        session.flush()
        warn_after_records(session, events, today)
    if commit:
        session.commit()
    return len(events)


def _supersede(session: Session, current: Record, changes: Mapping[str, Any], change_reason: str) -> Record:
    """Write a new current version of ``current`` with ``changes`` (no commit)."""
    carried = {c.key: getattr(current, c.key) for c in Record.__table__.columns
               if c.key not in {"id", "version", "is_current", "created_at", "change_reason"}}
    carried.update(changes)
    current.is_current = False
    session.flush()
    new = Record(**carried, version=current.version + 1, is_current=True, change_reason=change_reason,
                 created_at=dt.datetime.now(dt.UTC))
    session.add(new)
    session.flush()
    return new


def new_record_version(session: Session, current: Record, change_reason: str, **changes: Any) -> Record:
    """A new current version of a record (revocation, repair); the caller commits."""
    return _supersede(session, current, changes, change_reason)


def get_subject(session: Session, uscc: str) -> Subject:
    subject = session.get(Subject, uscc)
    if subject is None:
        raise UnknownSubject(f"no subject with uscc {uscc!r}", field="uscc")
    return subject


def current_record(session: Session, record_id: str, uscc: str, *, missing_ok: bool = False,
                   for_update: bool = False) -> Record | None:
    """The current version of ``record_id`` of subject ``uscc``."""
    stmt = select(Record).where(Record.record_id == record_id, Record.uscc == uscc, Record.is_current)
    if for_update:
        stmt = stmt.with_for_update()
    record = session.scalars(stmt).first()
    if record is None and not missing_ok:
        raise UnknownRecord(f"subject {uscc} has no record {record_id!r}", field="record_id")
    return record


def list_records(session: Session, uscc: str, *, include_history: bool = False) -> list[Record]:
    stmt = select(Record).where(Record.uscc == uscc)
    if not include_history:
        stmt = stmt.where(Record.is_current)
    return list(session.scalars(stmt.order_by(Record.decision_date.desc(), Record.record_id,
                                              Record.version.desc())))


# --------------------------------------------------------------------------- a first load from the store


def plain_value(value: Any) -> Any:
    """pandas missing values (NaN, NaT, <NA>) as None, timestamps as dates."""
    if value is None or (not isinstance(value, (list, dict, str)) and pd.isna(value)):
        return None
    if isinstance(value, pd.Timestamp):
        return value.date()
    return value


def _validated(frame: pd.DataFrame, model: type) -> list[dict[str, Any]]:
    """Each row validated against the service's input model (the store's rows must satisfy it)."""
    cols = [c for c in model.model_fields if c in frame.columns]
    return [model.model_validate({c: plain_value(v) for c, v in zip(cols, row, strict=True)}).model_dump()
            for row in frame[cols].itertuples(index=False, name=None)]


def _settled_by(records: pd.DataFrame, kind: str, as_of: dt.date) -> dict[str, dt.date]:
    """record_id → date of the earliest record of ``kind`` (repair, revocation) referring to it and
    decided by ``as_of``."""
    ev = records[(records["kind"] == kind) & records["ref_record_id"].notna()].copy()
    ev["decision_date"] = pd.to_datetime(ev["decision_date"]).dt.date
    ev = ev[ev["decision_date"] <= as_of]
    return ev.groupby("ref_record_id")["decision_date"].min().to_dict()


def load_from_store(session: Session, subjects: pd.DataFrame, records: pd.DataFrame, *,
                    as_of: dt.date) -> int:
    """The feature store's latest subjects and records (``features.store.read_latest``) into the
    service's mirror, in one transaction; returns the number of subjects added.

    Subjects already stored are kept as they are. Records are loaded in bulk only into an empty
    mirror (later changes go through `store_records`, which versions them): each as version 1,
    change reason "ingested", repaired (revoked) when a repair (revocation) decided by ``as_of``
    refers to it, on the earliest such date. Every row is validated by ``SubjectIn`` / ``RecordIn``.
    """
    known = set(session.scalars(select(Subject.uscc)))
    new_subjects = [r for r in _validated(subjects, SubjectIn) if r["uscc"] not in known]
    if new_subjects:
        session.execute(insert(Subject), new_subjects)
    if not session.scalar(select(func.count()).select_from(Record)):
        repaired, revoked = _settled_by(records, "repair", as_of), _settled_by(records, "revocation", as_of)
        rows = _validated(records, RecordIn)
        for row in rows:
            rid = row["record_id"]
            row.update(version=1, is_current=True, repaired=rid in repaired, repaired_on=repaired.get(rid),
                       revoked=rid in revoked, revoked_on=revoked.get(rid), change_reason="ingested")
        if rows:
            session.execute(insert(Record), rows)
    session.commit()
    return len(new_subjects)
