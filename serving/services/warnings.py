"""预警 risk warnings: stored, de-duplicated and shown to the staff who cover the subject.

What raises a warning is the pure rule of ``supervision.warnings``; this module feeds it what an
ingest wrote (``warn_after_records``, called by ``subjects.store_records``) and what a grading
changed (``warn_after_grades``, called by ``grades.store_grades`` and the bulk grade load), in the
caller's transaction, and keeps one open warning per subject and cause (``open_key``): a new event
of an open cause adds its records to it. Staff see the warnings of the subjects they cover (the
one coverage rule, ``services.access``; their lists: ``services.warning_lists``), acknowledge and
close them, and download them as CSV.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace
from functools import cache
from typing import Any

import pandas as pd
from sqlalchemy import JSON, Connection, FromClause, and_, bindparam, insert, select, update
from sqlalchemy.orm import Session

from serving.db.driver import compiled_for, insert_many
from serving.db.session import connection_of
from serving.db.tables import CurrentGrade, Grade, RiskWarning, Subject
from serving.errors import AlreadyDecided, NotAllowed, NotFound, NotOwningDepartment
from serving.labels import china_today, department_name
from serving.security import Principal
from serving.services.access import coverage_clause, owning_department_decides
from serving.services.list_counts import forget_counts
from supervision.warnings import (
    CAUSE_LABELS_ZH,
    GradeChange,
    GradeChanges,
    RecordEvent,
    WarningCandidate,
    WarningRules,
    detect_grade_warnings,
    detect_record_warnings,
    grade_warning_rows,
    grade_warnings,
    load_warning_rules,
)

_W = RiskWarning.__table__
_UPDATE_WARNING = update(_W).where(_W.c.id == bindparam("wid", type_=_W.c.id.type)).values(
    record_ids=bindparam("ids", type_=_W.c.record_ids.type), message=bindparam("msg", type_=_W.c.message.type),
    evidence=bindparam("ev", type_=_W.c.evidence.type), updated_at=bindparam("at", type_=_W.c.updated_at.type))
STATUS_ZH = {"open": "待处理", "acknowledged": "已确认", "closed": "已关闭"}


class UnknownWarning(NotFound):
    code = "unknown_warning"
    uscc = ""  # the subject of a warning that exists but is not the caller's: logged, never shown


class NotYourWarning(NotAllowed):
    """A warning a record of another department raised: that department handles it."""

    uscc = ""


HANDLING_PURPOSE = "warning_handling 预警处置"  # acknowledging or closing answers the warning: a logged read


def refused_handling_purpose(exc: NotFound | NotAllowed, warning_id: int | str, action: str) -> str:
    """The purpose a refused acknowledge or close is logged with (as a refused read: ``denied``)."""
    return f"拒绝（{exc.code}）{'确认' if action == 'acknowledge' else '关闭'}预警 #{warning_id}"


def subject_of(session: Session, warning_id: int) -> str:
    """The subject of warning ``warning_id`` ("" if there is none): what a refused handling logs."""
    return session.scalar(select(RiskWarning.uscc).where(RiskWarning.id == warning_id)) or ""


@cache
def default_rules() -> WarningRules:
    """The packaged rules (immutable, so caching them shares no mutable state)."""
    return load_warning_rules(None)



def raise_warnings(source: Session | Connection, candidates: Iterable[WarningCandidate], today: dt.date) -> int:
    """Store ``candidates`` in the caller's transaction: a new open warning, or, when the subject
    already has an open one of that cause, its records and message brought up to date. Returns
    the number of new warnings. Set-based (one lookup per 500 keys, one insert and one update
    statement), so a grading that raises thousands costs a few statements."""
    connection = connection_of(source)
    now = dt.datetime.now(dt.UTC)
    wanted: dict[str, WarningCandidate] = {}
    for c in candidates:
        key = f"{c.uscc}:{c.cause}"
        held_c = wanted.get(key)
        wanted[key] = c if held_c is None else WarningCandidate(
            uscc=c.uscc, cause=c.cause, message_zh=c.message_zh, department=c.department,
            record_ids=tuple(dict.fromkeys([*held_c.record_ids, *c.record_ids])), evidence=c.evidence)
    held = _held(connection, wanted)
    new = [dict(uscc=c.uscc, cause=c.cause, department=c.department, status="open", message=c.message_zh,
                record_ids=list(c.record_ids), evidence=dict(c.evidence), raised_on=today, raised_at=now,
                updated_at=now, open_key=key) for key, c in wanted.items() if key not in held]
    # on the driver's cursor: a grading may raise tens of thousands (serving.db.driver)
    insert_many(connection, _W, new)
    _analyse_after(connection, len(new))
    changed = [dict(wid=held[key][0], ids=list(dict.fromkeys([*held[key][1], *c.record_ids])), msg=c.message_zh,
                    ev=dict(c.evidence), at=now) for key, c in wanted.items() if key in held]
    compiled_for(_UPDATE_WARNING, connection.dialect).execute_many(connection, changed)
    return len(new)


def _held(connection: Connection, keys: Iterable[str]) -> dict[str, tuple[int, list[str]]]:
    """open_key → (id, record ids) of the open warnings of ``keys`` (one lookup per 500 keys;
    on the driver's cursor, a grading looks up tens of thousands)."""
    keys = sorted(keys)
    held: dict[str, tuple[int, list[str]]] = {}
    postgres = connection.dialect.name == "postgresql"
    cursor = connection.connection.driver_connection.cursor()
    for start in range(0, len(keys), 500):
        chunk = keys[start:start + 500]
        wanted = "= ANY(%s)" if postgres else f"IN ({', '.join('?' for _ in chunk)})"
        cursor.execute(f"SELECT open_key, id, record_ids FROM {_W.name} WHERE open_key {wanted}",  # noqa: S608 # the model's names; keys bound
                       (chunk,) if postgres else chunk)
        for key, wid, ids in cursor.fetchall():
            held[key] = (wid, ids if isinstance(ids, list) else json.loads(ids or "[]"))
    return held


def _analyse_after(connection: Connection, new: int) -> None:
    if new >= 10_000 and connection.dialect.name == "postgresql":
        # thousands raised at once (a bulk grading): without fresh statistics the planner took the
        # table for empty and looked the next frame's keys up by a sequential scan per 500 keys
        # (0.5 s each at 40,000 warnings); ANALYZE samples it in milliseconds
        connection.exec_driver_sql(f"ANALYZE {_W.name}")


def warn_after_records(source: Session | Connection, events: Sequence[RecordEvent], today: dt.date | None = None,
                       rules: WarningRules | None = None) -> int:
    """The warnings the records an ingest wrote raise (``supervision.warnings``), stored."""
    if not events:
        return 0
    day = today or china_today()
    # the bundled city's names (serving.labels): storing records knows no data directory
    return raise_warnings(source, detect_record_warnings(events, rules or default_rules(), day, department_name), day)


# --- gradings ----------------------------------------------------------------------------

def current_values(source: Session | Connection, usccs: Iterable[str] | FromClause) -> dict[str, tuple[Any, ...]]:
    """uscc → (as_of, model_version, grade, probability) of its current grade (lookups by key);
    ``usccs`` may be a table with a ``uscc`` column (a bulk load's staged rows): one statement,
    driven by that table (PostgreSQL, not knowing the current grades' size, joined them to the
    grades first when asked for ``uscc IN (…)`` of it, by nested loops)."""
    connection = connection_of(source)
    c, g = CurrentGrade.__table__, Grade.__table__
    columns = (c.c.uscc, g.c.as_of, g.c.model_version, g.c.grade, g.c.probability)
    on_key = and_(g.c.uscc == c.c.uscc, g.c.as_of == c.c.as_of, g.c.model_version == c.c.model_version)
    if isinstance(usccs, FromClause):
        rows = connection.execute(select(*columns).select_from(usccs.join(c, c.c.uscc == usccs.c.uscc).join(g, on_key)))
        return {r[0]: tuple(r[1:]) for r in rows}
    wanted = sorted(set(usccs))
    out: dict[str, tuple[Any, ...]] = {}
    for start in range(0, len(wanted), 500):
        rows = connection.execute(select(*columns).select_from(c.join(g, on_key))
                                  .where(c.c.uscc.in_(wanted[start:start + 500])))
        out.update({r[0]: tuple(r[1:]) for r in rows})
    return out


def adverse_record_ids(reasons: Any) -> tuple[str, ...]:
    """The records behind a grade's adverse reasons (negative contributions), in reason order."""
    if isinstance(reasons, str):
        try:
            reasons = json.loads(reasons)
        except ValueError:
            return ()
    ids: list[str] = []
    for reason in reasons or []:
        if isinstance(reason, dict) and float(reason.get("contribution") or 0) < 0:
            ids.extend(str(r) for r in reason.get("record_ids") or [])
    return tuple(dict.fromkeys(ids))


def warn_after_grades(source: Session | Connection, before: dict[str, tuple[Any, ...]],
                      after: Iterable[tuple[str, dt.date, str, float, Any]], today: dt.date | None = None,
                      rules: WarningRules | None = None) -> int:
    """Warnings of a grading: ``before`` is ``current_values`` of the subjects before it, ``after``
    the (uscc, as_of, grade, probability, reasons) that are now their current grades."""
    changes, reasons_of = [], {}
    for uscc, as_of, grade, probability, reasons in after:
        old = before.get(uscc)
        if old is None:
            continue  # a first grade is not a rise
        reasons_of[uscc] = reasons
        changes.append(GradeChange(uscc=uscc, as_of=as_of, new_grade=grade, new_probability=float(probability),
                                   old_grade=old[2], old_probability=float(old[3])))
    # the records behind a warning: read from the reasons of the few subjects that raised one
    candidates = [replace(c, record_ids=adverse_record_ids(reasons_of[c.uscc]))
                  for c in detect_grade_warnings(changes, rules or default_rules())]
    if not candidates:
        return 0
    day = today or china_today()
    return raise_warnings(source, candidates, day)


def warn_after_bulk_grades(source: Session | Connection, changes: GradeChanges, today: dt.date | None = None,
                           rules: WarningRules | None = None) -> int:
    """Warnings of a bulk grading (``serving.services.bulk``): ``changes`` are the subjects whose
    current grade it changed, as columns (the rule: ``supervision.warnings.grade_warning_rows``,
    the one ``warn_after_grades`` applies too), stored as ``raise_warnings`` stores them, by
    columns: no Python object per warning but its message and evidence, each value converted by
    its column's type on the driver's cursor (a grading of a city raises tens of thousands)."""
    rules = rules or default_rules()
    rows = grade_warning_rows(changes, rules)
    if not rows.at:
        return 0
    day = today or china_today()
    keys = [f"{changes.uscc[i]}:{cause}" for i, cause in zip(rows.at, rows.cause, strict=True)]
    if len(set(keys)) < len(keys):  # a subject twice in one grading: merged as raise_warnings merges them
        return raise_warnings(source, grade_warnings(changes, rules), day)
    connection = connection_of(source)
    ids = changes.record_ids if callable(changes.record_ids) else (
        changes.record_ids.__getitem__ if len(changes.record_ids) else lambda _i: ())
    record_ids = [tuple(ids(i)) for i in rows.at]
    held = _held(connection, keys)
    now = dt.datetime.now(dt.UTC)
    new = [k for k, key in enumerate(keys) if key not in held]
    _run_many(connection, _INSERT_WARNING, {
        "uscc": [changes.uscc[rows.at[k]] for k in new], "cause": [rows.cause[k] for k in new],
        "message": [rows.message_zh[k] for k in new], "record_ids": [record_ids[k] for k in new],
        "evidence": [rows.evidence[k] for k in new], "open_key": [keys[k] for k in new]},
        {"department": None, "status": "open", "raised_on": day, "raised_at": now, "updated_at": now})
    _analyse_after(connection, len(new))
    kept = [k for k, key in enumerate(keys) if key in held]
    _run_many(connection, _UPDATE_WARNING, {
        "wid": [held[keys[k]][0] for k in kept],
        "ids": [tuple(dict.fromkeys([*held[keys[k]][1], *record_ids[k]])) for k in kept],
        "msg": [rows.message_zh[k] for k in kept], "ev": [rows.evidence[k] for k in kept]}, {"at": now})
    return len(new)


_INSERT_WARNING = insert(_W).values({name: bindparam(name, type_=_W.c[name].type) for name in (
    "uscc", "cause", "department", "status", "message", "record_ids", "evidence", "raised_on", "raised_at",
    "updated_at", "open_key")})


def _run_many(connection: Connection, statement: Any, columns: dict[str, list[Any]], constants: dict[str, Any]) -> None:
    """``statement`` (an INSERT or UPDATE of ``risk_warnings``) once per row of ``columns`` (lists
    of one length, by parameter name; a list of a JSON column given as a tuple) with
    ``constants``, as ``Connection.execute`` would bind them: each value converted by its
    parameter's type, a constant or a tuple once per distinct value. ``executemany`` on the
    driver's cursor; an INSERT by ``COPY`` on PostgreSQL."""
    names = (*columns, *constants)
    n = len(next(iter(columns.values())))
    if not n:
        return
    compiled = compiled_for(statement, connection.dialect)
    copying = connection.dialect.name == "postgresql" and statement.is_insert
    # COPY takes a JSON value as its text (the text psycopg's own adapter would send)
    as_text = connection.dialect._json_serializer or json.dumps  # the engine's JSON serializer

    def converted(name: str, values: list[Any]) -> list[Any]:
        f = as_text if copying and isinstance(_W.c[name].type, JSON) else compiled.binders.get(name)
        if f is None:
            return values
        done: dict[Any, Any] = {}  # (a tuple is a JSON list: the same ids, the same text)
        return [None if v is None else f(v) if isinstance(v, dict) else
                done[v] if v in done else done.setdefault(v, f(list(v) if isinstance(v, tuple) else v))
                for v in values]

    values = [converted(name, columns[name]) for name in columns]
    values += [converted(name, [value])[0:1] * n for name, value in constants.items()]
    cursor = connection.connection.driver_connection.cursor()
    if copying:
        with cursor.copy(f"COPY {_W.name} ({', '.join(names)}) FROM STDIN") as copy:
            for row in zip(*values, strict=True):
                copy.write_row(row)
        return
    if compiled.order is not None and not compiled.fixed:  # positional: the rows in the statement's order
        where = {name: k for k, name in enumerate(names)}
        params: Any = list(zip(*(values[where[name]] for name in compiled.order), strict=True))
    else:
        params = [compiled.params(dict(zip(names, row, strict=True))) for row in zip(*values, strict=True)]
    cursor.executemany(compiled.sql, params)


# --- staff ---------------------------------------------------------------------------------

def may_handle(principal: Principal, warning: Any) -> bool:
    """Who acknowledges or closes ``warning`` (a ``RiskWarning`` or its ``WarningOut``): the
    department whose record raised it, any covering regulator for a grading's (the one rule of
    ``access.owning_department_decides``, as for commitments' findings)."""
    return owning_department_decides(principal, warning.department)


def _covered_warning(session: Session, principal: Principal, warning_id: int) -> RiskWarning:
    """The warning, if ``principal`` covers its subject and may handle it: a warning a record
    raised is its department's to handle (the others covering the subject see it); one a grading
    raised, any department covering the subject (``may_handle``). An admin reads every warning and
    handles none (403 ``not_owning_department``). A refusal carries the warning's subject
    (``uscc``, empty when there is no such warning) for the caller to log."""
    warning = session.scalars(select(RiskWarning).join(Subject, Subject.uscc == RiskWarning.uscc)
                              .where(RiskWarning.id == warning_id, coverage_clause(principal))).first()
    if warning is None:  # one 404 for absent and not covered: no existence oracle
        missing = UnknownWarning(f"没有您所在部门可处理的预警 #{warning_id}；no warning #{warning_id} your department "
                                 "covers", field="warning_id")
        missing.uscc = subject_of(session, warning_id)
        raise missing
    if principal.role == "admin":  # reads every warning, handles none (the commitments' rule)
        owner = department_name(warning.department) if warning.department else "覆盖该企业的监管部门"
        refused_admin = NotOwningDepartment(
            f"warning #{warning_id} is {warning.department or 'the covering regulators'}'s to handle: an admin may "
            "read it, not acknowledge or close it", field="warning_id",
            zh=f"预警 #{warning_id} 由{owner}确认和关闭；管理员可以查看，不能代为处理。")
        refused_admin.uscc = warning.uscc
        raise refused_admin
    if not may_handle(principal, warning):
        refused = NotYourWarning(f"预警 #{warning_id} 由{department_name(warning.department)}的记录引起，应由该部门确认和"
                                 f"关闭；warning #{warning_id} is {warning.department}'s to handle", field="warning_id")
        refused.uscc = warning.uscc
        raise refused
    return warning


def acknowledge(session: Session, principal: Principal, warning_id: int) -> RiskWarning:
    """Mark an open warning seen (it stays open, and keeps collecting records, until closed)."""
    warning = _covered_warning(session, principal, warning_id)
    if warning.status != "open":
        raise AlreadyDecided(f"预警 #{warning_id} 已{STATUS_ZH[warning.status]}；warning already {warning.status}",
                             field="warning_id")
    warning.status, warning.acknowledged_by = "acknowledged", principal.username
    warning.acknowledged_at = warning.updated_at = dt.datetime.now(dt.UTC)
    forget_counts(session)  # the lists of one status count it no more, or now
    session.commit()
    return warning


def close(session: Session, principal: Principal, warning_id: int, note: str) -> RiskWarning:
    """Close a warning with a note; the next rise of the same cause raises a new one."""
    warning = _covered_warning(session, principal, warning_id)
    if warning.status == "closed":
        raise AlreadyDecided(f"预警 #{warning_id} 已关闭；warning already closed", field="warning_id")
    now = dt.datetime.now(dt.UTC)
    warning.status, warning.closed_by, warning.closed_at, warning.close_note = "closed", principal.username, now, note
    warning.open_key, warning.updated_at = None, now
    forget_counts(session)  # the lists of warnings not closed count it no more
    session.commit()
    return warning


CSV_COLUMNS = {"id": "预警编号", "uscc": "统一社会信用代码", "name": "主体名称", "cause": "预警原因",
               "message": "预警内容", "record_ids": "相关记录", "department": "来源部门", "status": "状态",
               "raised_on": "预警日期", "acknowledged_by": "确认人", "closed_by": "关闭人", "close_note": "处理说明"}


def warnings_frame(rows: Sequence[tuple[Any, str]]) -> pd.DataFrame:
    """The warnings as a table with Chinese headers (cells neutralised when written: ``csv_bytes``)."""
    return pd.DataFrame([_csv_row(w, name) for w, name in rows], columns=list(CSV_COLUMNS)).rename(columns=CSV_COLUMNS)


def _csv_row(w: Any, name: str) -> dict[str, Any]:
    return {"id": w.id, "uscc": w.uscc, "name": name, "cause": CAUSE_LABELS_ZH.get(w.cause, w.cause),
            "message": w.message, "record_ids": "、".join(w.record_ids or []),
            "department": department_name(w.department),
            "status": STATUS_ZH.get(w.status, w.status), "raised_on": w.raised_on.isoformat(),
            "acknowledged_by": w.acknowledged_by or "", "closed_by": w.closed_by or "",
            "close_note": w.close_note or ""}


def warnings_csv(rows: Sequence[tuple[Any, str]]) -> bytes:
    from supervision.export import csv_bytes

    return csv_bytes(warnings_frame(rows))


def warnings_csv_chunks(chunks: Iterable[Sequence[tuple[Any, str]]]) -> Iterator[bytes]:
    """:func:`warnings_csv` of the rows of ``chunks``, one piece per chunk (the header with the
    BOM first): the same bytes, never the whole list in memory."""
    from supervision.export import csv_pieces

    return csv_pieces(list(CSV_COLUMNS.values()), ([list(_csv_row(w, name).values()) for w, name in rows]
                                                   for rows in chunks))
