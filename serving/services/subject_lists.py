"""Lists of covered subjects by key (keyset pagination), with index-backed filters.

Order: riskiest first (grade D→A, then score ascending, then USCC), the subjects without a grade
last (by USCC); with ``search`` (a USCC prefix, or else a name prefix) the matches by that key.
Every page is an index range scan of ``current_grades`` (``ix_current_grades_*_rank``: one per
grade letter, ``grade = ? AND (score, uscc) > cursor``) or of ``subjects`` (primary key, name),
so a deep page costs what the first one does. The total is read on every page, so it follows a
grade load made while a reader pages: for a reader who covers every subject or a section (no
search) it is a sum of the tallies kept as subjects and grades are written; otherwise it is
counted once and kept per coverage and filters until subjects, records or grades change
(``serving.services.list_counts``), so a later page reads the kept total (or counts again, once,
after a change).

The cursor carries the generation of the kept totals (``list_counts.generation``) it was made
under. Riskiest first is keyed by the current grade, which a grade load changes: a subject shown
on page 1 and regraded less risky sorts after the cursor and would be shown again (one regraded
riskier would be missed). So a riskiest-first cursor of the graded part made under another
generation is not followed: the page is empty and says the list changed (``changed``), and the
reader starts again from the first page (never a subject twice, never one missed unsaid). The
orders by USCC or name are keyed by what a grade load does not change, and carry on.

The cursor (``next``) is opaque to clients: base64url of a small JSON array.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, get_args

from sqlalchemy import ColumnElement, Select, exists, func, select, true, tuple_
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import True_

from serving.db.byte_order import prefix_range
from serving.db.tables import CurrentGrade, Grade, Subject
from serving.errors import InvalidInput
from serving.schemas import GradeLetter
from serving.security import Principal
from serving.services.access import coverage_clause
from serving.services.grades import CURRENT_JOIN
from serving.services.list_counts import cached_count, generation, tallied_total

_RISKIEST_FIRST = sorted(get_args(GradeLetter), reverse=True)
_USCC_PREFIX = re.compile(r"[0-9A-Z]{1,18}")
_USCC_END = "~"  # sorts after every USCC character (0-9, A-Z)
_NAME_END = "\U0010ffff"
_KEY_ORDERS = {"uscc": Subject.uscc, "name": Subject.name}  # the orders of a list by one indexed key
# a search's matches ranked in memory up to this many (a page reads them all on the search's index
# range); more, and the grade indexes are walked in rank order, reading about total/matches rows a
# match (at most population/_FEW_MATCHES)
_FEW_MATCHES = 1000


@dataclass(frozen=True)
class ListFilter:
    """What a list is narrowed to; every field optional."""

    grade: str | None = None
    district: str | None = None  # district_code
    industry: str | None = None  # GB/T 4754 section
    search: str | None = None  # USCC prefix (upper-case letters and digits) or name prefix


@dataclass(frozen=True)
class SubjectListPage:
    total: int
    rows: list[tuple[Subject, Grade | None]]
    next: str | None  # the cursor of the next page; None on the last
    changed: bool = False  # the cursor's riskiest-first order changed since it was made: start again


def subject_page(session: Session, principal: Principal, filters: ListFilter = ListFilter(), *,
                 after: str | None = None, limit: int = 50, order: str = "risk") -> SubjectListPage:
    """One page of the subjects ``principal`` covers under ``filters``, after cursor ``after``;
    ``order``: riskiest first (``risk``), or by USCC (``uscc``) or name (``name``), each by key
    on an index (a search in a key order orders by the key it searches). A search riskiest first:
    its matches, when few (``_FEW_MATCHES``), read on the search's index range and ranked in
    memory; when many, the grade indexes read in rank order, keeping the matches (dense enough
    that a page reads a bounded stretch)."""
    cursor = _decode(after) if after else None
    now = generation(session)
    total = list_total(session, principal, filters)
    if cursor and cursor[0] == "g" and cursor[-1] != now:
        # riskiest first, keyed by grades that changed since the cursor: following it could show a
        # subject again or skip one (module docstring), so the reader is told and starts again
        return SubjectListPage(total=total, rows=[], next=None, changed=True)
    if order in _KEY_ORDERS:
        rows, key = _search_rows(session, principal, filters, cursor, limit, order)
    elif filters.search and total <= _FEW_MATCHES:
        rows, key = _few_ranked(session, principal, filters, cursor, limit)
    else:
        rows, key = _ranked_rows(session, principal, filters, cursor, limit)
    return SubjectListPage(total=total, rows=rows, next=_encode([*key, now]) if key else None)


def list_total(session: Session, principal: Principal, filters: ListFilter) -> int:
    """How many subjects the list of ``principal`` under ``filters`` holds now: a sum of tallies
    when they say it, else the kept count (counted once after each change)."""
    tallied = _tallied(session, principal, filters)
    return tallied if tallied is not None else cached_count(
        session, _count_key(principal, filters), lambda: count_subjects(session, principal, filters))


def offset_page(session: Session, principal: Principal, filters: ListFilter, offset: int,
                limit: int) -> tuple[int, list[tuple[Subject, Grade | None]]] | None:
    """(total, rows ``offset`` … ``offset + limit``) of the riskiest-first list, for a reader whose
    totals are tallied (else None: the caller pages by offset over the whole list): whole grade
    letters are skipped by their tallies, the rest is an offset into one letter's index range."""
    total = _tallied(session, principal, filters)
    if total is None or filters.search:
        return None
    rows: list[tuple[Subject, Grade | None]] = []
    for letter in [filters.grade] if filters.grade else _RISKIEST_FIRST:
        if len(rows) == limit:
            return total, rows
        n = _tallied(session, principal, replace(filters, grade=letter)) or 0
        if offset >= n:
            offset -= n
            continue
        keys = select(CurrentGrade.score, CurrentGrade.uscc).where(CurrentGrade.grade == letter)
        stmt = _graded(principal).where(CurrentGrade.grade == letter)
        if filters.district:
            keys, stmt = (q.where(CurrentGrade.district_code == filters.district) for q in (keys, stmt))
        if filters.industry:
            keys, stmt = (q.where(CurrentGrade.industry == filters.industry) for q in (keys, stmt))
        if principal.role == "sector":  # the coverage, on the current grades' own column
            keys = keys.where(CurrentGrade.industry == principal.section)
        # the first row's key by the index alone (an offset over the joined rows joins every
        # skipped one), then the rows from it by key
        start = session.execute(keys.order_by(CurrentGrade.score, CurrentGrade.uscc).offset(offset).limit(1)).first()
        if start is not None:
            stmt = stmt.where(tuple_(CurrentGrade.score, CurrentGrade.uscc) >= tuple_(start[0], start[1]))
            rows += list(session.execute(stmt.order_by(CurrentGrade.score, CurrentGrade.uscc)
                                         .limit(limit - len(rows))).tuples())
        offset = 0
    if filters.grade is None and len(rows) < limit and _may_have_ungraded(session, principal, filters):
        ungraded = (select(Subject).where(~exists().where(CurrentGrade.uscc == Subject.uscc),
                                          coverage_clause(principal), *_subject_filters(filters))
                    .order_by(Subject.uscc).offset(offset).limit(limit - len(rows)))
        rows += [(subject, None) for subject in session.scalars(ungraded)]
    return total, rows


