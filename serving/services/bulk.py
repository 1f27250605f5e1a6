"""Bulk loads of subjects and grades into the service database (issue 22).

Rows come as a stream of pandas frames (a Parquet file read batch by batch). Each frame is
validated against the same models as the row-by-row path: grades column by column by the fields
of ``GradeIn`` (``frame_validation``: each column's distinct values in one pydantic-core call,
each distinct reasons text parsed, validated and dumped once, and stored compactly from that dump
as ``store_grades`` stores them: ``serving.db.reason_labels``); subjects by ``SubjectIn`` over the
frame in one call. A rejected row is returned with its input row number (from 1) and its reason
("field: rule"), never stored. Accepted grades' keys go into a temporary table, the rows straight
into ``grades`` (``executemany`` on SQLite, ``COPY`` on PostgreSQL, psycopg 3), and the rest is
set-based: a grade stored again is replaced, the subjects' current grades advanced by the one
rule of "latest" (``grades.advance_current``), and the early warnings of the grading raised by
the one rule of ``supervision.warnings.grade_warnings``, over columns (a Python object only per
warning raised).

Each frame is one transaction that also records how many input rows the load has consumed
(``bulk_loads``). A load interrupted after k frames resumes, under the same ``load_id`` and the
same input, at the first row not yet committed: no row is written twice, none is lost. A
finished load run again writes nothing.
"""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import TypeAdapter, ValidationError, create_model
from pydantic_core import to_json
from sqlalchemy import Connection, Engine, and_, column, delete, exists, select, table

from serving.db.reason_labels import compact_texts, reasons_template, template_reasons
from serving.db.tables import BulkLoad, CurrentGrade, Grade, Subject
from serving.gc_pause import collect_young, collections_paused
from serving.schemas import GradeIn, SubjectIn
from serving.services.frame_validation import ColumnValidator
from serving.services.grades import advance_current, refresh_subject_columns
from serving.services.warnings import adverse_record_ids, warn_after_bulk_grades
from serving.validation import uscc_problem
from supervision.warnings import GradeChanges
from uscc import valid_uscc_mask

_GRADE_COLUMNS = ("uscc", "as_of", "score", "grade", "probability", "model_version", "profile_hash", "base_score",
                  "reasons", "what_if", "stale", "stale_reason", "created_at")
_SUBJECT_COLUMNS = (*SubjectIn.model_fields, "updated_at")
_JSON_FIELDS = ("reasons", "what_if")
_SQLITE_CACHE_KIB = 256 * 1024
# SQLite: the WAL is checkpointed (PASSIVE) after a frame's commit once it holds this much, and cut
# back to this size when it restarts (journal_size_limit): a load of 2 M subjects × 2 as-of dates
# checkpointed only at its end grew it to 17 GB, and readers' lookups slow as its index grows
_WAL_CHECKPOINT_BYTES = 64 * 1024 * 1024


@dataclass
class LoadReport:
    """What a load did: every input row is stored, rejected (with its reason) or was committed by
    an earlier run of the same load (``resumed_from``)."""

    load_id: str
    kind: str
    read: int = 0
    stored: int = 0
    rejected: int = 0
    resumed_from: int = 0  # input rows committed before this run
    seconds: float = 0.0
    reasons: Counter[str] = field(default_factory=Counter)
    phases: Counter[str] = field(default_factory=Counter)  # seconds spent per phase of the load (profiling)

    @property
    def rows_per_s(self) -> float:
        return self.stored / self.seconds if self.seconds else 0.0

    def as_json(self) -> dict[str, Any]:
        return {"load_id": self.load_id, "kind": self.kind, "read": self.read, "stored": self.stored,
                "rejected": self.rejected, "resumed_from": self.resumed_from, "seconds": round(self.seconds, 3),
                "rows_per_s": round(self.rows_per_s), "reasons": dict(self.reasons),
                "phases": {k: round(v, 3) for k, v in self.phases.items()}}

    def lap(self, phase: str) -> None:
        """Add the time since the previous lap to ``phase``."""
        now = time.perf_counter()
        self.phases[phase] += now - self._last_lap
        self._last_lap = now

    _last_lap: float = field(default_factory=time.perf_counter, init=False, repr=False, compare=False)


