"""Grades: stored by the pipeline (``store_grades``), read by routes and pages."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from functools import lru_cache
from typing import Any

from pydantic import TypeAdapter
from pydantic_core import from_json
from sqlalchemy import (
    JSON,
    Connection,
    FromClause,
    Select,
    String,
    TypeDecorator,
    and_,
    bindparam,
    delete,
    func,
    insert,
    select,
    type_coerce,
    update,
)
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, aliased

from serving.db.driver import compiled_for
from serving.db.reason_labels import compact, expand, labels_generation
from serving.db.session import connection_of
from serving.db.tables import CurrentGrade, Grade, Subject
from serving.errors import GradeUnavailable, ModelUnavailable
from serving.schemas import GRADE_OUT_COLUMNS, GradeIn, GradeOut
from serving.security import Principal
from serving.services.access import coverage_clause
from serving.services.list_counts import forget_counts, kept_while_unchanged, tally_current

# Called after a record behind a grade changed: (session, uscc, reason). It must not commit;
# the workflow that calls it commits once, so a decision and its regrade land together.
Regrader = Callable[[Session, str, str], None]


def store_grades(session: Session, rows: Iterable[Mapping[str, Any] | GradeIn]) -> int:
    """Insert or replace grades keyed by (uscc, as_of, model_version), and the subjects' current
    grades with them; the subjects whose risk rose get their early warnings
    (``services.warnings``); one transaction."""
    from serving.services.warnings import current_values, warn_after_grades

    grades = [row if isinstance(row, GradeIn) else GradeIn.model_validate(dict(row)) for row in rows]
    touched = [g.uscc for g in grades]
    before = current_values(session, touched)
    for g in grades:
        put_grade(session, g)
    session.flush()
    refresh_current(session, touched)
    after = current_values(session, touched)
    # the grades of this grading that became current, against what was current before (early warnings)
    stored = {(g.uscc, g.as_of, g.model_version): g for g in grades}
    warn_after_grades(session, before, [(u, a, gr, p, stored[(u, a, m)].model_dump(mode="json")["reasons"])
                                        for u, (a, m, gr, p) in after.items()
                                        if (u, a, m) in stored and before.get(u) != (a, m, gr, p)])
    session.commit()
    return len(grades)


def put_grade(session: Session, grade: GradeIn) -> Grade:
    """Insert or replace one grade (fresh: not stale, stored now); the caller refreshes the current
    grade (``refresh_current``) and commits."""
    values = grade.model_dump(mode="json") | {"as_of": grade.as_of}
    # the reasons compact, their labels once in reason_labels (serving.db.reason_labels)
    values["stored_reasons"] = compact(session.connection(), [values.pop("reasons")])[0]
    existing = session.scalars(select(Grade).where(
        Grade.uscc == grade.uscc, Grade.as_of == grade.as_of, Grade.model_version == grade.model_version)).first()
    if existing is None:
        existing = Grade(**values)
        session.add(existing)
    else:
        for key, value in values.items():
            setattr(existing, key, value)
    existing.stale, existing.stale_reason = False, None
    existing.created_at = dt.datetime.now(dt.UTC)
    return existing


_G, _C, _S = Grade.__table__, CurrentGrade.__table__, Subject.__table__
# The one rule of "latest": latest as-of date, then latest stored. Kept as data in current_grades.
_RANKED = aliased(Grade)  # the inner grades of the lookup, apart from the outer row it picks


def _latest_first(grade: Any) -> tuple[Any, ...]:
    return grade.as_of.desc(), grade.created_at.desc(), grade.id.desc()


_LATEST_ID = (select(_RANKED.id).where(_RANKED.uscc == _S.c.uscc)
              .order_by(*_latest_first(_RANKED)).limit(1).correlate(_S).scalar_subquery())


def stored_last_of_day(source: Session | Connection, as_of: dt.date) -> Select[tuple[str, str, str]]:
    """(uscc, grade, model_version) of each subject's grade of ``as_of`` that was stored last: the
    rule of the current grade (as_of, created_at, id), within one day. For the latest as-of date in
    the service these are exactly the current grades of that date (kept as data: a scan of the
    narrow current grades, no ranking); for an older date, the day's grades ranked by that rule."""
    connection = connection_of(source)
    latest = connection.scalar(select(func.max(_G.c.as_of)))  # the as-of index's last entry
    if latest == as_of:
        return select(_C.c.uscc, _C.c.grade, _C.c.model_version).where(_C.c.as_of == as_of)
    ranked = (select(_G.c.uscc, _G.c.grade, _G.c.model_version,
                     func.row_number().over(partition_by=_G.c.uscc, order_by=_latest_first(_G.c)).label("rank"))
              .where(_G.c.as_of == as_of).subquery())
    return select(ranked.c.uscc, ranked.c.grade, ranked.c.model_version).where(ranked.c.rank == 1)