def _tallied(session: Session, principal: Principal, filters: ListFilter, grade: str | None = None) -> int | None:
    """The total from the tallies (``list_counts.tallied_total``) when ``principal`` covers every
    subject or a whole section and there is no search; else None (counted). ``grade``: overrides the
    filter's (``""``: the subjects without a current grade)."""
    if filters.search:
        return None
    industry = filters.industry
    if principal.role == "sector" and principal.section and not _covers_all(principal):
        if industry not in (None, principal.section):
            return 0
        industry = principal.section
    elif not _covers_all(principal):
        return None
    return tallied_total(session, grade=filters.grade if grade is None else grade, district=filters.district,
                         industry=industry)


def count_subjects(session: Session, principal: Principal, filters: ListFilter) -> int:
    """How many subjects ``principal`` covers under ``filters`` (counted once per list)."""
    if filters.grade:  # led by the current grades' (district|industry, grade) index, as the pages are
        stmt = _graded_count(filters.grade, filters)
        if filters.search or not _covers_all(principal):
            # the subjects joined only when their columns decide: a count of one grade joined to
            # the subjects costs a look-up per graded subject (1.1 s of CPU for 400 k on SQLite,
            # against 21 ms for the index alone)
            stmt = stmt.join(Subject, Subject.uscc == CurrentGrade.uscc).where(
                coverage_clause(principal), *_subject_filters(ListFilter(search=filters.search)))
        return session.scalar(stmt) or 0
    stmt, rest = select(func.count()).select_from(Subject), _subject_filters(filters)
    return session.scalar(stmt.where(coverage_clause(principal), *rest)) or 0


