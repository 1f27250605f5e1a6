"""查询使用登记: the tamper-evident query log.

Each entry stores ``entry_hash = sha256(prev_hash + canonical(entry))``; editing, deleting or
reordering an entry breaks the chain at that entry, which ``check_chain`` reports.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from serving.db.models import QueryLogEntry, QueryLogHead
from serving.security import Principal

GENESIS_HASH = "0" * 64
_HASHED_FIELDS = ("seq", "at", "actor", "actor_role", "actor_kind", "uscc", "purpose", "endpoint",
                  "outcome", "personal_info_unmasked")


def canonical_entry(entry: QueryLogEntry) -> str:
    """The canonical JSON of an entry's content (hashes excluded), stable across databases."""
    at = entry.at if entry.at.tzinfo else entry.at.replace(tzinfo=dt.UTC)
    values = {name: getattr(entry, name) for name in _HASHED_FIELDS}
    values["at"] = at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    values["personal_info_unmasked"] = bool(values["personal_info_unmasked"])
    return json.dumps(values, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def chain_hash(prev_hash: str, entry: QueryLogEntry) -> str:
    return hashlib.sha256((prev_hash + canonical_entry(entry)).encode("utf-8")).hexdigest()


def append_entry(session: Session, *, principal: Principal, uscc: str, purpose: str, endpoint: str,
                 outcome: str = "allowed", personal_info_unmasked: bool = False,
                 commit: bool = True) -> QueryLogEntry:
    """Append one read to the log and commit (see ``append_entries``)."""
    return append_entries(session, principal=principal, reads=[(uscc, outcome)], purpose=purpose,
                          endpoint=endpoint, personal_info_unmasked=personal_info_unmasked, commit=commit)[0]


def append_entries(session: Session, *, principal: Principal, reads: list[tuple[str, str]], purpose: str,
                   endpoint: str, personal_info_unmasked: bool = False, commit: bool = True) -> list[QueryLogEntry]:
    """Append one entry per (uscc, outcome) in ``reads``, chained in order, and commit."""
    if not reads:
        return []
    # The UPDATE takes the write lock (SQLite) / row lock (PostgreSQL) before the head is read,
    # so two workers can never chain onto the same previous entry.
    session.execute(update(QueryLogHead).where(QueryLogHead.id == 1).values(seq=QueryLogHead.seq + len(reads)))
    head = session.execute(select(QueryLogHead).where(QueryLogHead.id == 1)).scalar_one()
    session.refresh(head)
    seq, prev_hash, at = head.seq - len(reads), head.last_hash, dt.datetime.now(dt.UTC)
    entries = []
    for uscc, outcome in reads:
        seq += 1
        entry = QueryLogEntry(
            seq=seq, at=at, actor=principal.username, actor_role=principal.role, actor_kind=principal.kind,
            uscc=uscc, purpose=purpose, endpoint=endpoint, outcome=outcome,
            personal_info_unmasked=personal_info_unmasked, prev_hash=prev_hash, entry_hash="",
        )
        entry.entry_hash = prev_hash = chain_hash(prev_hash, entry)
        entries.append(entry)
    head.last_hash = prev_hash
    session.add_all(entries)
    if commit:
        session.commit()
    return entries


@dataclass(frozen=True)
class ChainCheck:
    ok: bool
    entries: int
    first_broken_seq: int | None = None
    problem: str | None = None


def check_chain(session: Session, batch_size: int = 5000) -> ChainCheck:
    """Walk the log in order; report the first entry whose link or content does not verify."""
    prev_hash, expected_seq, count, last_seq = GENESIS_HASH, 1, 0, 0
    stmt = select(QueryLogEntry).order_by(QueryLogEntry.seq).execution_options(yield_per=batch_size)
    for entry in session.scalars(stmt):
        count += 1
        if entry.seq != expected_seq:
            return ChainCheck(False, count, expected_seq, f"entry {expected_seq} is missing")
        if entry.prev_hash != prev_hash:
            return ChainCheck(False, count, entry.seq, "prev_hash does not match the previous entry")
        if chain_hash(prev_hash, entry) != entry.entry_hash:
            return ChainCheck(False, count, entry.seq, "content does not match entry_hash (edited)")
        prev_hash, expected_seq, last_seq = entry.entry_hash, expected_seq + 1, entry.seq
    head = session.get(QueryLogHead, 1)
    if head is not None and (head.seq != last_seq or head.last_hash != prev_hash):
        return ChainCheck(False, count, last_seq + 1, "entries after the last one were deleted")
    return ChainCheck(True, count)


def list_entries(session: Session, *, uscc: str | None = None, actor: str | None = None,
                 offset: int = 0, limit: int = 100) -> tuple[int, list[QueryLogEntry]]:
    stmt = select(QueryLogEntry)
    if uscc:
        stmt = stmt.where(QueryLogEntry.uscc == uscc)
    if actor:
        stmt = stmt.where(QueryLogEntry.actor == actor)
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = session.scalars(stmt.order_by(QueryLogEntry.seq.desc()).offset(offset).limit(limit)).all()
    return total, list(rows)
