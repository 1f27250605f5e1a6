"""Bulk loads of subjects and grades into the service database (issue 22).

Rows come as a stream of pandas frames (a Parquet file read batch by batch). Each frame is
validated against the same models as the row-by-row path (``SubjectIn``, ``GradeIn``, validated
for the whole frame at once by pydantic-core); a rejected row is returned with its reason, never
stored. Accepted rows are written in one statement per frame: ``executemany`` of an upsert on
SQLite, ``COPY`` into a staging table then one upsert on PostgreSQL (psycopg 3). A later row with
the same key replaces an earlier one, as ``store_grades`` does; the current grades of the subjects
a frame touched are refreshed (``grades.refresh_current``) in the same transaction.

Each frame is one transaction that also records how many input rows the load has consumed
(``bulk_loads``). A load interrupted after k frames resumes, under the same ``load_id`` and the
same input, at the first row not yet committed: no row is written twice, none is lost. A
finished load run again writes nothing.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import TypeAdapter, ValidationError, create_model
from sqlalchemy import Connection, Engine, select

from serving.db.models import BulkLoad, Grade, Subject
from serving.schemas import GradeIn, SubjectIn
from serving.services.grades import advance_current, refresh_subject_columns
from serving.services.warnings import current_values, warn_after_grades
from serving.validation import uscc_problem
from uscc import valid_uscc_mask

_GRADE_COLUMNS = ("uscc", "as_of", "score", "grade", "probability", "model_version", "profile_hash", "base_score",
                  "reasons", "what_if", "stale", "stale_reason", "created_at")
_SUBJECT_COLUMNS = (*SubjectIn.model_fields, "updated_at")
_JSON_FIELDS = ("reasons", "what_if")
_SQLITE_CACHE_KIB = 256 * 1024


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

    @property
    def rows_per_s(self) -> float:
        return self.stored / self.seconds if self.seconds else 0.0

    def as_json(self) -> dict[str, Any]:
        return {"load_id": self.load_id, "kind": self.kind, "read": self.read, "stored": self.stored,
                "rejected": self.rejected, "resumed_from": self.resumed_from, "seconds": round(self.seconds, 3),
                "rows_per_s": round(self.rows_per_s), "reasons": dict(self.reasons)}


Progress = Callable[[LoadReport], None]
Quarantine = Callable[[pd.DataFrame], None]  # the rejected rows of a frame, with a `reason` column


def load_grades(engine: Engine, frames: Iterable[pd.DataFrame], *, load_id: str,
                quarantine: Quarantine | None = None, progress: Progress | None = None) -> LoadReport:
    """Load grade rows (the columns of ``GradeIn``; ``reasons``/``what_if`` as lists or JSON text)."""
    return _load(engine, "grades", frames, load_id, _grade_batch, quarantine, progress)


def load_subjects(engine: Engine, frames: Iterable[pd.DataFrame], *, load_id: str,
                  quarantine: Quarantine | None = None, progress: Progress | None = None) -> LoadReport:
    """Load subject rows (the columns of ``SubjectIn``); an existing subject is updated."""
    return _load(engine, "subjects", frames, load_id, _subject_batch, quarantine, progress)


def _load(engine: Engine, kind: str, frames: Iterable[pd.DataFrame], load_id: str,
          write: Callable[[Connection, pd.DataFrame], None], quarantine: Quarantine | None,
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
    for frame in _skip(frames, report.resumed_from):
        report.read += len(frame)
        ok, rejected = _validate(kind, frame)
        if kind == "grades" and len(ok):
            ok, unknown = _known_subjects(engine, ok)
            rejected = pd.concat([rejected, unknown], ignore_index=True) if len(unknown) else rejected
        if len(rejected):
            report.rejected += len(rejected)
            report.reasons.update(rejected["reason"].str.split(":").str[0])
            if quarantine is not None:
                quarantine(rejected)
        with engine.begin() as conn:  # the frame and the progress that says it is done: together
            if conn.dialect.name == "sqlite":  # index pages of a large load stay in memory (per connection)
                conn.exec_driver_sql(f"PRAGMA cache_size = -{_SQLITE_CACHE_KIB}")
            if len(ok):
                write(conn, ok)
            conn.execute(BulkLoad.__table__.update().where(BulkLoad.load_id == load_id).values(
                rows_done=report.resumed_from + report.read, updated_at=dt.datetime.now(dt.UTC)))
        report.stored += len(ok)
        report.seconds = time.perf_counter() - started
        if progress is not None:
            progress(report)
    with engine.begin() as conn:
        conn.execute(BulkLoad.__table__.update().where(BulkLoad.load_id == load_id).values(
            finished=True, updated_at=dt.datetime.now(dt.UTC)))
    report.seconds = time.perf_counter() - started
    return report


def _skip(frames: Iterable[pd.DataFrame], rows: int) -> Iterator[pd.DataFrame]:
    """The input after its first ``rows`` rows (those an earlier run committed)."""
    for frame in frames:
        if rows >= len(frame):
            rows -= len(frame)
            continue
        yield frame.iloc[rows:].reset_index(drop=True) if rows else frame.reset_index(drop=True)
        rows = 0


# The service's models, with the USCC checked for the whole frame by the vectorised form of the
# same rule (``uscc.valid_uscc_mask``) instead of once per row.
_ADAPTERS = {kind: TypeAdapter(list[create_model(f"Bulk{model.__name__}", __base__=model, uscc=(str, ...))])
             for kind, model in (("grades", GradeIn), ("subjects", SubjectIn))}


def _validate(kind: str, frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(accepted rows, rejected rows with a ``reason``), by the service's own models: the frame is
    written as one JSON document (JSON text fields spliced in as they are) and validated by
    pydantic-core in one call, with no Python object per field."""
    frame = frame.reset_index(drop=True)
    reasons: dict[int, str] = {}
    codes = frame["uscc"] if "uscc" in frame else pd.Series([None] * len(frame))
    for i in np.flatnonzero(~valid_uscc_mask(codes)):
        code = codes.iloc[i]
        reasons[int(i)] = f"uscc: {uscc_problem(code) if isinstance(code, str) else 'missing'}"
    texts = {name: _json_texts(frame, name) for name in _JSON_FIELDS} if kind == "grades" else {}
    scalars = frame.drop(columns=[c for c in texts if c in frame])
    for name in scalars.columns:  # dates as ISO text (a Parquet date column arrives as objects)
        if scalars[name].dtype == object or pd.api.types.is_datetime64_any_dtype(scalars[name]):
            scalars[name] = scalars[name].map(lambda v: v.isoformat()[:10] if hasattr(v, "isoformat") else v)
    lines = scalars.to_json(orient="records", lines=True, force_ascii=False).splitlines() if len(frame) else []
    if texts:
        extra = [",".join(f'"{name}":{texts[name][i]}' for name in texts) for i in range(len(frame))]
        lines = [f"{line[:-1]},{more}}}" if line != "{}" else f"{{{more}}}" for line, more in zip(lines, extra, strict=True)]
    try:
        _ADAPTERS[kind].validate_json("[" + ",".join(lines) + "]")
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False)
        if errors and errors[0]["type"] == "json_invalid":  # a JSON text field: find which rows
            for i in range(len(frame)):
                for name in texts:
                    try:
                        json.loads(texts[name][i])
                    except ValueError:
                        reasons.setdefault(i, f"{name}: not JSON")
            keep = [i for i in range(len(frame)) if i not in reasons]
            ok, rejected = _validate(kind, frame.iloc[keep]) if keep else (frame.iloc[0:0], frame.iloc[0:0])
            bad = frame.iloc[sorted(reasons)].assign(reason=[reasons[i] for i in sorted(reasons)])
            return ok, pd.concat([rejected, bad], ignore_index=True)
        for error in errors:
            index, *where = error["loc"]
            reasons.setdefault(int(index), f"{'.'.join(str(p) for p in where) or 'row'}: {error['msg']}")
    if not reasons:
        return frame, frame.iloc[0:0].assign(reason=pd.Series(dtype=str))
    bad = frame.index.isin(list(reasons))
    rejected = frame[bad].assign(reason=[reasons[i] for i in frame.index[bad]])
    return frame[~bad], rejected