def refresh_current(source: Session | Connection, usccs: Iterable[str]) -> None:
    """Set the current grade of each of ``usccs`` from its grades (none: no current grade), in the
    caller's transaction. Each subject is one index lookup, so the cost follows the subjects
    touched, not the table."""
    connection = connection_of(source)
    wanted = sorted(set(usccs))
    if wanted:
        forget_counts(connection)  # the lists' totals by grade change with the current grades
    for start in range(0, len(wanted), 500):  # stay under SQL parameter limits
        chunk = wanted[start:start + 500]
        tally_current(connection, chunk, -1)  # the lists' tallies: these subjects' grades before, then after
        connection.execute(delete(_C).where(_C.c.uscc.in_(chunk)))
        latest = (select(_G.c.uscc, _G.c.as_of, _G.c.model_version, _G.c.grade, _G.c.score,
                         _S.c.industry, _S.c.district_code, _S.c.name)
                  .select_from(_S.join(_G, _G.c.id == _LATEST_ID))
                  .where(_S.c.uscc.in_(chunk)))
        connection.execute(insert(_C).from_select(
            ["uscc", "as_of", "model_version", "grade", "score", "industry", "district_code", "name"], latest))
        tally_current(connection, chunk, +1)


def advance_current(connection: Connection, stored: FromClause) -> None:
    """Make grades just stored the current ones where they are latest, in one ``INSERT … SELECT``:
    ``stored`` has the (uscc, as_of, model_version) of grades whose ``created_at`` is now. Stored
    now, such a grade is later than every grade stored before, so by the rule of
    ``refresh_current`` the latest of a subject's ``stored`` grades (ranked by that rule) is its
    current grade exactly when its as_of is not before the current one's. For bulk loads: the cost
    is a sort of the grades just stored, not a lookup per subject. The rows are written in the
    order of the lists' indexes (grade, score; after the industry or district, a few values), so
    each index takes its new entries as runs on neighbouring pages, not at three pages far apart
    per row (SQLite, 50,000 rows into 200,000, the statement alone: a first load 12.3 → 9.2
    CPU-µs a row; a regrade whose scores all move at random 26.8 → 24.8, its old entries still
    removed at random places; 23 → 13 where old and new places keep their order)."""
    ranked = (select(_G.c.uscc, _G.c.as_of, _G.c.model_version, _G.c.grade, _G.c.score, _S.c.industry,
                     _S.c.district_code, _S.c.name, func.row_number().over(partition_by=_G.c.uscc,
                                                                order_by=_latest_first(_G.c)).label("rank"))
              .select_from(stored.join(_G, and_(_G.c.uscc == stored.c.uscc, _G.c.as_of == stored.c.as_of,
                                                _G.c.model_version == stored.c.model_version))
                           .join(_S, _S.c.uscc == _G.c.uscc))
              .subquery())
    names = ["uscc", "as_of", "model_version", "grade", "score", "industry", "district_code", "name"]
    upsert = (postgresql_insert if connection.dialect.name == "postgresql" else sqlite_insert)(_C)
    upsert = upsert.from_select(names, select(*(ranked.c[n] for n in names)).where(ranked.c.rank == 1)
                               .order_by(ranked.c.grade, ranked.c.score))
    forget_counts(connection)
    subjects = select(stored.c.uscc)
    tally_current(connection, subjects, -1)  # the lists' tallies: the stored subjects' grades before, then after
    connection.execute(upsert.on_conflict_do_update(
        index_elements=["uscc"], set_={n: upsert.excluded[n] for n in names[1:]},
        where=upsert.excluded.as_of >= _C.c.as_of))
    tally_current(connection, subjects, +1)


