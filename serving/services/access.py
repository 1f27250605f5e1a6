"""Who may read which subject's credit data — the one coverage rule of the service.

- ``enterprise``: only its own USCC.
- ``regulator``: market supervision (department ``samr``, the city's 市场监管局) covers every
  subject of the city; any other department covers the subjects it has issued at least one
  record about (any version).
- ``sector``: the subjects whose industry is its GB/T 4754 section.
- ``admin``: every subject (each read logged).
- ``analyst``: no subject-level credit data (aggregates only: minimum necessary data).
"""

from __future__ import annotations

from dataclasses import replace
from functools import lru_cache

from sqlalchemy import ColumnElement, Connection, Select, bindparam, exists, false, select, true
from sqlalchemy.orm import Session

from serving.db.driver import compiled_for
from serving.db.session import connection_of
from serving.db.tables import Record, Subject
from serving.security import Principal

CITY_WIDE_DEPARTMENTS = frozenset({"samr"})
SUBJECT_READER_ROLES = ("enterprise", "regulator", "sector", "admin")


def coverage_clause(principal: Principal) -> ColumnElement[bool]:
    """SQL condition on ``Subject`` true exactly for the subjects ``principal`` may read."""
    if principal.role == "admin":
        return true()
    if principal.role == "enterprise" and principal.uscc:
        return Subject.uscc == principal.uscc
    if principal.role == "sector" and principal.section:
        return Subject.industry == principal.section
    if principal.role == "regulator" and principal.department:
        if principal.department in CITY_WIDE_DEPARTMENTS:
            return true()
        return exists().where(Record.uscc == Subject.uscc, Record.department == principal.department)
    return false()


def owning_department_decides(principal: Principal, department: str | None) -> bool:
    """The one rule of who decides on a department's matter (finds a commitment kept or broken,
    acknowledges or closes a warning): a regulator of the department that owns it, which accepted
    it or raised it and holds its basis (separation of duties). A matter no one department owns
    (``department`` None: a warning a grading raised) is decided by any regulator who covers its
    subject (coverage is the caller's check). An admin reads every department's matters and
    decides none: refused with ``errors.NotOwningDepartment``."""
    return principal.role == "regulator" and (department is None or principal.department == department)


def can_read(source: Session | Connection, principal: Principal, uscc: str) -> bool:
    """True when ``uscc`` exists and ``principal`` covers it (read in a session or on a connection)."""
    if principal.role == "enterprise":
        # its own code only; then one statement for every enterprise (a statement per enterprise
        # would be compiled for each of them: their scopes are as many as the subjects)
        if not principal.uscc or uscc != principal.uscc:
            return False
        principal = _ANY_SUBJECT
    # compiled once per scope and driver, and run on the driver's cursor (see serving.db.driver)
    statement = _can_read_statement(replace(principal.without_credential(), username=""))
    connection = connection_of(source)
    return bool(compiled_for(statement, connection.dialect).rows(connection, {"subject": uscc})[0][0])


_ANY_SUBJECT = Principal(username="", role="admin")  # whether the subject exists at all


@lru_cache(maxsize=1024)
def _can_read_statement(scope: Principal) -> Select[tuple[bool]]:
    # One statement per scope, with the subject as a bound parameter: built and compiled once,
    # not on every read (building it cost more than running it). Keyed by the whole principal
    # less who it is (username, token), so callers with the same scope share it and a field
    # `coverage_clause` may read in future can never be left out of the key.
    return select(exists().where(Subject.uscc == bindparam("subject"), coverage_clause(scope)))


def readable_subset(session: Session, principal: Principal, usccs: list[str]) -> set[str]:
    """The members of ``usccs`` that exist and ``principal`` covers (one query per 500 codes)."""
    out: set[str] = set()
    for start in range(0, len(usccs), 500):
        chunk = usccs[start:start + 500]
        out.update(session.scalars(select(Subject.uscc).where(Subject.uscc.in_(chunk), coverage_clause(principal))))
    return out