Progress = Callable[[LoadReport], None]
# the rejected rows of a frame, with their input row number (`row`, from 1) and `reason` ("field: rule")
Quarantine = Callable[[pd.DataFrame], None]


def load_grades(engine: Engine, frames: Iterable[pd.DataFrame], *, load_id: str,
                quarantine: Quarantine | None = None, progress: Progress | None = None) -> LoadReport:
    """Load grade rows (the columns of ``GradeIn``; ``reasons``/``what_if`` as lists or JSON text)."""
    return _load(engine, "grades", frames, load_id, _grade_batch, quarantine, progress)


def load_subjects(engine: Engine, frames: Iterable[pd.DataFrame], *, load_id: str,
                  quarantine: Quarantine | None = None, progress: Progress | None = None) -> LoadReport:
    """Load subject rows (the columns of ``SubjectIn``); an existing subject is updated."""
    return _load(engine, "subjects", frames, load_id, _subject_batch, quarantine, progress)


def _load(engine: Engine, kind: str, frames: Iterable[pd.DataFrame], load_id: str,
          write: Callable[[Connection, pd.DataFrame, LoadReport], pd.DataFrame], quarantine: Quarantine | None,
          progress: Progress | None) -> LoadReport:
    report = LoadReport(load_id=load_id, kind=kind)
    with engine.begin() as conn:
        state = conn.execute(select(BulkLoad.rows_done, BulkLoad.kind).where(BulkLoad.load_id == load_id)).first()
        if state is None:
            conn.execute(BulkLoad.__table__.insert().values(load_id=load_id, kind=kind, rows_done=0, finished=False,
                                                            updated_at=dt.datetime.now(dt.UTC)))
        elif state.kind != kind:
            raise ValueError(f"load {load_id!r} is a load of {state.kind}, not of {kind}")
    report.resumed_from = state.rows_done if state else 0
    started = time.perf_counter()
    report.lap("start")
    # one connection: its settings, its staging tables; no cyclic collection during the load (see
    # serving.gc_pause), the young generations collected after each frame instead
    with engine.connect() as conn, _tuned_for_load(conn), collections_paused(), _ahead(conn) as ahead:
        for frame, (ok, rejected) in _validated_ahead(kind, _skip(frames, report.resumed_from),
                                                      report.resumed_from + 1, ahead, report):
            report.read += len(frame)
            with conn.begin():  # the frame and the progress that says it is done: together
                refused = write(conn, ok, report) if len(ok) else ok.iloc[0:0]
                conn.execute(BulkLoad.__table__.update().where(BulkLoad.load_id == load_id).values(
                    rows_done=report.resumed_from + report.read, updated_at=dt.datetime.now(dt.UTC)))
                report.lap("write")
            report.lap("commit")
            collect_young()
            report.lap("collect")
            _bound_wal(conn)
            report.lap("checkpoint")
            # told once the frame is committed: a failed frame leaves no trace, and is read again on resume
            if len(refused):
                rejected = pd.concat([rejected, refused], ignore_index=True).sort_values("row", kind="stable")
            if len(rejected):
                report.rejected += len(rejected)
                report.reasons.update(rejected["reason"].str.split(":").str[0])
                if quarantine is not None:
                    quarantine(rejected.reset_index(drop=True))
            report.stored += len(ok) - len(refused)
            report.seconds = time.perf_counter() - started
            if progress is not None:
                progress(report)
            report.lap("report")
    report.lap("checkpoint")
    with engine.begin() as conn:
        conn.execute(BulkLoad.__table__.update().where(BulkLoad.load_id == load_id).values(
            finished=True, updated_at=dt.datetime.now(dt.UTC)))
    report.seconds = time.perf_counter() - started
    return report


@contextmanager
def _ahead(conn: Connection) -> Iterator[ThreadPoolExecutor | None]:
    """PostgreSQL: one thread validating the next frame while this one is written (the client
    waits for the server's statements without the GIL). SQLite: none. Its ``executemany`` takes
    the GIL back after every row's step, and with another thread running Python each of those
    waits for the other to let go: measured, the inserts and the current grades' upsert took as
    long again as the validation they hid (0.91× main in one run)."""
    if conn.dialect.name != "postgresql":
        yield None
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="bulk-validate") as pool:
        yield pool