def refresh_subject_columns(source: Session | Connection,
                            subjects: Iterable[tuple[str, str | None, str | None, str]]) -> None:
    """Copy subjects' (uscc, industry, district_code, name) into their current grades (after they
    changed: a subject renamed moves in the searches' name index), a subject given twice by its
    last row. One set-based ``UPDATE … FROM`` the rows passed as one parameter (arrays on
    PostgreSQL, a JSON array on SQLite): one statement and one index lookup per subject, not one
    statement per subject (2 M for a city); rows already equal not written."""
    import json

    from sqlalchemy import text

    connection = connection_of(source)
    last = {uscc: (industry, district, name) for uscc, industry, district, name in subjects}  # a later row wins
    if not last:
        return
    forget_counts(connection)  # subjects stored or changed: every list's total may change
    codes = list(last)
    for start in range(0, len(codes), 500):  # the lists' tallies, before (stay under SQL parameter limits)
        tally_current(connection, codes[start:start + 500], -1)
    if connection.dialect.name == "postgresql":
        connection.execute(text(
            "UPDATE current_grades AS c SET industry = v.industry, district_code = v.district_code, name = v.name "
            "FROM unnest(CAST(:usccs AS text[]), CAST(:industries AS text[]), CAST(:districts AS text[]), "
            "CAST(:names AS text[])) AS v(uscc, industry, district_code, name) WHERE c.uscc = v.uscc "
            "AND (c.industry IS DISTINCT FROM v.industry OR c.district_code IS DISTINCT FROM v.district_code "
            "OR c.name IS DISTINCT FROM v.name)"),
            {"usccs": codes, "industries": [i for i, _, _ in last.values()],
             "districts": [d for _, d, _ in last.values()], "names": [n for _, _, n in last.values()]})
    else:
        connection.execute(text(  # SQLite ≥ 3.33 (UPDATE … FROM)
            "UPDATE current_grades SET industry = v.industry, district_code = v.district_code, name = v.name "
            "FROM (SELECT json_extract(value, '$[0]') AS uscc, json_extract(value, '$[1]') AS industry, "
            "json_extract(value, '$[2]') AS district_code, json_extract(value, '$[3]') AS name "
            "FROM json_each(:rows)) AS v "
            "WHERE current_grades.uscc = v.uscc AND (current_grades.industry IS NOT v.industry "
            "OR current_grades.district_code IS NOT v.district_code OR current_grades.name IS NOT v.name)"),
            {"rows": json.dumps([[u, i, d, n] for u, (i, d, n) in last.items()], ensure_ascii=False)})
    for start in range(0, len(codes), 500):  # and after
        tally_current(connection, codes[start:start + 500], +1)


def prune_grades(session: Session, keep_as_of: int) -> tuple[list[dt.date], int]:
    """Delete the grades of every as-of date but the latest ``keep_as_of`` ones (history kept per
    as-of date, retention configurable); subjects whose current grade went with them get the next
    latest one, or none. One transaction. Returns (the dates dropped, grades deleted)."""
    dates = list(session.scalars(select(Grade.as_of).distinct().order_by(Grade.as_of.desc())))
    dropped = dates[keep_as_of:]
    if not dropped:
        return [], 0
    cutoff = dropped[0]
    affected = list(session.scalars(select(CurrentGrade.uscc).where(CurrentGrade.as_of <= cutoff)))
    deleted = session.execute(delete(Grade).where(Grade.as_of <= cutoff)).rowcount or 0
    forget_counts(session)  # the aggregates of every grade (grade shares) change even when no current grade does
    refresh_current(session, affected)
    session.commit()
    return dropped, deleted


def mark_grades_stale(session: Session, uscc: str, reason: str) -> None:
    """Default ``Regrader``: flag the subject's grades stale until the pipeline regrades it."""
    session.execute(update(Grade).where(Grade.uscc == uscc).values(stale=True, stale_reason=reason[:200]))


