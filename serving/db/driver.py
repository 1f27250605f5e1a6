"""Statements compiled once per database driver and run on its DBAPI cursor.

For the hottest statements (the query log's appends, the single-subject grade read) SQLAlchemy's
``Connection.execute`` costs several times the database work itself: the statement's cache key,
the execution context and the result object are built on every call. Here a statement is
compiled once per dialect, with its columns' bind and result conversions, and runs on the
driver's cursor.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, Table, bindparam, insert
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import Select
from sqlalchemy.sql.expression import Executable
from sqlalchemy.types import TypeEngine


@dataclass(frozen=True)
class DriverStatement:
    """One statement compiled for a driver: its SQL, its parameters' order (None for a named
    parameter style), the values it binds itself (constants such as the head row's id), and for
    a SELECT each result column's name and type as the dialect implements it.

    A column's conversion from the driver's value depends on the type the driver reports for it
    (psycopg's numeric conversions need the column's type OID, which ``Connection.execute`` takes
    from ``cursor.description``), so it is looked up on the first run and kept per reported types.
    """

    sql: str
    order: tuple[str, ...] | None
    fixed: dict[str, Any]
    columns: tuple[str, ...] = ()
    types: tuple[TypeEngine[Any], ...] = ()
    dialect: Dialect | None = None
    # each bound parameter's conversion to what the driver takes (its type's bind processor)
    binders: dict[str, Callable[[Any], Any] | None] = field(default_factory=dict, compare=False, repr=False)
    _conversions: dict[tuple[Any, ...], tuple[Callable[[Any], Any] | None, ...]] = field(
        default_factory=dict, compare=False, repr=False)

    @classmethod
    def compile(cls, statement: Executable, dialect: Dialect) -> DriverStatement:
        c = statement.compile(dialect=dialect)
        fixed = {k: v for k, v in c.params.items() if v is not None}
        columns: tuple[str, ...] = ()
        types: tuple[TypeEngine[Any], ...] = ()
        if isinstance(statement, Select):
            selected = list(statement.selected_columns)
            columns = tuple(col.key for col in selected)
            types = tuple(col.type.dialect_impl(dialect) for col in selected)
        binders = {name: bind.type.dialect_impl(dialect).bind_processor(dialect) for name, bind in c.binds.items()}
        return cls(c.string, tuple(c.positiontup) if c.positiontup is not None else None, fixed, columns,
                   types, dialect, binders)

    def params(self, values: dict[str, Any]) -> Any:
        """``values`` (and the fixed ones) in the driver's parameter style."""
        values = {**self.fixed, **values} if self.fixed else values
        return tuple(values[name] for name in self.order) if self.order is not None else values

    def conversions(self, description: Any) -> tuple[Callable[[Any], Any] | None, ...]:
        """Each result column's conversion for the driver's ``cursor.description``."""
        codes = tuple(d[1] for d in description)
        found = self._conversions.get(codes)
        if found is None:  # the first run (two racing first runs compute the same tuple)
            found = self._conversions[codes] = tuple(
                t.result_processor(self.dialect, code) for t, code in zip(self.types, codes, strict=True))
        return found

    def rows(self, connection: Connection, values: dict[str, Any]) -> list[tuple[Any, ...]]:
        """Run this SELECT on ``connection``'s driver connection: every row, converted as
        ``Connection.execute`` would. All rows are fetched and the cursor closed, so the statement
        holds no snapshot afterwards. A driver error is raised as SQLAlchemy raises it (an SQLite
        "database is locked" is ``sqlalchemy.exc.OperationalError``), and a lost connection is
        invalidated, as ``Connection.execute`` would."""
        dialect = connection.dialect
        params = self.params(values)
        try:
            cursor = connection.connection.driver_connection.cursor()
            try:
                cursor.execute(self.sql, params)
                fetched = cursor.fetchall()
                convert = self.conversions(cursor.description)
            finally:
                cursor.close()
        except dialect.loaded_dbapi.Error as exc:
            lost = dialect.is_disconnect(exc, connection.connection.dbapi_connection, None)
            if lost:
                connection.invalidate(exc)
            raise DBAPIError.instance(self.sql, params, exc, dialect.loaded_dbapi.Error,
                                      connection_invalidated=lost, dialect=dialect) from exc
        if not any(convert):
            return [tuple(row) for row in fetched]
        return [tuple(v if f is None or v is None else f(v) for f, v in zip(convert, row, strict=True))
                for row in fetched]


    def converted(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """``rows`` with each value converted by its parameter's type as ``Connection.execute``
        would (dates, UTC timestamps, JSON); a scalar once per distinct value."""
        binders = [(name, f, {}) for name, f in self.binders.items() if f is not None]
        out = []
        for row in rows:
            row = dict(row)
            for name, f, done in binders:
                if name in row:
                    value = row[name]
                    if isinstance(value, list | dict):  # JSON: each its own
                        row[name] = f(value)
                    else:  # a scalar (a date, a timestamp): converted once per distinct value
                        row[name] = done[value] if value in done else done.setdefault(value, f(value))
            out.append(row)
        return out

    def execute_many(self, connection: Connection, rows: list[dict[str, Any]]) -> None:
        """Run this INSERT or UPDATE once per row of ``rows`` (``executemany`` on ``connection``'s
        driver cursor, in its transaction), each value ``converted``, without SQLAlchemy's per-row
        work (the bulk paths: tens of thousands of rows). Errors as in ``rows``."""
        if not rows:
            return
        params = [self.params(row) for row in self.converted(rows)]
        with _driver_errors(connection, self.sql, params):
            cursor = connection.connection.driver_connection.cursor()
            try:
                cursor.executemany(self.sql, params)
            finally:
                cursor.close()


def insert_many(connection: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """Insert ``rows`` (dicts with the same columns) into ``table`` in the caller's transaction,
    stored as ``Connection.execute(insert(table), rows)`` stores them, without its per-row work:
    ``COPY`` on PostgreSQL (one statement), ``executemany`` on SQLite's cursor."""
    if not rows:
        return
    names = tuple(rows[0])
    statement = compiled_for(_insert_of(table, names), connection.dialect)
    if connection.dialect.name != "postgresql":
        statement.execute_many(connection, rows)
        return
    sql = f"COPY {table.name} ({', '.join(names)}) FROM STDIN"
    with _driver_errors(connection, sql, rows[:3]):
        cursor = connection.connection.driver_connection.cursor()
        with cursor.copy(sql) as copy:
            for row in statement.converted(rows):
                copy.write_row(tuple(row[name] for name in names))


@lru_cache(maxsize=64)
def _insert_of(table: Table, names: tuple[str, ...]) -> Executable:
    return insert(table).inline().values({name: bindparam(name, type_=table.c[name].type) for name in names})


@contextmanager
def _driver_errors(connection: Connection, sql: str, params: Any) -> Iterator[None]:
    """A driver error raised as SQLAlchemy raises it (a lost connection invalidated)."""
    dialect = connection.dialect
    try:
        yield
    except dialect.loaded_dbapi.Error as exc:
        lost = dialect.is_disconnect(exc, connection.connection.dbapi_connection, None)
        if lost:
            connection.invalidate(exc)
        raise DBAPIError.instance(sql, params[:3] if isinstance(params, list) else params, exc,
                                  dialect.loaded_dbapi.Error, connection_invalidated=lost, dialect=dialect) from exc


@lru_cache(maxsize=2048)
def compiled_for(statement: Executable, dialect: Dialect) -> DriverStatement:
    """``statement`` compiled for ``dialect``, once (keyed by the statement object: callers keep
    their statements, built once, as module constants or in their own caches)."""
    return DriverStatement.compile(statement, dialect)
