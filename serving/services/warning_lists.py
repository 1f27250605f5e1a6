"""Lists of warnings by key (keyset pagination), with index-backed filters, and their totals.

Order: newest first (``raised_at``, then ``id``, descending: a grading raises thousands at one
time). Every page is one index range scan per status the filter takes
(``ix_risk_warnings_status_raised``: ``status = ?`` and the key after the cursor; with a cause,
``ix_risk_warnings_status_cause``), the statuses' pages merged, so a deep page costs what the
first one does. The cursor is the one of ``serving.services.subject_lists`` (the last row's key,
then the list's total): the total is counted on the first page only, and kept with the list
totals (``serving.services.list_counts``) until subjects, records, grades or a warning's status
change (``warnings.acknowledge`` and ``close`` forget them).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, bindparam, func, select, true
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import True_

from serving.db.tables import RiskWarning, Subject
from serving.security import Principal, shown_name
from serving.services.access import coverage_clause
from serving.services.list_counts import cached_count
from serving.services.subject_lists import decode_cursor, encode_cursor

_W = RiskWarning.__table__


@dataclass(frozen=True)
class WarningFilter:
    """What a list of warnings is narrowed to: a status (``active``: not closed; None: every
    status) and a cause (None: every cause)."""

    status: str | None = "active"
    cause: str | None = None

    @property
    def statuses(self) -> tuple[str, ...]:
        if self.status == "active":
            return ("open", "acknowledged")
        return (self.status,) if self.status else ("open", "acknowledged", "closed")


@dataclass(frozen=True)
class WarningPage:
    total: int  # of the whole filtered list (counted on the first page, then carried by the cursor)
    rows: list[tuple[Any, str]]  # (warning row, subject name as the lists show it: ``shown_name``)
    next: str | None  # the cursor of the next page; None on the last


# what the page and the CSV show (not the evidence: a JSON document per warning, decoded for nothing)
_WARNING_COLUMNS = (*(_W.c[name] for name in (
    "id", "uscc", "cause", "department", "status", "message", "record_ids", "raised_on", "raised_at",
    "acknowledged_by", "closed_by", "close_note")), Subject.name, Subject.legal_form)


def warning_page(session: Session, principal: Principal, filters: WarningFilter = WarningFilter(), *,
                 after: str | None = None, limit: int = 50) -> WarningPage:
    """One page of the warnings of the subjects ``principal`` covers under ``filters``, newest
    first (raised_at, then id, descending), after cursor ``after`` (the cursor rule of
    ``serving.services.subject_lists``: the last row's key, then the list's total).

    Paged by key: per status, index range scans (``ix_risk_warnings_status_raised``, or with a
    cause ``ix_risk_warnings_status_cause``) from the cursor on (:func:`_from_cursor`), the
    statuses' pages merged, so a deep page costs what the first one does."""
    cursor = _decode(after) if after else None
    total = cursor[-1] if cursor else count_warnings(session, principal, filters)
    rows: list[Any] = []
    for status in filters.statuses:
        stmt = select(*_WARNING_COLUMNS).join(Subject, Subject.uscc == _W.c.uscc).where(
            _W.c.status == status, coverage_clause(principal))
        if filters.cause:
            stmt = stmt.where(_W.c.cause == filters.cause)
        rows += _from_cursor(session, stmt, cursor, limit + 1, backwards=False)
    rows.sort(key=lambda r: (r.raised_at, r.id), reverse=True)
    shown = [(r, shown_name(r.name, r.legal_form)) for r in rows[:limit]]
    if len(rows) > limit:
        last = rows[limit - 1]
        return WarningPage(total, shown, encode_cursor([last.raised_at.isoformat(), last.id, total]))
    return WarningPage(total, shown, None)


def previous_warning_cursor(session: Session, principal: Principal, filters: WarningFilter, after: str, *,
                            limit: int = 50) -> str | None:
    """The ``after`` of the page before the one ``after`` opens (None: that page is the first): the
    key of the row ``limit`` rows before the cursor's row, read backwards on the pages' indexes
    (at most ``limit + 1`` keys per status)."""
    cursor = _decode(after)
    keys: list[Any] = []
    for status in filters.statuses:
        stmt = select(_W.c.raised_at, _W.c.id).join(Subject, Subject.uscc == _W.c.uscc).where(
            _W.c.status == status, coverage_clause(principal))
        if filters.cause:
            stmt = stmt.where(_W.c.cause == filters.cause)
        keys += _from_cursor(session, stmt, cursor, limit + 1, backwards=True)
    keys.sort()
    if len(keys) > limit:
        return encode_cursor([keys[limit][0].isoformat(), keys[limit][1], cursor[-1]])
    return None


