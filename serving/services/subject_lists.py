"""Lists of covered subjects by key (keyset pagination), with index-backed filters.

Order: riskiest first (grade D→A, then score ascending, then USCC), the subjects without a grade
last (by USCC); with ``search`` (a USCC prefix, or else a name prefix) the matches by that key.
Every page is an index range scan of ``current_grades`` (``ix_current_grades_*_rank``: one per
grade letter, ``grade = ? AND (score, uscc) > cursor``) or of ``subjects`` (primary key, name),
so a deep page costs what the first one does.

A search riskiest first reads ``current_grades`` alone (it carries the subject's name, migration
0021), per grade letter, whichever of two ways reads fewer rows: the letter's ``m`` matches by
the key's range (``ix_current_grades_{name,uscc}_search``: grade, key, score…), their (score,
uscc) sorted (``m`` rows), or the letter's rank index in order, each row's key tested (about
``page × n / m`` rows of the letter's ``n``). ``m`` is counted once per change and kept (as the
totals are), so a page reads at most about ``√(page × n)`` index rows whatever the match count
(≈ 10,000 for a page of 50 in a letter of 2 M), then the page's own rows. The bound assumes the
prefix does not follow the score inside a letter (names and codes do not).

The total is read on every page, so it follows a grade load made while a reader pages: for a
reader who covers every subject or a section (no search) it is a sum of the tallies kept as
subjects and grades are written; otherwise it is counted once and kept per coverage and filters until subjects, records or grades change
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
_SEARCH_INDEXES = {"uscc": "ix_current_grades_uscc_search", "name": "ix_current_grades_name_search"}


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
    per grade letter its matches by the key's range, sorted, or the rank index in order keeping
    the matches, whichever reads fewer rows (module docstring)."""
    cursor = _decode(after) if after else None
    now = generation(session)
    total = list_total(session, principal, filters)
    if cursor and cursor[0] == "g" and cursor[-1] != now:
        # riskiest first, keyed by grades that changed since the cursor: following it could show a
        # subject again or skip one (module docstring), so the reader is told and starts again
        return SubjectListPage(total=total, rows=[], next=None, changed=True)
    if order in _KEY_ORDERS:
        rows, key = _search_rows(session, principal, filters, cursor, limit, order)
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
        # (a search: the key's range on the grade's search index, current_grades' own copy of it)
        return session.scalar(_graded_count(filters.grade, filters).where(*_graded_coverage(principal))) or 0
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
    if filters.search:
        column, end = _search_range(filters.search, CurrentGrade)
        stmt = stmt.where(*prefix_range(column, filters.search, end))
    return stmt


def _graded_coverage(principal: Principal) -> list[Any]:
    """``principal``'s coverage on a statement of current grades: none for a reader of every
    subject, the section on the current grades' own column, else the subjects' rule (joined: a
    lookup per current grade read, so only for readers of some subjects by their records)."""
    if _covers_all(principal):
        return []
    if principal.role == "sector" and principal.section:
        return [CurrentGrade.industry == principal.section]
    return [exists().where(Subject.uscc == CurrentGrade.uscc, coverage_clause(principal))]


def _covers_all(principal: Principal) -> bool:
    """Whether ``principal`` reads every subject (coverage's own rule says so: ``true()``)."""
    return isinstance(coverage_clause(principal), True_)


def _may_have_ungraded(session: Session, principal: Principal, filters: ListFilter) -> bool:
    """Whether the list can hold subjects without a grade. Finding them is a scan of the subjects
    for a missing current grade, which, when every subject is graded (a city after its monthly
    grading), reads the whole population to find none: for a reader who covers every subject or a
    section the answer is in the tallies (subjects less graded ones); for a search, in its kept
    counts (its matches less its graded ones); otherwise it is looked for."""
    if filters.search and not filters.grade:
        graded = sum(list_total(session, principal, replace(filters, grade=letter)) for letter in _RISKIEST_FIRST)
        return list_total(session, principal, filters) > graded
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


def _search_range(search: str, on: type[Subject] | type[CurrentGrade] = Subject) -> tuple[Any, str]:
    """(the column a search reads, of the subjects or of the current grades' copy of it, a
    character after every one that column holds): a USCC prefix reads the code, else the name."""
    key, end = ("uscc", _USCC_END) if _USCC_PREFIX.fullmatch(search) else ("name", _NAME_END)
    return getattr(on, key), end


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
            if filters.search:
                bound = (cursor[2], cursor[3]) if cursor and letter == start_letter else None
                keys = _letter_keys(session, principal, filters, letter, bound, limit - len(rows) + 1)
                rows += _rows_of(session, keys)
                if len(rows) > limit:
                    return rows[:limit], _ranked_key(rows[limit - 1])
                continue
            stmt = _graded(principal).where(CurrentGrade.grade == letter)
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