def _validated_ahead(kind: str, frames: Iterable[pd.DataFrame], first_row: int, ahead: ThreadPoolExecutor | None,
                     report: LoadReport) -> Iterator[tuple[pd.DataFrame, tuple[pd.DataFrame, pd.DataFrame]]]:
    """Each frame with its validation (``_validate``; ``first_row``: the input's row number of the
    first frame's first row), in input order, each validated as alone. With ``ahead`` (one
    thread) the next frame is read and its validation started before this one is given: it runs
    while the caller writes this one; a frame whose write fails discards the validation made
    ahead (read again on resume). A frame read before the input fails (a bad file, the operator's
    interrupt) is given first, and the failure raised after it: as without ``ahead``, a load stopped
    after k frames has stored k frames."""
    rows = iter(frames)
    if ahead is None:
        for frame in rows:
            report.lap("read")
            checked = _validate(kind, frame, first_row)
            report.lap("validate")
            yield frame, checked
            first_row += len(frame)
        return
    frame = next(rows, None)
    report.lap("read")
    pending = ahead.submit(_validate, kind, frame, first_row) if frame is not None else None
    while frame is not None and pending is not None:
        checked = pending.result()
        report.lap("validate")  # (the part the previous frame's write did not hide)
        failure: BaseException | None = None
        try:
            following = next(rows, None)
        except BaseException as exc:  # re-raised below, once this frame is written
            following, failure = None, exc
        report.lap("read")
        following_row = first_row + len(frame)
        pending = ahead.submit(_validate, kind, following, following_row) if following is not None else None
        yield frame, checked
        if failure is not None:
            raise failure
        frame, first_row = following, following_row


def _bound_wal(conn: Connection) -> None:
    """SQLite, between frames (no transaction open): checkpoint the WAL (PASSIVE: it waits for no
    reader) once it holds ``_WAL_CHECKPOINT_BYTES``, so the next frame's commit starts it over
    (cut to ``journal_size_limit``) instead of growing it. PostgreSQL: nothing. On the driver's
    connection: a PRAGMA opens no transaction there."""
    if conn.dialect.name != "sqlite":
        return
    driver = conn.connection.driver_connection
    path = driver.execute("PRAGMA database_list").fetchone()[2]
    try:
        wal_bytes = Path(f"{path}-wal").stat().st_size if path else 0
    except FileNotFoundError:  # (not in WAL mode, or checkpointed and removed)
        wal_bytes = 0
    if wal_bytes >= _WAL_CHECKPOINT_BYTES:
        driver.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()


@contextmanager
def _tuned_for_load(conn: Connection) -> Iterator[None]:
    """SQLite settings of the loading connection for the load, restored after it: index pages and
    staged rows in memory (``cache_size``, ``temp_store``), and the WAL checkpointed between
    frames once it holds ``_WAL_CHECKPOINT_BYTES`` instead of at every frame's commit (each
    commit still syncs the WAL: durability as ever; a page that several frames change is copied
    into the database once per checkpoint), its file cut back to that size when it starts over
    (``journal_size_limit``), so it stays bounded however large the load. PostgreSQL: nothing."""
    if conn.dialect.name != "sqlite":
        yield
        return
    keep = ("cache_size", "temp_store", "wal_autocheckpoint", "journal_size_limit")
    with conn.begin():
        before = {name: conn.exec_driver_sql(f"PRAGMA {name}").scalar() for name in keep}
        conn.exec_driver_sql(f"PRAGMA cache_size = -{_SQLITE_CACHE_KIB}")
        conn.exec_driver_sql("PRAGMA temp_store = MEMORY")
        conn.exec_driver_sql("PRAGMA wal_autocheckpoint = 0")
        conn.exec_driver_sql(f"PRAGMA journal_size_limit = {_WAL_CHECKPOINT_BYTES}")
    try:
        yield
    finally:
        if not conn.invalidated:  # (a lost connection took its settings with it)
            if conn.in_transaction():  # a frame failed: its rollback is the caller's, the settings ours
                conn.rollback()
            conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")  # what readers still use: the next one
            for name in keep:
                conn.exec_driver_sql(f"PRAGMA {name} = {int(before[name])}")
            conn.commit()