def _from_cursor(session: Session, stmt: Any, cursor: list[Any] | None, n: int, *, backwards: bool) -> list[Any]:
    """The first ``n`` rows of ``stmt`` (of one status) after the cursor's key, newest first
    (``backwards``: from the cursor's row on, oldest first). Two index ranges, the rest of the
    cursor's time (``raised_at = ? AND id < ?``), then the times after it: the row value
    ``(raised_at, id) < (?, ?)`` is a range on ``raised_at`` only for SQLite, which read every
    warning of the cursor's time before it (a grading raises tens of thousands at one time)."""
    order = (_W.c.raised_at, _W.c.id) if backwards else (_W.c.raised_at.desc(), _W.c.id.desc())
    if cursor is None:
        ranges = [true()]
    else:
        at = bindparam("at", dt.datetime.fromisoformat(cursor[0]), type_=_W.c.raised_at.type)
        ranges = ([and_(_W.c.raised_at == at, _W.c.id >= cursor[1]), _W.c.raised_at > at] if backwards
                  else [and_(_W.c.raised_at == at, _W.c.id < cursor[1]), _W.c.raised_at < at])
    rows: list[Any] = []
    for where in ranges:
        if len(rows) >= n:
            break
        # columns: Core rows, no ORM loading per row
        rows += session.connection().execute(stmt.where(where).order_by(*order).limit(n - len(rows))).all()
    return rows


def all_warnings(session: Session, principal: Principal, filters: WarningFilter = WarningFilter(), *,
                 chunk: int = 2000) -> Iterator[list[tuple[Any, str]]]:
    """The whole filtered list, newest first, ``chunk`` rows at a time (pages of
    :func:`warning_page`: memory bounded by one chunk, whatever the list's length)."""
    page = warning_page(session, principal, filters, limit=chunk)
    while True:
        yield page.rows
        if page.next is None:
            return
        page = warning_page(session, principal, filters, after=page.next, limit=chunk)


def list_warnings(session: Session, principal: Principal, *, status: str | None = None, cause: str | None = None,
                  limit: int = 500) -> list[tuple[Any, str]]:
    """The first ``limit`` of :func:`warning_page` (newest first)."""
    return warning_page(session, principal, WarningFilter(status, cause), limit=limit).rows


def count_warnings(session: Session, principal: Principal, filters: WarningFilter = WarningFilter()) -> int:
    """How many warnings ``principal`` covers under ``filters``: counted on the statuses' indexes
    (the subjects joined only when coverage decides), kept with the list totals
    (``serving.services.list_counts``) until subjects, records, grades or a warning's status change."""
    stmt = select(func.count()).select_from(_W).where(_W.c.status.in_(filters.statuses))
    if filters.cause:
        stmt = stmt.where(_W.c.cause == filters.cause)
    coverage = coverage_clause(principal)
    if not isinstance(coverage, True_):
        stmt = stmt.join(Subject, Subject.uscc == _W.c.uscc).where(coverage)
    scope = principal.department or principal.section or principal.uscc or ""
    key = json.dumps(["warnings", principal.role, scope, filters.status, filters.cause], ensure_ascii=False,
                     separators=(",", ":"))
    return cached_count(session, key, lambda: session.scalar(stmt) or 0)


def count_open(session: Session, principal: Principal) -> int:
    """The warnings not closed that ``principal`` covers (:func:`count_warnings`, kept)."""
    return count_warnings(session, principal, WarningFilter("active"))


def _warning_cursor(values: list[Any]) -> bool:
    if len(values) != 3 or not isinstance(values[0], str) or not isinstance(values[1], int):
        return False
    try:
        dt.datetime.fromisoformat(values[0])
    except ValueError:
        return False
    return True


def _decode(cursor: str) -> list[Any]:
    return decode_cursor(cursor, _warning_cursor)


__all__ = ["WarningFilter", "WarningPage", "all_warnings", "count_open", "count_warnings", "list_warnings",
           "previous_warning_cursor", "warning_page"]