# the grade behind a subject's current grade: one primary-key lookup and one unique-key lookup
CURRENT_JOIN = and_(Grade.uscc == CurrentGrade.uscc, Grade.as_of == CurrentGrade.as_of,
                     Grade.model_version == CurrentGrade.model_version)
# Built once: a Core statement with a bound parameter is compiled once per engine and reused,
# where building ``select(Grade).where(...)`` per read cost more than running it.
class _StoredJSON(TypeDecorator[Any]):
    """A JSON column of a grade as an answer reads it: parsed by pydantic-core, ≈ 3× faster than
    ``json.loads`` (the reasons are most of a grade read's conversions: 2,000 texts per batch).
    A driver that parses JSON itself (psycopg) hands over the value parsed: kept as it is."""

    impl = String
    cache_ok = True

    def process_result_value(self, value: Any, dialect: Any) -> Any:
        return from_json(value) if isinstance(value, str | bytes) else value


def _answer_column(name: str) -> Any:
    column = _G.c[name]
    return type_coerce(column, _StoredJSON()).label(name) if isinstance(column.type, JSON) else column


# with the generation of the labels the rows name (``serving.db.reason_labels``): cached labels of
# that generation are not queried
_LATEST_VALUES_FROM = (select(*(_answer_column(name) for name in GRADE_OUT_COLUMNS), labels_generation())
                       .select_from(_C.join(_G, and_(_G.c.uscc == _C.c.uscc, _G.c.as_of == _C.c.as_of,
                                                     _G.c.model_version == _C.c.model_version))))
_LATEST_VALUES = _LATEST_VALUES_FROM.where(_C.c.uscc == bindparam("uscc"))


def latest_grade(session: Session, uscc: str) -> Grade:
    """The subject's latest grade (latest as-of date, then latest stored); else `GradeUnavailable`."""
    grade = session.scalars(select(Grade).join(CurrentGrade, CURRENT_JOIN).where(CurrentGrade.uscc == uscc)).first()
    if grade is None:
        raise GradeUnavailable(f"subject {uscc} has not been graded yet", field="uscc")
    return grade


def latest_grade_values(source: Session | Connection, uscc: str) -> dict[str, Any]:
    """The columns of ``GradeOut`` of the subject's latest grade (the row ``latest_grade`` returns),
    without building an ORM object: the read path of the single-subject grade endpoint. Read in a
    session or on a connection."""
    connection = connection_of(source)
    statement = compiled_for(_LATEST_VALUES, connection.dialect)  # on the driver's cursor: see serving.db.driver
    rows = statement.rows(connection, {"uscc": uscc})
    if not rows:
        raise GradeUnavailable(f"subject {uscc} has not been graded yet", field="uscc")
    values = dict(zip(statement.columns, rows[0], strict=True))
    generation = values.pop("labels_generation")
    values["reasons"] = expand(connection, [values["reasons"]], generation)[0]  # the labels: cached, or one indexed read
    return values


def latest_grades(source: Session | Connection, usccs: Iterable[str]) -> dict[str, GradeOut]:
    """The latest grade of each of ``usccs`` that has one (the rows ``latest_grade`` returns), as
    ``GradeOut``: lookups by key, so the cost follows the codes, not the tables. The batch read's
    path: the columns of ``GradeOut`` on the driver's cursor (``latest_grade_values`` does the
    same for one subject), validated in one call, without an ORM object per grade."""
    connection = connection_of(source)
    wanted = list(dict.fromkeys(usccs))
    rows: list[dict[str, Any]] = []
    for start in range(0, len(wanted), _IN_CHUNK):  # stay under SQL parameter limits
        chunk = wanted[start:start + _IN_CHUNK]
        size = _bucket(len(chunk))
        statement = compiled_for(_latest_values_in(size), connection.dialect)
        # padded to the bucket's size by repeating a code: a code twice in IN (…) is one row
        values = {f"u{i}": chunk[min(i, len(chunk) - 1)] for i in range(size)}
        rows.extend(dict(zip(statement.columns, row, strict=True)) for row in statement.rows(connection, values))
    # the reasons' labels: cached, or one read for the batch (each label once); the rows of one
    # chunk's statement share a generation, so the first one's serves
    generations = {row.pop("labels_generation") for row in rows}
    generation = generations.pop() if len(generations) == 1 else None
    for row, reasons in zip(rows, expand(connection, [row["reasons"] for row in rows], generation), strict=True):
        row["reasons"] = reasons
    return {g.uscc: g for g in _GRADES_OUT.validate_python(rows)}


