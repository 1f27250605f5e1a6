"""查询使用登记: the tamper-evident query log.

Each entry stores ``entry_hash = sha256(prev_hash + canonical(entry))``; editing, deleting or
reordering an entry breaks the chain at that entry, which ``check_chain`` reports.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import logging
import os
import threading
import time
import weakref
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from sqlalchemy import Connection, Engine, bindparam, func, select, update
from sqlalchemy.orm import Session

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: SQLite's busy handler orders the processes
    fcntl = None  # type: ignore[assignment]

from serving.db.models import QueryLogEntry, QueryLogHead
from serving.security import Principal

logger = logging.getLogger(__name__)
GENESIS_HASH = "0" * 64
CHECKPOINT_INTERVAL_S = 1.0  # SQLite: WAL checkpoints of the query log's database, at most this often
_HASHED_FIELDS = ("seq", "at", "actor", "actor_role", "actor_kind", "uscc", "purpose", "endpoint",
                  "outcome", "personal_info_unmasked")


@dataclass(slots=True)
class LoggedRead:
    """A log entry being appended (the columns of ``QueryLogEntry``; a plain object, as an ORM
    instance costs more to build than the rest of the append). ``seq`` and the hashes are filled
    in when it is chained."""

    at: dt.datetime
    actor: str
    actor_role: str
    actor_kind: str
    uscc: str
    purpose: str
    endpoint: str
    outcome: str
    personal_info_unmasked: bool
    seq: int = 0
    prev_hash: str = ""
    entry_hash: str = ""


def canonical_entry(entry: QueryLogEntry | LoggedRead) -> str:
    """The canonical JSON of an entry's content (hashes excluded), stable across databases."""
    at = entry.at if entry.at.tzinfo else entry.at.replace(tzinfo=dt.UTC)
    values = {name: getattr(entry, name) for name in _HASHED_FIELDS}
    values["at"] = at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    values["personal_info_unmasked"] = bool(values["personal_info_unmasked"])
    return json.dumps(values, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def chain_hash(prev_hash: str, entry: QueryLogEntry | LoggedRead) -> str:
    return hashlib.sha256((prev_hash + canonical_entry(entry)).encode("utf-8")).hexdigest()


def append_entry(session: Session, *, principal: Principal, uscc: str, purpose: str, endpoint: str,
                 outcome: str = "allowed", personal_info_unmasked: bool = False,
                 commit: bool = True) -> LoggedRead:
    """Append one read to the log, durably, before returning (see ``append_entries``)."""
    return append_entries(session, principal=principal, reads=[(uscc, outcome)], purpose=purpose,
                          endpoint=endpoint, personal_info_unmasked=personal_info_unmasked, commit=commit)[0]


def append_entries(session: Session, *, principal: Principal, reads: list[tuple[str, str]], purpose: str,
                   endpoint: str, personal_info_unmasked: bool = False, commit: bool = True) -> list[LoggedRead]:
    """Append one entry per (uscc, outcome) in ``reads``, chained in order.

    With ``commit`` (the default) and a caller that only read, the caller's transaction is ended,
    then the entries are durably committed, when this returns, by the process's group-commit
    writer (``group_writer``): concurrent reads share one transaction. A caller that has written
    in its transaction commits its writes and the entries together (never one without the other).
    With ``commit=False`` the entries join the caller's transaction, which the caller commits.
    """
    if not reads:
        return []
    pending = [_new_entry(principal, uscc, outcome, purpose, endpoint, personal_info_unmasked)
               for uscc, outcome in reads]
    bind = session.get_bind()
    if commit and isinstance(bind, Engine) and not _has_writes(session):
        # End the caller's transaction first (as a commit here always did): the caller then holds
        # no pool connection while it waits, and no lock the writer needs.
        session.commit()
        group_writer(bind).append(pending)
        return pending
    _chain_in_transaction(session.connection(), pending)
    if commit:  # a session bound to one connection: no other transaction to group with
        session.commit()
    return pending


def _has_writes(session: Session) -> bool:
    """Whether the session's open transaction holds writes (pending, or flushed: see
    ``serving.db.session.track_flushed_writes``)."""
    return bool(session.new or session.dirty or session.deleted or session.info.get("flushed_writes"))


def _new_entry(principal: Principal, uscc: str, outcome: str, purpose: str, endpoint: str,
               personal_info_unmasked: bool) -> LoggedRead:
    # ``at`` is the time of the read, not of the commit that follows it
    return LoggedRead(at=dt.datetime.now(dt.UTC), actor=principal.username, actor_role=principal.role,
                      actor_kind=principal.kind, uscc=uscc, purpose=purpose, endpoint=endpoint,
                      outcome=outcome, personal_info_unmasked=personal_info_unmasked)


_HEAD = QueryLogHead.__table__
_LOG = QueryLogEntry.__table__
_COLUMNS = tuple(c.key for c in _LOG.columns)
# Built once (bound parameters): constructing these per append cost more than running them.
# The UPDATE takes the write lock (SQLite) / row lock (PostgreSQL) before the head is read,
# so two writers can never chain onto the same previous entry.
_ADVANCE_HEAD = (update(_HEAD).where(_HEAD.c.id == 1).values(seq=_HEAD.c.seq + bindparam("n_entries"))
                 .returning(_HEAD.c.seq, _HEAD.c.last_hash))
_SET_HEAD_HASH = update(_HEAD).where(_HEAD.c.id == 1).values(last_hash=bindparam("new_last_hash"))
_INSERT = _LOG.insert()


def _chain_in_transaction(conn: Connection, entries: list[LoggedRead]) -> None:
    """Number and chain ``entries`` onto the head and insert them, inside ``conn``'s transaction."""
    seq, prev_hash = conn.execute(_ADVANCE_HEAD, {"n_entries": len(entries)}).one()
    seq -= len(entries)
    for entry in entries:
        seq += 1
        entry.seq, entry.prev_hash = seq, prev_hash
        entry.entry_hash = prev_hash = chain_hash(prev_hash, entry)
    conn.execute(_INSERT, [{name: getattr(e, name) for name in _COLUMNS} for e in entries])
    conn.execute(_SET_HEAD_HASH, {"new_last_hash": prev_hash})


@dataclass(eq=False)
class _Batch:
    """One caller's entries waiting in the group-commit queue."""

    entries: list[LoggedRead]
    done: threading.Event = field(default_factory=threading.Event)
    lead: bool = False  # set when this caller is handed the job of committing the next batch
    error: BaseException | None = None


class GroupCommitWriter:
    """Group commit of query-log appends for one database in one process.

    Callers queue their entries and block until a transaction containing them is durable.
    One caller at a time is the *leader*: it takes everything queued so far, chains it in order
    under the head-row lock and commits once. Under load every commit carries all the reads that
    arrived during the previous one, so the log keeps up with the request rate while every read
    is still durable before it is answered.

    SQLite: a ``flock`` on ``<database>-querylog.lock`` orders the writers of different
    processes (the kernel wakes the next one as soon as the lock is released, where SQLite's
    own busy handler would sleep 1, 2, 5, 10 … ms between retries). With
    ``synchronous=FULL`` (the default) the commit itself skips the fsync
    (``synchronous=NORMAL`` on that one transaction) and the leader, once it has released the
    lock and handed the lead on, makes it durable with an ``fdatasync`` of the write-ahead log.
    This is the fsync a FULL commit does, moved out of the lock: the next group (of this or the
    other worker) chains and commits meanwhile, and one fsync makes durable every commit before
    it; the groups that committed during an fsync share the next one. No caller returns before an
    fsync that started after its commit has completed.
    With ``synchronous=NORMAL`` configured there is no fsync at all (the documented trade-off).
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = weakref.ref(engine)  # a strong reference would keep the registry's key alive
        self._mutex = threading.Lock()
        self._queue: list[_Batch] = []
        self._leader_active = False
        database = engine.url.database if engine.url.get_backend_name() == "sqlite" else None
        on_disk = bool(database) and database != ":memory:"
        self._lock_path = Path(database + "-querylog.lock") if on_disk and fcntl is not None else None
        self._lock_file: IO[str] | None = None  # opened on the first commit, kept open
        self._wal_path = Path(database + "-wal") if on_disk else None
        self._wal_inode: int | None = None  # the WAL whose directory entry was last made durable
        self._sync_wal: bool | None = None  # learnt on the first commit (the connection's PRAGMA)
        self._commits = 0  # commits of this writer so far (under `_mutex`)
        self._synced = 0  # every commit up to this number is durable (under `_sync_lock`)
        self._sync_lock = threading.Lock()
        self._checkpointing = False
        self._checkpointed_at = float("-inf")

    def append(self, entries: list[LoggedRead]) -> None:
        """Chain and durably commit ``entries`` (their ``seq`` and hashes are filled in)."""
        batch = _Batch(entries)
        with self._mutex:
            self._queue.append(batch)
            if not self._leader_active:
                self._leader_active = batch.lead = True
        if not batch.lead:
            batch.done.wait()
        if batch.lead:  # first caller, or handed the lead by the previous leader
            self._lead()
        if batch.error is not None:
            raise batch.error

    def _lead(self) -> None:
        with self._mutex:
            group, self._queue = self._queue, []
        error: BaseException | None = None
        ticket = 0
        try:
            self._commit([e for b in group for e in b.entries])
            with self._mutex:
                self._commits += 1
                ticket = self._commits
        except BaseException as exc:  # every caller of the failed group learns it was not logged
            error = exc
        # the next group may chain and commit while this one waits for its fsync
        with self._mutex:
            successor = self._queue[0] if self._queue else None
            if successor is None:
                self._leader_active = False
            else:
                successor.lead = True
        if successor is not None:
            successor.done.set()
        if error is None:
            try:
                self._make_durable(ticket)
            except BaseException as exc:  # committed but maybe not on disk: not logged for the callers
                error = exc
        for b in group:
            b.error = error
            b.done.set()
        self._checkpoint_soon()

    def _commit(self, entries: list[LoggedRead]) -> None:
        with contextlib.ExitStack() as stack:
            if self._lock_path is not None:
                if self._lock_file is None:
                    self._lock_file = self._lock_path.open("a")
                fcntl.flock(self._lock_file, fcntl.LOCK_EX)
                stack.callback(fcntl.flock, self._lock_file, fcntl.LOCK_UN)
            engine = self._engine()
            if engine is None:  # pragma: no cover - the caller's session holds the engine
                raise RuntimeError("the query log's engine was disposed")
            with engine.connect() as conn, self._fsync_after_commit(conn), conn.begin():
                _chain_in_transaction(conn, entries)

    @contextlib.contextmanager
    def _fsync_after_commit(self, conn: Connection) -> Iterator[None]:
        """Commit this transaction without the work SQLite would do under the lock: with
        ``synchronous=FULL`` its fsync (``_make_durable`` does it after the lock is released),
        and any WAL checkpoint (``_checkpoint_soon`` runs one beside the writers). The
        connection gets its settings back whatever happens."""
        if self._wal_path is None:
            yield
            return
        dbapi = conn.connection.dbapi_connection
        synchronous = dbapi.execute("PRAGMA synchronous").fetchone()[0]  # 2 FULL, 3 EXTRA, 1 NORMAL
        autocheckpoint = dbapi.execute("PRAGMA wal_autocheckpoint").fetchone()[0]
        if self._sync_wal is None:
            # read under the lock before the first commit, so a concurrent leader (a successor)
            # never sees None after a commit
            self._sync_wal = synchronous >= 2
        dbapi.execute("PRAGMA wal_autocheckpoint=0")
        if synchronous >= 2:
            dbapi.execute("PRAGMA synchronous=NORMAL")
        try:
            yield
        finally:
            dbapi.execute(f"PRAGMA synchronous={synchronous}")
            dbapi.execute(f"PRAGMA wal_autocheckpoint={autocheckpoint}")

    def _checkpoint_soon(self) -> None:
        """Start a ``PASSIVE`` WAL checkpoint in a thread of its own, at most every
        ``CHECKPOINT_INTERVAL_S``. SQLite's automatic checkpoint runs inside the commit that
        crosses 1,000 WAL pages, holding the write lock (and ours) while it copies pages and
        syncs the database file: every read waiting for the log stalled behind it. A passive
        checkpoint runs beside the writers and gives up on what readers still use."""
        if self._wal_path is None:
            return
        now = time.monotonic()
        with self._mutex:
            if self._checkpointing or now - self._checkpointed_at < CHECKPOINT_INTERVAL_S:
                return
            self._checkpointing, self._checkpointed_at = True, now
        threading.Thread(target=self._checkpoint, name="querylog-checkpoint", daemon=True).start()

    def _checkpoint(self) -> None:
        try:
            engine = self._engine()
            if engine is not None:
                with engine.connect() as conn:
                    conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
        except Exception:  # the next one retries; SQLite's own checkpoints still run on other writes
            logger.warning("query-log WAL checkpoint failed", exc_info=True)
        finally:
            with self._mutex:
                self._checkpointing = False

    def _make_durable(self, ticket: int) -> None:
        """Make this process's commit number ``ticket`` durable: ``fdatasync`` the write-ahead
        log, as a FULL commit would have, unless an fsync that started after that commit has
        completed meanwhile. One fsync at a time: the groups that committed while one ran share
        the next one (an fsync costs CPU as well as time).

        The WAL is opened by name each time: after a checkpoint SQLite may have reset or
        recreated it (then the commits it held are in the database file, which the checkpoint
        synced)."""
        if self._wal_path is None or not self._sync_wal:
            return
        with self._sync_lock:
            if self._synced >= ticket:
                return
            with self._mutex:
                covered = self._commits  # every commit counted so far is in the file before this fsync
            self._fdatasync_wal()
            self._synced = covered

    def _fdatasync_wal(self) -> None:
        assert self._wal_path is not None
        fd = os.open(self._wal_path, os.O_RDONLY)
        try:
            os.fdatasync(fd)
            inode = os.fstat(fd).st_ino
        finally:
            os.close(fd)
        if inode != self._wal_inode:  # a new WAL file: its directory entry must survive too
            directory = os.open(self._wal_path.parent, os.O_RDONLY)
            try:
                os.fsync(directory)
            finally:
                os.close(directory)
            self._wal_inode = inode


# one writer per engine; it goes away with its engine (tests create one engine per database)
_writers: weakref.WeakKeyDictionary[Engine, GroupCommitWriter] = weakref.WeakKeyDictionary()
_writers_lock = threading.Lock()


def group_writer(engine: Engine) -> GroupCommitWriter:
    """The process's group-commit writer for ``engine`` (created on first use)."""
    with _writers_lock:
        writer = _writers.get(engine)
        if writer is None:
            writer = _writers[engine] = GroupCommitWriter(engine)
        return writer


@dataclass(frozen=True)
class ChainCheck:
    ok: bool
    entries: int
    first_broken_seq: int | None = None
    problem: str | None = None


def check_chain(session: Session, batch_size: int = 5000) -> ChainCheck:
    """Walk the log in order; report the first entry whose link or content does not verify."""
    prev_hash, expected_seq, count, last_seq = GENESIS_HASH, 1, 0, 0
    stmt = select(QueryLogEntry).order_by(QueryLogEntry.seq).execution_options(yield_per=batch_size)
    for entry in session.scalars(stmt):
        count += 1
        if entry.seq != expected_seq:
            return ChainCheck(False, count, expected_seq, f"entry {expected_seq} is missing")
        if entry.prev_hash != prev_hash:
            return ChainCheck(False, count, entry.seq, "prev_hash does not match the previous entry")
        if chain_hash(prev_hash, entry) != entry.entry_hash:
            return ChainCheck(False, count, entry.seq, "content does not match entry_hash (edited)")
        prev_hash, expected_seq, last_seq = entry.entry_hash, expected_seq + 1, entry.seq
    head = session.get(QueryLogHead, 1)
    if head is not None and (head.seq != last_seq or head.last_hash != prev_hash):
        return ChainCheck(False, count, last_seq + 1, "entries after the last one were deleted")
    return ChainCheck(True, count)


def list_entries(session: Session, *, uscc: str | None = None, actor: str | None = None,
                 offset: int = 0, limit: int = 100) -> tuple[int, list[QueryLogEntry]]:
    stmt = select(QueryLogEntry)
    if uscc:
        stmt = stmt.where(QueryLogEntry.uscc == uscc)
    if actor:
        stmt = stmt.where(QueryLogEntry.actor == actor)
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = session.scalars(stmt.order_by(QueryLogEntry.seq.desc()).offset(offset).limit(limit)).all()
    return total, list(rows)