def _walks(matches: int, letter_size: int, wanted: int) -> bool:
    """Whether a search reads a letter's rank index in order (about ``wanted × letter_size /
    matches`` rows) rather than its ``matches`` by the key's range (then sorted): the fewer."""
    return matches * matches > wanted * letter_size


def _letter_keys(session: Session, principal: Principal, filters: ListFilter, letter: str,
                 bound: tuple[float, str] | None, wanted: int, backwards: bool = False) -> list[tuple[float, str]]:
    """The (score, uscc) of the next ``wanted`` matches of a search in grade ``letter`` after
    ``bound`` (``backwards``: from ``bound`` included, back), read on ``current_grades`` alone by
    the cheaper of its two indexes (module docstring)."""
    matches = list_total(session, principal, replace(filters, grade=letter))  # counted once per change, kept
    if not matches:
        return []
    column, end = _search_range(filters.search or "", CurrentGrade)
    key = column.key
    walk = _walks(matches, tallied_total(session, grade=letter), wanted)
    stmt = select(CurrentGrade.score, CurrentGrade.uscc).where(CurrentGrade.grade == letter,
                                                               *_graded_coverage(principal))
    if filters.district:
        stmt = stmt.where(CurrentGrade.district_code == filters.district)
    if filters.industry:
        stmt = stmt.where(CurrentGrade.industry == filters.industry)
    rank = tuple_(CurrentGrade.score, CurrentGrade.uscc)
    if bound is not None:
        stmt = stmt.where(rank <= tuple_(*bound) if backwards else rank > tuple_(*bound))
    if walk:  # the rank index in order; the key tested on each row (an expression no index serves)
        prefix = filters.search or ""
        stmt = stmt.where(func.substr(column, 1, len(prefix)) == prefix).with_hint(
            CurrentGrade, "INDEXED BY ix_current_grades_rank", "sqlite")
        order = [CurrentGrade.score, CurrentGrade.uscc]
    else:  # the letter's matches by the key's range, sorted (``score + 0``: not by the rank index)
        stmt = stmt.where(*prefix_range(column, filters.search or "", end)).with_hint(
            CurrentGrade, f"INDEXED BY {_SEARCH_INDEXES[key]}", "sqlite")
        order = [CurrentGrade.score + 0, CurrentGrade.uscc]
    order = [o.desc() for o in order] if backwards else order
    return [(score, uscc) for score, uscc in session.execute(stmt.order_by(*order).limit(wanted))]


def _rows_of(session: Session, keys: list[tuple[float, str]]) -> list[tuple[Subject, Grade | None]]:
    """The (subject, current grade) of each key, in the keys' order."""
    if not keys:
        return []
    usccs = [uscc for _score, uscc in keys]
    stmt = (select(Subject, Grade).select_from(CurrentGrade).join(Subject, Subject.uscc == CurrentGrade.uscc)
            .join(Grade, CURRENT_JOIN).where(CurrentGrade.uscc.in_(usccs)))
    found = {subject.uscc: (subject, grade) for subject, grade in session.execute(stmt).tuples()}
    return [found[uscc] for uscc in usccs if uscc in found]


def _rank(row: tuple[Subject, Grade | None]) -> tuple[Any, ...]:
    """Riskiest first, as the ranked pages read: D→A, score ascending, USCC; ungraded last by USCC."""
    subject, grade = row
    return (0, -ord(grade.grade), grade.score, subject.uscc) if grade is not None else (1, 0, 0.0, subject.uscc)


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
        bound = (start[1], start[2]) if start is not None and letter == start[0] else None
        if filters.search:
            keys = _letter_keys(session, principal, filters, letter, bound, skip + 1, backwards=True)
            if len(keys) > skip:
                return _encode(["g", letter, keys[skip][0], keys[skip][1], carried])
            skip -= len(keys)
            continue
        stmt = _graded(principal).with_only_columns(CurrentGrade.score, CurrentGrade.uscc).where(
            CurrentGrade.grade == letter)
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
