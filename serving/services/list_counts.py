"""The totals of the lists ("共 N"), counted once per filter and kept until the population changes.

A list's first page needs its total; counting the covered population is the one part of a page
whose cost grows with it. The total is kept in ``list_counts`` under the list's key (who reads:
the coverage; which filters), stamped with the generation of ``list_counts_head``. Whatever
changes what a list counts (grades stored or pruned, subjects stored or changed, records stored:
a department regulator covers the subjects its records name) calls :func:`forget_counts` in its
own transaction, which advances the generation and empties the table; a total stamped with an
older generation is never used. A reader that counted while a load committed stamps its total
with the generation it read first, so it is counted again next time rather than trusted.

Without the head row (a database emptied by a test) nothing is kept: every first page counts.

The totals of readers who cover every subject, or a whole section, need no counting at all: they
are sums of ``subject_tallies`` (per district, section and grade), kept as subjects are written
(triggers, migration 0016) and as current grades are written (:func:`tally_current`, called by
every writer of ``current_grades`` around its change), so even the first page after a load reads
a few hundred rows, never the population.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Connection, Engine, Select, case, delete, func, literal_column, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from serving.db.session import connection_of
from serving.db.tables import CurrentGrade, ListCount, ListCountsHead, SubjectTally

_log = logging.getLogger(__name__)


def cached_count(session: Session, key: str, count: Callable[[], int]) -> int:
    """The total of the list ``key``: kept if counted since the last change, else ``count()``,
    then kept (in a short transaction of its own: the caller's read stays a read)."""
    generation = session.scalar(select(ListCountsHead.generation).where(ListCountsHead.id == 1))
    if generation is not None:
        kept = session.execute(select(ListCount.total).where(ListCount.key == key,
                                                             ListCount.generation == generation)).first()
        if kept is not None:
            return int(kept[0])
    total = count()
    bind = session.get_bind()
    if generation is not None and isinstance(bind, Engine):
        _keep(bind, key, generation, total)
    return total


def generation(session: Session) -> int:
    """The generation of the kept totals: advances whenever subjects, records or current grades
    change (:func:`forget_counts`); 0 without the head row."""
    return int(session.scalar(select(ListCountsHead.generation).where(ListCountsHead.id == 1)) or 0)


_KEPT: dict[tuple[str, str], tuple[int, Any]] = {}  # (database, key) → (generation, value)


def kept_while_unchanged(session: Session, key: str, compute: Callable[[], Any]) -> Any:
    """``compute()``, kept in this process until the generation of the kept totals advances
    (subjects, records or grades changed: :func:`forget_counts`): for reads that aggregate a whole
    table (the analysts' grade shares over every grade) and lists of choices. A value computed
    while a change committed is stamped with the generation read first, so it is computed again."""
    generation = session.scalar(select(ListCountsHead.generation).where(ListCountsHead.id == 1))
    where = (str(session.get_bind().url), key)
    kept = _KEPT.get(where)
    if generation is not None and kept is not None and kept[0] == generation:
        return kept[1]
    value = compute()
    if generation is not None:
        _KEPT[where] = (generation, value)
    return value


def _keep(engine: Engine, key: str, generation: int, total: int) -> None:
    dialect = postgresql if engine.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(ListCount).values(key=key, generation=generation, total=total)
    stmt = stmt.on_conflict_do_update(index_elements=["key"],
                                      set_={"generation": generation, "total": total})
    try:
        with engine.begin() as connection:
            connection.execute(stmt)
    except SQLAlchemyError as exc:  # a cache: a busy database only means counting again next time
        _log.info("list total not kept (%s): %s", key, exc)


def forget_counts(source: Session | Connection) -> None:
    """Every kept total is out of date: call in the transaction that changes subjects, records or
    current grades."""
    connection = connection_of(source)
    connection.execute(update(ListCountsHead).where(ListCountsHead.id == 1)
                       .values(generation=ListCountsHead.generation + 1))
    connection.execute(delete(ListCount))


def tally_current(source: Session | Connection, usccs: Select[Any] | Sequence[str], sign: int) -> None:
    """Add (``sign`` +1) or take away (-1) the current grades of ``usccs`` (codes, or a select of
    codes) in the tallies: a writer of current grades takes its subjects' away before its change
    and adds them after, in its transaction, so the tallies follow whatever it changed. One
    statement: a look-up per subject and a group-by of the few keys."""
    c = CurrentGrade.__table__
    none = literal_column("''")  # SQL text, not a parameter: PostgreSQL matches the GROUP BY to the columns
    district, industry = func.coalesce(c.c.district_code, none), func.coalesce(c.c.industry, none)
    counted = (select(district, industry, c.c.grade, func.count() * literal_column(str(int(sign))))
               .where(c.c.uscc.in_(usccs)).group_by(district, industry, c.c.grade))
    connection = connection_of(source)
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    t = SubjectTally.__table__
    stmt = dialect.insert(t).from_select(["district_code", "industry", "grade", "subjects"], counted)
    connection.execute(stmt.on_conflict_do_update(index_elements=["district_code", "industry", "grade"],
                                                  set_={"subjects": t.c.subjects + stmt.excluded.subjects}))


def tallied_total(session: Session, *, grade: str | None = None, district: str | None = None,
                  industry: str | None = None) -> int:
    """How many subjects (of ``grade``: with that current grade; ``""``: without a current grade;
    None: all) there are, in ``district`` and ``industry`` if given: a sum of tally rows."""
    t = SubjectTally.__table__
    where = [t.c.district_code == district] if district is not None else []
    where += [t.c.industry == industry] if industry is not None else []
    if grade == "":  # every subject less the graded ones
        every, graded = session.execute(select(func.sum(case((t.c.grade == "*", t.c.subjects), else_=0)),
                                               func.sum(case((t.c.grade != "*", t.c.subjects), else_=0)))
                                        .where(*where)).one()
        return int(every or 0) - int(graded or 0)
    return int(session.scalar(select(func.sum(t.c.subjects)).where(*where, t.c.grade == (grade or "*"))) or 0)


__all__ = ["cached_count", "forget_counts", "generation", "kept_while_unchanged", "tallied_total", "tally_current"]