def _grade_batch(conn: Connection, frame: pd.DataFrame) -> None:
    # a later row replaces an earlier one; in key order, so index pages are written in order
    frame = frame.drop_duplicates(["uscc", "as_of", "model_version"], keep="last").sort_values("uscc", kind="stable")
    now = dt.datetime.now(dt.UTC)
    as_of = pd.to_datetime(frame["as_of"]).dt.date
    base = frame["base_score"] if "base_score" in frame else pd.Series([None] * len(frame), index=frame.index)
    columns = [frame["uscc"].tolist(), as_of.tolist(), frame["score"].astype(float).tolist(), frame["grade"].tolist(),
               frame["probability"].astype(float).tolist(), frame["model_version"].tolist(),
               frame["profile_hash"].tolist(), [None if pd.isna(b) else float(b) for b in base],
               _json_texts(frame, "reasons"), _json_texts(frame, "what_if")]
    n = len(frame)
    rows = list(zip(*columns, [False] * n, [None] * n, [now] * n, strict=True))
    before = current_values(conn, columns[0])  # for the early warnings of this grading
    _upsert(conn, Grade.__table__.name, _GRADE_COLUMNS, rows, ("uscc", "as_of", "model_version"))
    advance_current(conn, [(r[0], r[1], r[5], r[3], r[2]) for r in rows])
    # a row became current exactly when its as_of is not before the current one's (advance_current)
    latest: dict[str, tuple[Any, ...]] = {}
    for r in rows:
        if r[0] not in latest or r[1] >= latest[r[0]][1]:
            latest[r[0]] = r
    warn_after_grades(conn, before, [(u, r[1], r[3], r[4], r[8]) for u, r in latest.items()
                                     if u not in before or r[1] >= before[u][0]])


def _known_subjects(engine: Engine, frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(rows whose subject is in the service, the others with a reason): load subjects first."""
    wanted = frame["uscc"].unique().tolist()
    known: set[str] = set()
    with engine.connect() as conn:
        for start in range(0, len(wanted), 500):
            chunk = wanted[start:start + 500]
            known.update(conn.execute(select(Subject.uscc).where(Subject.uscc.in_(chunk))).scalars())
    found = frame["uscc"].isin(known)
    return frame[found], frame[~found].assign(reason="uscc: unknown subject (load the subjects first)")


def _json_texts(frame: pd.DataFrame, name: str) -> list[str]:
    if name not in frame:
        return ["[]"] * len(frame)
    return [v if isinstance(v, str) else json.dumps(v if v is not None else [], ensure_ascii=False)
            for v in frame[name].tolist()]


def _subject_batch(conn: Connection, frame: pd.DataFrame) -> None:
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
    refresh_subject_columns(conn, values[["uscc", "industry", "district_code"]].itertuples(index=False, name=None))


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
    from serving.db.models import Base

    out: list[Callable[[Any], Any] | None] = []
    for name in columns:
        column = Base.metadata.tables[table].c[name]
        out.append(None if name in _JSON_FIELDS else column.type.dialect_impl(conn.dialect).bind_processor(conn.dialect))
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
