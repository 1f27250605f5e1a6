"""Statements compiled once per database driver and run on its DBAPI cursor.

For the hottest statements (the query log's appends, the single-subject grade read) SQLAlchemy's
``Connection.execute`` costs several times the database work itself: the statement's cache key,
the execution context and the result object are built on every call. Here a statement is
compiled once per dialect, with its columns' bind and result conversions, and runs on the
driver's cursor.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.engine import Dialect
from sqlalchemy.sql import Select
from sqlalchemy.sql.expression import Executable


@dataclass(frozen=True)
class DriverStatement:
    """One statement compiled for a driver: its SQL, its parameters' order (None for a named
    parameter style), the values it binds itself (constants such as the head row's id), and for
    a SELECT each result column's name and conversion from the driver's value (None: as it is)."""

    sql: str
    order: tuple[str, ...] | None
    fixed: dict[str, Any]
    columns: tuple[str, ...] = ()
    from_driver: tuple[Callable[[Any], Any] | None, ...] = ()

    @classmethod
    def compile(cls, statement: Executable, dialect: Dialect) -> DriverStatement:
        c = statement.compile(dialect=dialect)
        fixed = {k: v for k, v in c.params.items() if v is not None}
        columns: tuple[str, ...] = ()
        processors: tuple[Callable[[Any], Any] | None, ...] = ()
        if isinstance(statement, Select):
            selected = list(statement.selected_columns)
            columns = tuple(col.key for col in selected)
            processors = tuple(col.type.dialect_impl(dialect).result_processor(dialect, None) for col in selected)
        return cls(c.string, tuple(c.positiontup) if c.positiontup is not None else None, fixed, columns, processors)

    def params(self, values: dict[str, Any]) -> Any:
        """``values`` (and the fixed ones) in the driver's parameter style."""
        values = {**self.fixed, **values} if self.fixed else values
        return tuple(values[name] for name in self.order) if self.order is not None else values

    def rows(self, connection: Connection, values: dict[str, Any]) -> list[tuple[Any, ...]]:
        """Run this SELECT on ``connection``'s driver connection: every row, converted as
        ``Connection.execute`` would. All rows are fetched and the cursor closed, so the statement
        holds no snapshot afterwards."""
        cursor = connection.connection.driver_connection.cursor()
        try:
            cursor.execute(self.sql, self.params(values))
            fetched = cursor.fetchall()
        finally:
            cursor.close()
        convert = self.from_driver
        if not any(convert):
            return [tuple(row) for row in fetched]
        return [tuple(v if f is None or v is None else f(v) for f, v in zip(convert, row, strict=True))
                for row in fetched]


@lru_cache(maxsize=2048)
def compiled_for(statement: Executable, dialect: Dialect) -> DriverStatement:
    """``statement`` compiled for ``dialect``, once (keyed by the statement object: callers keep
    their statements, built once, as module constants or in their own caches)."""
    return DriverStatement.compile(statement, dialect)