def _graded_count(letter: str | None, filters: ListFilter) -> Select[Any]:
    """The count of current grades (of ``letter``, or all) under the filters' district and
    industry, on the current grades' own indexes."""
    stmt = select(func.count()).select_from(CurrentGrade)
    if letter:
        stmt = stmt.where(CurrentGrade.grade == letter)
    if filters.district:
        stmt = stmt.where(CurrentGrade.district_code == filters.district)
    if filters.industry:
        stmt = stmt.where(CurrentGrade.industry == filters.industry)
    return stmt


def _covers_all(principal: Principal) -> bool:
    """Whether ``principal`` reads every subject (coverage's own rule says so: ``true()``)."""
    return isinstance(coverage_clause(principal), True_)


def _may_have_ungraded(session: Session, principal: Principal, filters: ListFilter) -> bool:
    """Whether the list can hold subjects without a grade. Finding them is a scan of the subjects
    for a missing current grade, which, when every subject is graded (a city after its monthly
    grading), reads the whole population to find none: for a reader who covers every subject or a
    section the answer is in the tallies (subjects less graded ones); otherwise it is looked for."""
    tallied = _tallied(session, principal, filters, grade="")
    return tallied is None or tallied > 0


def _count_key(principal: Principal, filters: ListFilter) -> str:
    """The key of a list's kept total: whose coverage (role and scope), which filters."""
    scope = principal.department or principal.section or principal.uscc or ""
    return json.dumps([principal.role, scope, filters.grade, filters.district, filters.industry, filters.search],
                      ensure_ascii=False, separators=(",", ":"))


def _subject_filters(filters: ListFilter) -> list[ColumnElement[bool]]:
    out: list[ColumnElement[bool]] = []
    if filters.district:
        out.append(Subject.district_code == filters.district)
    if filters.industry:
        out.append(Subject.industry == filters.industry)
    if filters.search:
        column, end = _search_range(filters.search)
        out += prefix_range(column, filters.search, end)
    return out


def _search_range(search: str) -> tuple[Any, str]:
    """(the column a search reads, a character after every one that column holds)."""
    if _USCC_PREFIX.fullmatch(search):
        return Subject.uscc, _USCC_END
    return Subject.name, _NAME_END


def _grade_of_row(letter: str) -> ColumnElement[bool]:
    """A key-ordered list's grade filter, checked on each subject read in key order: the subject's
    current grade looked up, not the current grades' grade index read and its rows sorted (which
    sorted a whole grade for every page). ``coalesce``: an expression no index serves, which keeps
    the outer join (and so the subjects' key-order index) leading the plan."""
    return func.coalesce(CurrentGrade.grade, "") == letter


def _graded(principal: Principal) -> Select[Any]:
    return (select(Subject, Grade).select_from(CurrentGrade)
            .join(Subject, Subject.uscc == CurrentGrade.uscc).join(Grade, CURRENT_JOIN)
            .where(coverage_clause(principal)))


def _ranked_rows(session: Session, principal: Principal, filters: ListFilter, cursor: list[Any] | None,
                 limit: int) -> tuple[list[tuple[Subject, Grade | None]], list[Any] | None]:
    rows: list[tuple[Subject, Grade | None]] = []
    section = cursor[0] if cursor else "g"
    letters = [filters.grade] if filters.grade else _RISKIEST_FIRST
    if section == "g":
        start_letter = cursor[1] if cursor else letters[0]
        for letter in letters:
            if letter > start_letter:
                continue
            stmt = _graded(principal).where(CurrentGrade.grade == letter, *_searched(filters))
            if filters.district:  # the filter columns of current_grades: index (district, grade, score, uscc)
                stmt = stmt.where(CurrentGrade.district_code == filters.district)
            if filters.industry:
                stmt = stmt.where(CurrentGrade.industry == filters.industry)
            if cursor and letter == start_letter:
                stmt = stmt.where(tuple_(CurrentGrade.score, CurrentGrade.uscc) > tuple_(cursor[2], cursor[3]))
            rows += list(session.execute(stmt.order_by(CurrentGrade.score, CurrentGrade.uscc)
                                         .limit(limit - len(rows) + 1)).tuples())
            if len(rows) > limit:
                return rows[:limit], _ranked_key(rows[limit - 1])
        if filters.grade:
            return rows, None
        cursor = None
    if not _may_have_ungraded(session, principal, filters):
        return rows, None
    after_uscc = cursor[1] if cursor else ""
    ungraded = (select(Subject).where(~exists().where(CurrentGrade.uscc == Subject.uscc), Subject.uscc > after_uscc,
                                      coverage_clause(principal), *_subject_filters(filters))
                .order_by(Subject.uscc).limit(limit - len(rows) + 1))
    rows += [(s, None) for s in session.scalars(ungraded)]
    if len(rows) > limit:
        return rows[:limit], _ranked_key(rows[limit - 1])
    return rows, None