def _skip(frames: Iterable[pd.DataFrame], rows: int) -> Iterator[pd.DataFrame]:
    """The input after its first ``rows`` rows (those an earlier run committed)."""
    for frame in frames:
        if rows >= len(frame):
            rows -= len(frame)
            continue
        yield frame.iloc[rows:].reset_index(drop=True) if rows else frame.reset_index(drop=True)
        rows = 0


# The USCC of each row checked for the whole frame by the vectorised form of the model's rule
# (``uscc.valid_uscc_mask``), with the rule's own words for a code it refuses.
_USCC_RULE = (valid_uscc_mask, lambda code: uscc_problem(code) if isinstance(code, str) else "missing")
# GradeIn's rules are all per field: a grade frame is validated column by column, each column's
# distinct values in one call (frame_validation), by GradeIn's own field definitions.
_GRADE_CHECK = ColumnValidator(GradeIn, json_fields=_JSON_FIELDS, json_values={"reasons": reasons_template},
                               vectorised={"uscc": _USCC_RULE})
_REASONS_DUMPED = "reasons_template"  # an accepted grade's reasons in the compact form but the labels' ids
# SubjectIn: the frame as one JSON document validated in one call (as before), the USCC as above.
_SUBJECTS = TypeAdapter(list[create_model("BulkSubjectIn", __base__=SubjectIn, uscc=(str, ...))])