_IN_CHUNK = 512
_GRADES_OUT = TypeAdapter(list[GradeOut])


def _bucket(n: int) -> int:
    """The smallest power of two ≥ ``n``: a few statements (1, 2, 4 … 512 codes), each compiled once."""
    return 1 << max(0, n - 1).bit_length()


@lru_cache(maxsize=16)
def _latest_values_in(size: int) -> Any:
    return _LATEST_VALUES_FROM.where(_C.c.uscc.in_([bindparam(f"u{i}") for i in range(size)]))


def covered_subjects(session: Session, principal: Principal, *, grade: str | None = None,
                     offset: int = 0, limit: int = 50) -> tuple[int, list[tuple[Subject, Grade | None]]]:
    """Subjects ``principal`` covers, with their latest grade, ordered riskiest first, by offset
    (a deep offset reads the rows before it, and the total is counted: for a reader whose totals
    are tallied, ``subject_lists.offset_page`` skips by the tallies; ``subject_lists`` pages by key)."""
    stmt = (select(Subject, Grade).outerjoin(CurrentGrade, CurrentGrade.uscc == Subject.uscc)
            .outerjoin(Grade, CURRENT_JOIN).where(coverage_clause(principal)))
    if grade:
        stmt = stmt.where(CurrentGrade.grade == grade)
    total = session.scalar(select(func.count()).select_from(stmt.with_only_columns(Subject.uscc).subquery())) or 0
    stmt = stmt.order_by(CurrentGrade.grade.desc().nulls_last(), CurrentGrade.score.asc(), Subject.uscc)
    return total, [(s, g) for s, g in session.execute(stmt.offset(offset).limit(limit))]


def model_use(session: Session, section: str | None = None) -> list[tuple[str, int, dt.date]]:
    """(model_version, subjects graded, latest as_of), optionally for one section. An aggregate of
    every grade: computed once until grades, subjects or records change (``list_counts``)."""

    def aggregate() -> list[tuple[str, int, dt.date]]:
        stmt = select(Grade.model_version, func.count(func.distinct(Grade.uscc)), func.max(Grade.as_of))
        if section:
            stmt = stmt.join(Subject, Subject.uscc == Grade.uscc).where(Subject.industry == section)
        return [tuple(r) for r in session.execute(stmt.group_by(Grade.model_version).order_by(Grade.model_version))]

    return list(kept_while_unchanged(session, f"model_use:{section or ''}", aggregate))


def grade_shares(session: Session) -> list[tuple[dt.date, str, int]]:
    """Subjects per (as_of, grade): the aggregate an analyst may see. Each subject counts once per
    as-of date, with its grade of that day by the one rule (:func:`stored_last_of_day`: two model
    versions grading a subject on one day are one subject). Computed once until grades, subjects
    or records change (``list_counts``)."""

    def aggregate() -> list[tuple[dt.date, str, int]]:
        dates = session.scalars(select(Grade.as_of).distinct().order_by(Grade.as_of)).all()
        out: list[tuple[dt.date, str, int]] = []
        for as_of in dates:
            day = stored_last_of_day(session, as_of).subquery()
            out += [(as_of, g, int(n)) for g, n in session.execute(
                select(day.c.grade, func.count()).group_by(day.c.grade).order_by(day.c.grade))]
        return out

    return list(kept_while_unchanged(session, "grade_shares", aggregate))


def run_regrader(regrader: Regrader, session: Session, uscc: str, reason: str) -> None:
    """Regrade inside the caller's transaction; any failure of the pluggable regrader becomes
    ``ModelUnavailable``, so the decision that asked for it is not saved."""
    try:
        regrader(session, uscc, reason)
    except Exception as exc:  # the regrader is pluggable: translate whatever it raises
        raise ModelUnavailable(f"regrading {uscc} failed ({type(exc).__name__}: {exc}); "
                               "the decision was not saved, retry later") from exc