def _searched(filters: ListFilter) -> list[ColumnElement[bool]]:
    """The search's range on the subjects joined to the current grades (none without a search)."""
    return _subject_filters(ListFilter(search=filters.search)) if filters.search else []


def _rank(row: tuple[Subject, Grade | None]) -> tuple[Any, ...]:
    """Riskiest first, as the ranked pages read: D→A, score ascending, USCC; ungraded last by USCC."""
    subject, grade = row
    return (0, -ord(grade.grade), grade.score, subject.uscc) if grade is not None else (1, 0, 0.0, subject.uscc)


def _matches_ranked(session: Session, principal: Principal,
                    filters: ListFilter) -> list[tuple[Subject, Grade | None]]:
    """A search's few matches (at most ``_FEW_MATCHES``), read on the search's index range, ranked."""
    stmt = (select(Subject, Grade).outerjoin(CurrentGrade, CurrentGrade.uscc == Subject.uscc)
            .outerjoin(Grade, CURRENT_JOIN).where(coverage_clause(principal), *_subject_filters(filters)))
    if filters.grade:
        stmt = stmt.where(_grade_of_row(filters.grade))
    return sorted(session.execute(stmt.limit(_FEW_MATCHES + 1)).tuples(), key=_rank)


def _few_ranked(session: Session, principal: Principal, filters: ListFilter, cursor: list[Any] | None,
                limit: int) -> tuple[list[tuple[Subject, Grade | None]], list[Any] | None]:
    """A page of a search's few matches riskiest first (ranked in memory), after ``cursor``."""
    rows = _matches_ranked(session, principal, filters)
    if cursor:
        mark = (0, -ord(cursor[1]), cursor[2], cursor[3]) if cursor[0] == "g" else (1, 0, 0.0, cursor[1])
        rows = [row for row in rows if _rank(row) > mark]
    if len(rows) > limit:
        return rows[:limit], _ranked_key(rows[limit - 1])
    return rows, None


def _ranked_key(row: tuple[Subject, Grade | None]) -> list[Any]:
    subject, grade = row
    return ["g", grade.grade, grade.score, subject.uscc] if grade is not None else ["u", subject.uscc]


def _search_rows(session: Session, principal: Principal, filters: ListFilter, cursor: list[Any] | None,
                 limit: int, order: str = "risk") -> tuple[list[tuple[Subject, Grade | None]], list[Any] | None]:
    column = _search_range(filters.search)[0] if filters.search else _KEY_ORDERS[order]
    stmt = (select(Subject, Grade).outerjoin(CurrentGrade, CurrentGrade.uscc == Subject.uscc)
            .outerjoin(Grade, CURRENT_JOIN).where(coverage_clause(principal), *_subject_filters(filters)))
    if filters.grade:
        stmt = stmt.where(_grade_of_row(filters.grade))
    after = tuple_(column, Subject.uscc) > tuple_(cursor[1], cursor[2]) if cursor else true()
    rows = list(session.execute(stmt.where(after).order_by(column, Subject.uscc).limit(limit + 1)).tuples())
    if len(rows) > limit:
        last = rows[limit - 1][0]
        return rows[:limit], ["s", getattr(last, column.key), last.uscc]
    return rows, None


