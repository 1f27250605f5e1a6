"""Text compared in byte order whatever the database's collation: the prefix searches' ranges.

A prefix search is the range ``prefix <= column < prefix + END`` read on an index. The end marks
(``~`` after every USCC character, U+10FFFF after every name character) hold in byte order, which
SQLite always uses; a PostgreSQL database with an ICU or libc collation sorts ``~`` before digits
and so empties the range. On PostgreSQL the comparison is made ``COLLATE "C"`` (byte order for
UTF-8), served by indexes of that collation (``ix_subjects_*_c``, migration 0018).
"""

from __future__ import annotations

from typing import Any, ClassVar

from sqlalchemy import ColumnElement
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.visitors import InternalTraversal


class ByteOrder(ColumnElement[Any]):
    """``column`` compared in byte order: ``COLLATE "C"`` on PostgreSQL, as it is elsewhere."""

    inherit_cache = True
    _traverse_internals: ClassVar = [("column", InternalTraversal.dp_clauseelement)]

    def __init__(self, column: Any) -> None:
        self.column = column
        self.type = column.type


@compiles(ByteOrder)
def _compile_plain(element: ByteOrder, compiler: Any, **kw: Any) -> str:
    return compiler.process(element.column, **kw)


@compiles(ByteOrder, "postgresql")
def _compile_c(element: ByteOrder, compiler: Any, **kw: Any) -> str:
    return f'{compiler.process(element.column, **kw)} COLLATE "C"'


def prefix_range(column: Any, prefix: str, end: str) -> list[ColumnElement[bool]]:
    """The rows whose ``column`` starts with ``prefix`` (``end``: a character after every one the
    column holds), compared in byte order."""
    return [ByteOrder(column) >= prefix, ByteOrder(column) < prefix + end]


__all__ = ["ByteOrder", "prefix_range"]
