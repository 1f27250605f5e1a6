"""Grades: stored by the pipeline (``store_grades``), read by routes and pages."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from sqlalchemy import Connection, bindparam, func, select, update
from sqlalchemy.orm import Session, aliased

from serving.db.driver import compiled_for
from serving.db.models import Grade, Subject
from serving.db.session import connection_of
from serving.errors import GradeUnavailable, ModelUnavailable
from serving.schemas import GRADE_OUT_COLUMNS, GradeIn
from serving.security import Principal
from serving.services.access import coverage_clause

# Called after a record behind a grade changed: (session, uscc, reason). It must not commit;
# the workflow that calls it commits once, so a decision and its regrade land together.
Regrader = Callable[[Session, str, str], None]


def store_grades(session: Session, rows: Iterable[Mapping[str, Any] | GradeIn]) -> int:
    """Insert or replace grades keyed by (uscc, as_of, model_version); one transaction."""
    count = 0
    for row in rows:
        g = row if isinstance(row, GradeIn) else GradeIn.model_validate(dict(row))
        existing = session.scalars(select(Grade).where(
            Grade.uscc == g.uscc, Grade.as_of == g.as_of, Grade.model_version == g.model_version)).first()
        values = g.model_dump(mode="json")
        values["as_of"] = g.as_of
        if existing is None:
            session.add(Grade(**values, stale=False, created_at=dt.datetime.now(dt.UTC)))
        else:
            for key, value in values.items():
                setattr(existing, key, value)
            existing.stale, existing.stale_reason = False, None
            existing.created_at = dt.datetime.now(dt.UTC)
        count += 1
    session.commit()
    return count


def mark_grades_stale(session: Session, uscc: str, reason: str) -> None:
    """Default ``Regrader``: flag the subject's grades stale until the pipeline regrades it."""
    session.execute(update(Grade).where(Grade.uscc == uscc).values(stale=True, stale_reason=reason[:200]))


def _latest_ids():
    ranked = select(Grade.id, func.row_number().over(
        partition_by=Grade.uscc, order_by=(Grade.as_of.desc(), Grade.created_at.desc(), Grade.id.desc()),
    ).label("rank")).subquery()
    return select(ranked.c.id).where(ranked.c.rank == 1)


_LATEST_ORDER = (Grade.as_of.desc(), Grade.created_at.desc(), Grade.id.desc())
_GRADES = Grade.__table__
# Built once: a Core statement with a bound parameter is compiled once per engine and reused,
# where building ``select(Grade).where(...)`` per read cost more than running it.
_LATEST_VALUES = (select(*(_GRADES.c[name] for name in GRADE_OUT_COLUMNS))
                  .where(_GRADES.c.uscc == bindparam("uscc"))
                  .order_by(*_LATEST_ORDER)
                  .limit(1))


def latest_grade(session: Session, uscc: str) -> Grade:
    """The subject's latest grade (latest as-of date, then latest stored); else `GradeUnavailable`."""
    grade = session.scalars(select(Grade).where(Grade.uscc == uscc).order_by(*_LATEST_ORDER)).first()
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
    return dict(zip(statement.columns, rows[0], strict=True))


def latest_grades(session: Session, usccs: Iterable[str]) -> dict[str, Grade]:
    wanted = list(dict.fromkeys(usccs))
    out: dict[str, Grade] = {}
    for start in range(0, len(wanted), 500):  # stay under SQL parameter limits
        chunk = wanted[start:start + 500]
        stmt = select(Grade).where(Grade.uscc.in_(chunk), Grade.id.in_(_latest_ids()))
        out.update({g.uscc: g for g in session.scalars(stmt)})
    return out


def covered_subjects(session: Session, principal: Principal, *, grade: str | None = None,
                     offset: int = 0, limit: int = 50) -> tuple[int, list[tuple[Subject, Grade | None]]]:
    """Subjects ``principal`` covers, with their latest grade, ordered riskiest first."""
    latest = aliased(Grade, select(Grade).where(Grade.id.in_(_latest_ids())).subquery())
    stmt = select(Subject, latest).outerjoin(latest, latest.uscc == Subject.uscc).where(coverage_clause(principal))
    if grade:
        stmt = stmt.where(latest.grade == grade)
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    stmt = stmt.order_by(latest.grade.desc().nulls_last(), latest.score.asc(), Subject.uscc)
    return total, [(s, g) for s, g in session.execute(stmt.offset(offset).limit(limit))]


def model_use(session: Session, section: str | None = None) -> list[tuple[str, int, dt.date]]:
    """(model_version, subjects graded, latest as_of), optionally for one section."""
    stmt = select(Grade.model_version, func.count(func.distinct(Grade.uscc)), func.max(Grade.as_of))
    if section:
        stmt = stmt.join(Subject, Subject.uscc == Grade.uscc).where(Subject.industry == section)
    return [tuple(r) for r in session.execute(stmt.group_by(Grade.model_version).order_by(Grade.model_version))]


def grade_shares(session: Session) -> list[tuple[dt.date, str, int]]:
    """Subjects per (as_of, grade): the aggregate an analyst may see."""
    stmt = select(Grade.as_of, Grade.grade, func.count()).group_by(Grade.as_of, Grade.grade).order_by(
        Grade.as_of, Grade.grade)
    return [tuple(r) for r in session.execute(stmt)]


def run_regrader(regrader: Regrader, session: Session, uscc: str, reason: str) -> None:
    """Regrade inside the caller's transaction; any failure of the pluggable regrader becomes
    ``ModelUnavailable``, so the decision that asked for it is not saved."""
    try:
        regrader(session, uscc, reason)
    except Exception as exc:  # the regrader is pluggable: translate whatever it raises
        raise ModelUnavailable(f"regrading {uscc} failed ({type(exc).__name__}: {exc}); "
                               "the decision was not saved, retry later") from exc