def previous_cursor(session: Session, principal: Principal, filters: ListFilter, after: str, *, limit: int = 50,
                    order: str = "risk") -> str | None:
    """The ``after`` of the page before the one ``after`` opens (None: that page is the first).

    The page before ends at the row ``after`` names; its own ``after`` is the key of the row
    ``limit`` rows further back. Read backwards by key on the indexes the pages use (at most
    ``limit + 1`` keys per grade letter), so going back costs what going forward does."""
    cursor = _decode(after)
    carried = cursor[-1]  # the cursor's generation (see the module docstring), carried on
    if order in _KEY_ORDERS:
        column = _search_range(filters.search)[0] if filters.search else _KEY_ORDERS[order]
        stmt = (select(column, Subject.uscc).select_from(Subject)
                .outerjoin(CurrentGrade, CurrentGrade.uscc == Subject.uscc)
                .where(coverage_clause(principal), *_subject_filters(filters),
                       tuple_(column, Subject.uscc) <= tuple_(cursor[1], cursor[2])))
        if filters.grade:
            stmt = stmt.where(_grade_of_row(filters.grade))
        row = session.execute(stmt.order_by(column.desc(), Subject.uscc.desc()).offset(limit).limit(1)).first()
        return _encode(["s", row[0], row[1], carried]) if row else None
    if filters.search and list_total(session, principal, filters) <= _FEW_MATCHES:
        ranked = [_ranked_key(row) for row in _matches_ranked(session, principal, filters)]
        at = next((k for k, key in enumerate(ranked) if key == cursor[:-1]), None)
        return _encode([*ranked[at - limit], carried]) if at is not None and at >= limit else None
    skip = limit  # rows of the page before, the cursor's row its last
    letters = [filters.grade] if filters.grade else _RISKIEST_FIRST
    if cursor[0] == "u":
        ungraded = (select(Subject.uscc).where(~exists().where(CurrentGrade.uscc == Subject.uscc),
                                               Subject.uscc <= cursor[1], coverage_clause(principal),
                                               *_subject_filters(filters))
                    .order_by(Subject.uscc.desc()).limit(skip + 1))
        keys = list(session.scalars(ungraded))
        if len(keys) > skip:
            return _encode(["u", keys[skip], carried])
        skip -= len(keys)
        start = None
    else:
        start = cursor[1:4]
    for letter in reversed(letters):
        if start is not None and letter < start[0]:  # less risky than the cursor's: after it
            continue
        stmt = _graded(principal).with_only_columns(CurrentGrade.score, CurrentGrade.uscc).where(
            CurrentGrade.grade == letter, *_searched(filters))
        if filters.district:
            stmt = stmt.where(CurrentGrade.district_code == filters.district)
        if filters.industry:
            stmt = stmt.where(CurrentGrade.industry == filters.industry)
        if start is not None and letter == start[0]:
            stmt = stmt.where(tuple_(CurrentGrade.score, CurrentGrade.uscc) <= tuple_(start[1], start[2]))
        keys = list(session.execute(stmt.order_by(CurrentGrade.score.desc(), CurrentGrade.uscc.desc())
                                    .limit(skip + 1)).tuples())
        if len(keys) > skip:
            return _encode(["g", letter, keys[skip][0], keys[skip][1], carried])
        skip -= len(keys)
    return None


def encode_cursor(values: list[Any]) -> str:
    """A keyset cursor (opaque to clients): base64url of a small JSON array (the last row's key,
    then one number the list carries: its total, or the generation it was read under)."""
    return base64.urlsafe_b64encode(json.dumps(values, ensure_ascii=False).encode()).decode().rstrip("=")


def decode_cursor(cursor: str, shape: Callable[[list[Any]], bool]) -> list[Any]:
    """The values of a cursor :func:`encode_cursor` gave, if ``shape`` accepts them (a list whose
    last value is an integer); else ``InvalidInput`` (field ``after``)."""
    try:
        values = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        ok = isinstance(values, list) and bool(values) and isinstance(values[-1], int) and shape(values)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        ok = False
    if not ok:
        raise InvalidInput("the cursor is not one this list gave; start from the first page", field="after",
                           zh="翻页链接已失效（游标无效），请从第一页重新开始")
    return values


_encode = encode_cursor


def _subject_cursor(values: list[Any]) -> bool:
    return ((values[0] == "g" and len(values) == 5 and values[1] in _RISKIEST_FIRST
             and isinstance(values[2], int | float) and isinstance(values[3], str))
            or (values[0] in ("u",) and len(values) == 3 and isinstance(values[1], str))
            or (values[0] == "s" and len(values) == 4 and all(isinstance(v, str) for v in values[1:3])))


def _decode(cursor: str) -> list[Any]:
    return decode_cursor(cursor, _subject_cursor)


__all__ = ["ListFilter", "SubjectListPage", "count_subjects", "decode_cursor", "encode_cursor", "list_total", "offset_page",
           "previous_cursor", "subject_page"]