def _validate(kind: str, frame: pd.DataFrame, first_row: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(accepted rows, rejected rows with their input ``row`` number and a ``reason``, "field: rule")."""
    frame = frame.reset_index(drop=True)
    if kind == "grades":
        check = _GRADE_CHECK.validate(frame)
        problems = check.problems
        accepted = np.ones(len(frame), dtype=bool)
        accepted[list(problems)] = False
        ok = pd.DataFrame({name: values[accepted] for name, values in check.columns.items()}
                          | {_REASONS_DUMPED: check.values["reasons"][accepted]})
        ok.insert(0, "row", np.flatnonzero(accepted) + first_row)
    else:
        problems = _subject_problems(frame)
        accepted = ~frame.index.isin(list(problems))
        ok = frame[accepted]
    rows = sorted(problems)
    rejected = frame.iloc[rows].assign(row=[i + first_row for i in rows], reason=[problems[i] for i in rows])
    return ok, rejected.reset_index(drop=True)


def _subject_problems(frame: pd.DataFrame) -> dict[int, str]:
    """Position → "field: rule" of the subject rows ``SubjectIn`` refuses: the frame written as one
    JSON document and validated by pydantic-core in one call."""
    problems: dict[int, str] = {}
    valid, problem = _USCC_RULE
    codes = frame["uscc"] if "uscc" in frame else pd.Series([None] * len(frame))
    for i in np.flatnonzero(~valid(codes)):
        problems[int(i)] = f"uscc: {problem(codes.iloc[i])}"
    scalars = frame.copy()
    for name in scalars.columns:  # dates as ISO text (a Parquet date column arrives as objects)
        if scalars[name].dtype == object or pd.api.types.is_datetime64_any_dtype(scalars[name]):
            scalars[name] = scalars[name].map(lambda v: v.isoformat()[:10] if hasattr(v, "isoformat") else v)
    lines = scalars.to_json(orient="records", lines=True, force_ascii=False).splitlines() if len(frame) else []
    try:
        _SUBJECTS.validate_json("[" + ",".join(lines) + "]")
    except ValidationError as exc:
        for error in exc.errors(include_url=False, include_input=False):
            index, *where = error["loc"]
            problems.setdefault(int(index), f"{'.'.join(str(p) for p in where) or 'row'}: {error['msg']}")
    return problems


_STAGE = "bulk_grade_keys"  # a temporary table of the connection: one frame's grades' keys
_STAGED = table(_STAGE, column("pos"), column("uscc"), column("as_of"), column("model_version"))
_GRADE_KEY = ("uscc", "as_of", "model_version")


def _grade_batch(conn: Connection, frame: pd.DataFrame, report: LoadReport) -> pd.DataFrame:
    """Store a frame of validated grades; returns the rows refused here (subject not in the service).

    The keys go into a temporary table, and everything else is set-based on it: the grades
    replaced, the rows inserted (``executemany`` on SQLite, ``COPY`` on PostgreSQL), the current
    grades of the subjects it touched (``grades.advance_current``, the one rule of "latest"), the
    values before and after for the early warnings. ``report`` gets each step's time."""
    # a later row replaces an earlier one; in key order, so index pages are written in order
    frame = frame.drop_duplicates(list(_GRADE_KEY), keep="last").sort_values("uscc", kind="stable")
    n = len(frame)
    now = dt.datetime.now(dt.UTC)
    columns = {name: frame[name].to_numpy(dtype=object) for name in _GRADE_COLUMNS if name in frame}
    columns |= {"stale": np.full(n, False, dtype=object), "stale_reason": np.full(n, None, dtype=object),
                "created_at": np.full(n, now, dtype=object)}
    # stored compactly, the labels once in reason_labels; the early warnings read the records of the
    # reasons as given
    given_reasons = frame[_REASONS_DUMPED].to_numpy(dtype=object)  # (reasons_template's)
    columns["reasons"] = np.array(compact_texts(conn, given_reasons.tolist()), dtype=object)
    report.lap("prepare")
    # the keys staged for the set-based steps; the rows themselves go straight into grades below
    _stage(conn, _STAGE, "grades", _GRADE_KEY, columns)
    report.lap("stage")
    with _by_staged_keys(conn):
        before, unknown = _replace_and_advance(conn, columns, report)
    # the staged grades that became current, against what was current before (early warnings)
    if before:  # (a subject's first grade raises nothing: a first load has no warnings to look for)
        c = CurrentGrade.__table__
        now_current = np.zeros(n, dtype=bool)
        with _by_staged_keys(conn):
            now_current[[pos for (pos,) in _driver_rows(conn,
                f"SELECT s.pos FROM {_STAGE} s JOIN {c.name} c "  # noqa: S608 # the model's names, never input
                "ON c.uscc = s.uscc AND c.as_of = s.as_of AND c.model_version = s.model_version")]] = True
        warn_after_bulk_grades(conn, _grade_changes(columns | {"reasons": given_reasons}, before, now_current))
    report.lap("warnings")
    if not unknown:
        return frame.iloc[0:0].drop(columns=[_REASONS_DUMPED]).assign(reason=pd.Series(dtype=str))
    refused = frame.iloc[sorted(unknown)]
    # the reasons as the model serialises them (the validation kept templates, no text)
    texts = [to_json(template_reasons(t)).decode() for t in refused[_REASONS_DUMPED]]
    refused = refused.drop(columns=[_REASONS_DUMPED]).assign(reasons=texts)
    return refused.assign(reason="uscc: unknown subject (load the subjects first)")


# PostgreSQL settings of a batch's statements driven by the staged keys (SET LOCAL: its transaction)
_STAGED_PLAN = {"enable_hashjoin": "off", "enable_mergejoin": "off", "enable_seqscan": "off", "work_mem": "64MB"}


@contextmanager
def _by_staged_keys(conn: Connection) -> Iterator[None]:
    """PostgreSQL: the statements inside join the staged rows (one batch) to grades, subjects and
    current grades by index lookups, whatever the tables' size, statistics or ``random_page_cost``.
    Left to itself the planner hash-joined over sequential scans of the whole tables (1.5 / 0.6 /
    2.3 s per batch at 400,000 grades, growing with them), misled by the estimate of the join of
    the staged keys (1 row for 50,000); nested loops over the stage make a batch's cost follow
    the batch. No sequential scan either (``enable_seqscan``; the stage is read by its own
    index): with the tables' statistics lagging the load, the planner otherwise took grades or
    current grades for small and scanned them to probe the stage, or scanned the stage once per
    row of them (minutes). ``work_mem`` keeps the sort of 50,000 current grades off disk. Restored after
    (the early warnings' statements plan as ever). SQLite: nothing (its plans already look up
    each staged row by index)."""
    if conn.dialect.name != "postgresql":
        yield
        return
    before = {name: conn.exec_driver_sql(f"SELECT current_setting('{name}')").scalar() for name in _STAGED_PLAN}
    for name, value in _STAGED_PLAN.items():
        conn.exec_driver_sql(f"SET LOCAL {name} = '{value}'")
    yield
    for name, value in before.items():
        conn.exec_driver_sql(f"SET LOCAL {name} = '{value}'")


def _replace_and_advance(conn: Connection, columns: dict[str, np.ndarray],
                         report: LoadReport) -> tuple[list[Any], list[int]]:
    """The staged grades (keys in the stage, rows in ``columns``) stored: those of unknown subjects
    left out, a grade stored again replaced, the current grades advanced. Returns what was current
    before for the staged rows' subjects (position, as_of, model_version, grade, probability) and
    the positions of unknown subjects."""
    n = len(columns["uscc"])
    unknown = [r for (r,) in conn.execute(select(_STAGED.c.pos).where(~exists().where(Subject.uscc == _STAGED.c.uscc)))]
    if unknown:
        conn.execute(delete(_STAGED).where(_STAGED.c.pos.in_(unknown)))
    report.lap("unknown subjects")
    # what was current before, per staged row's subject (early warnings): old values, no objects
    c = CurrentGrade.__table__
    g = Grade.__table__
    before = _driver_rows(conn,
        f"SELECT s.pos, g.as_of, g.model_version, g.grade, g.probability FROM {_STAGE} s "  # noqa: S608 # the model's names, never input
        f"JOIN {c.name} c ON c.uscc = s.uscc JOIN {g.name} g "
        "ON g.uscc = c.uscc AND g.as_of = c.as_of AND g.model_version = c.model_version")
    report.lap("before")
    # a grade stored again is replaced (deleted, then inserted with the others): ids then follow the
    # input, so of a subject's grades stored now, the later row is the later stored (current_grades)
    same_key = and_(g.c.uscc == _STAGED.c.uscc, g.c.as_of == _STAGED.c.as_of, g.c.model_version == _STAGED.c.model_version)
    conn.execute(delete(g).where(g.c.id.in_(select(g.c.id).select_from(_STAGED.join(g, same_key)))))
    report.lap("replace")
    _write_rows(conn, g.name, g.name, _GRADE_COLUMNS, columns, np.setdiff1d(np.arange(n), unknown))  # in pos order
    report.lap("insert")
    advance_current(conn, _STAGED)
    report.lap("current")
    return before, unknown


def _driver_rows(conn: Connection, sql: str) -> list[tuple[Any, ...]]:
    """The rows of ``sql`` (no parameters) as the driver returns them: no result object per row
    (dates are ISO text on SQLite, dates on PostgreSQL)."""
    cursor = conn.connection.driver_connection.cursor()
    try:
        cursor.execute(sql)
        return cursor.fetchall()
    finally:
        cursor.close()


def _grade_changes(columns: dict[str, np.ndarray], before: list[Any], now_current: np.ndarray) -> GradeChanges:
    """The staged grades (``columns``, by position) that became current (``now_current``, by
    position) and differ from the subject's grade before (``before``: position, as_of,
    model_version, grade, probability), as the columns of the warning rule, compared column by
    column; the records behind a grade's adverse reasons read (once per distinct reasons text)
    only for the subjects that raise a warning."""
    new_as_of, versions, grades, probabilities = (columns[k] for k in ("as_of", "model_version", "grade", "probability"))
    at, old_as_of, old_version, old_grade, old_p = (
        (np.array(values, dtype=object) for values in zip(*before, strict=True)) if before
        else (np.empty(0, dtype=object) for _ in range(5)))
    at = at.astype(np.int64)

    def iso(values: np.ndarray) -> np.ndarray:  # a date as ISO text (SQLite returns the text)
        return pd.Series(values, dtype=object).astype(str).to_numpy()

    old_p = old_p.astype(float)
    same = ((iso(old_as_of) == iso(new_as_of[at])) & (old_version == versions[at]) & (old_grade == grades[at])
            & (old_p == probabilities[at].astype(float)))
    changed = now_current[at] & ~same
    positions, old_grade, old_p = at[changed], old_grade[changed], old_p[changed]
    reasons = columns["reasons"]
    parsed: dict[int, tuple[str, ...]] = {}

    def record_ids(i: int) -> tuple[str, ...]:
        # a reasons template (serving.db.reason_labels), one object per distinct text: known by its
        # identity (``columns`` holds it meanwhile; a tuple's hash is not cached)
        given = reasons[positions[i]]
        found = parsed.get(id(given))
        if found is None:
            found = parsed[id(given)] = adverse_record_ids(template_reasons(given))
        return found

    return GradeChanges(uscc=columns["uscc"][positions].tolist(), as_of=new_as_of[positions].tolist(),
                        new_grade=grades[positions].tolist(), new_probability=probabilities[positions].astype(float),
                        old_grade=old_grade.tolist(), old_probability=old_p, record_ids=record_ids)


def _stage(conn: Connection, stage: str, table_name: str, names: tuple[str, ...], columns: dict[str, np.ndarray]) -> None:
    """Fill the connection's temporary table ``stage`` (``pos`` and ``table_name``'s ``names``)
    with ``columns``, row ``pos`` being the column arrays' position."""
    listed = ", ".join(names)
    n = len(next(iter(columns.values())))
    postgres = conn.dialect.name == "postgresql"
    conn.exec_driver_sql(f"CREATE TEMP TABLE IF NOT EXISTS {stage} AS "  # noqa: S608 # model names, never input
                         f"SELECT 0 AS pos, {listed} FROM {table_name} " + ("WITH NO DATA" if postgres else "LIMIT 0"))
    if postgres:  # each side of a nested loop over the stage (``_by_staged_keys``) looked up by index
        conn.exec_driver_sql(f"CREATE INDEX IF NOT EXISTS {stage}_key ON {stage} ({listed})")
    conn.exec_driver_sql(f"TRUNCATE {stage}" if postgres else f"DELETE FROM {stage}")  # noqa: S608 # the staging table's own name
    _write_rows(conn, stage, table_name, ("pos", *names), {"pos": np.arange(n).astype(object), **columns}, None)
    if postgres:
        # a temporary table has no statistics until analysed: without them the planner took the
        # staged rows for 200 subjects and joined the current grades by nested loops (minutes)
        conn.exec_driver_sql(f"ANALYZE {stage}")


def _write_rows(conn: Connection, target: str, table_name: str, names: tuple[str, ...], columns: dict[str, np.ndarray],
                rows: np.ndarray | None) -> None:
    """Insert the rows ``rows`` (positions, in that order; None: all) of ``columns`` into ``target``
    (``table_name`` or a staging copy of it): ``COPY`` on PostgreSQL, ``executemany`` on SQLite
    with each column's conversion applied once per distinct value."""
    picked = [columns[name] if rows is None else columns[name][rows] for name in names]
    if conn.dialect.name == "postgresql":
        cursor = conn.connection.driver_connection.cursor()
        # psycopg's write_row (C) formats 50,000 grades in 0.20 CPU-s here; the text built by columns
        # took 0.29 (issue 22 measured 1.6 s for the whole write, the sending included): kept
        with cursor.copy(f"COPY {target} ({', '.join(names)}) FROM STDIN") as copy:
            for row in zip(*picked, strict=True):
                copy.write_row(row)
        return
    processors = _sqlite_binders(conn, table_name, names)
    bound = [_bind_distinct(values, p) for values, p in zip(picked, processors, strict=True)]
    marks = ", ".join("?" for _ in names)
    conn.connection.driver_connection.cursor().executemany(
        f"INSERT INTO {target} ({', '.join(names)}) VALUES ({marks})", zip(*bound, strict=True))  # noqa: S608 # model names; "?" placeholders, the values bound


def _bind_distinct(values: np.ndarray, processor: Callable[[Any], Any] | None) -> list[Any]:
    """``processor`` (a column type's conversion for the driver) applied once per distinct value."""
    if processor is None:
        return values.tolist()
    codes, uniques = pd.factorize(pd.Series(values, dtype=object), use_na_sentinel=True)
    done = np.empty(len(uniques) + 1, dtype=object)
    done[:-1] = [processor(v) for v in uniques.tolist()]
    done[-1] = None
    return done[codes].tolist()


def _subject_batch(conn: Connection, frame: pd.DataFrame, report: LoadReport) -> pd.DataFrame:
    frame = frame.drop_duplicates(["uscc"], keep="last").sort_values("uscc")
    fields = list(SubjectIn.model_fields)
    values = frame.reindex(columns=fields).astype(object)
    values = values.where(values.notna(), None)
    for name, spec in SubjectIn.model_fields.items():  # the model's defaults, as validation applied them
        if spec.default is not None and not spec.is_required():
            values[name] = values[name].where(values[name].notna(), spec.default)
    if "registered_on" in values:
        values["registered_on"] = [None if v is None else pd.Timestamp(v).date() for v in values["registered_on"]]
    now = dt.datetime.now(dt.UTC)
    rows = [(*row, now) for row in values.itertuples(index=False, name=None)]
    _upsert(conn, Subject.__table__.name, _SUBJECT_COLUMNS, rows, ("uscc",))
    refresh_subject_columns(conn, values[["uscc", "industry", "district_code", "name"]].itertuples(index=False, name=None))
    return frame.iloc[0:0].assign(reason=pd.Series(dtype=str))


def _upsert(conn: Connection, table: str, columns: tuple[str, ...], rows: list[tuple[Any, ...]],
            key: tuple[str, ...]) -> None:
    """Insert ``rows``, a row whose ``key`` exists replacing it: executemany on SQLite, COPY on PostgreSQL.
    Table and column names are the models' own (never input), so the statements are composed here."""
    names = ", ".join(columns)
    updates = ", ".join(f"{c} = excluded.{c}" for c in columns if c not in key)
    conflict = f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET {updates}"
    if conn.dialect.name == "postgresql":
        stage = f"{table}_stage"
        conn.exec_driver_sql(f"CREATE TEMP TABLE IF NOT EXISTS {stage} AS SELECT {names} FROM {table} WITH NO DATA")  # noqa: S608 # model names, never input
        conn.exec_driver_sql(f"TRUNCATE {stage}")
        cursor = conn.connection.driver_connection.cursor()
        with cursor.copy(f"COPY {stage} ({names}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        conn.exec_driver_sql(f"INSERT INTO {table} ({names}) SELECT {names} FROM {stage} {conflict}")  # noqa: S608 # model names, never input
        return
    processors = _sqlite_binders(conn, table, columns)
    converted = [tuple(p(v) if p and v is not None else v for p, v in zip(processors, row, strict=True))
                 for row in rows]
    marks = ", ".join("?" for _ in columns)
    conn.exec_driver_sql(f"INSERT INTO {table} ({names}) VALUES ({marks}) {conflict}", converted)  # noqa: S608 # model names, never input


def _sqlite_binders(conn: Connection, table: str, columns: tuple[str, ...]) -> list[Callable[[Any], Any] | None]:
    """The column types' own conversions to what the driver stores (dates, UTC timestamps), so
    bulk rows read back exactly as rows written through the ORM. JSON columns get text as it is."""
    from serving.db.tables import Base

    out: list[Callable[[Any], Any] | None] = []
    for name in columns:
        column = Base.metadata.tables[table].c.get(name)  # (a staging table's own ``pos``: none)
        out.append(None if column is None or name in _JSON_FIELDS
                   else column.type.dialect_impl(conn.dialect).bind_processor(conn.dialect))
    return out


def frames_of(path: Path, batch_rows: int = 50_000) -> Iterator[pd.DataFrame]:
    """A Parquet or CSV file as frames of ``batch_rows`` rows, read as they are loaded (the same
    frames on every run, so a load resumes at the right row)."""
    if path.suffix.lower() == ".parquet":
        import pyarrow.parquet as pq

        for batch in pq.ParquetFile(path).iter_batches(batch_size=batch_rows):
            yield batch.to_pandas()
    else:
        yield from pd.read_csv(path, chunksize=batch_rows, dtype=str, keep_default_na=False, na_values=[""])


def load_id_of(kind: str, path: Path) -> str:
    """A load's default id: the file's name, size and modification time (the same file resumes)."""
    stat = path.stat()
    return f"{kind}:{path.name}:{stat.st_size}:{stat.st_mtime_ns}"[:80]
