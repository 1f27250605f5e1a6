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
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy import Connection, Engine, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from serving.db.session import connection_of
from serving.db.tables import ListCount, ListCountsHead

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


__all__ = ["cached_count", "forget_counts"]
