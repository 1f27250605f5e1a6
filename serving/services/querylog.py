"""查询使用登记: the tamper-evident query log.

Each entry stores ``entry_hash = HMAC-SHA256(key, prev_hash + canonical(entry))`` with a key kept
outside the database (``Settings.querylog_mac_key``): editing, deleting or reordering an entry
breaks the chain at that entry, and someone who can write the database but does not hold the key
cannot recompute it. Entries written before migration 0003 keep the unkeyed
``sha256(prev_hash + canonical(entry))`` (``chain_hash``); ``query_log_head.keyed_from`` is the
first keyed one. The head is anchored outside the database by signed checkpoints
(``serving.services.checkpoints``), written by the group writer; ``querylog_check`` verifies
rows, chain and checkpoints (docs/security.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import hmac
import json
import logging
import operator
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from json.encoder import encode_basestring
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, func, select, text, update
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.exc import ProgrammingError
from sqlalchemy.orm import Session

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: SQLite's busy handler orders the processes
    fcntl = None  # type: ignore[assignment]

from serving.db.driver import DriverStatement
from serving.db.tables import QueryLogEntry, QueryLogHead
from serving.security import Principal, same_secret
from serving.services.querylog_flush import WalFlusher, sync_wal, wal_path
from serving.services.querylog_spool import OFFER_TTL_S, Offer, Offered, Spool, spool_directory
from serving.services.worker_thread import wake_or_start

GENESIS_HASH = "0" * 64
_log = logging.getLogger(__name__)
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
    return _canonical_json(_canonical_values(entry, _HASHED_FIELDS))


def _canonical_values(entry: QueryLogEntry | LoggedRead, names: tuple[str, ...]) -> dict[str, Any]:
    values = {name: getattr(entry, name) for name in names}
    if "at" in values:
        at = entry.at if entry.at.tzinfo else entry.at.replace(tzinfo=dt.UTC)
        values["at"] = at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if "personal_info_unmasked" in values:
        values["personal_info_unmasked"] = bool(values["personal_info_unmasked"])
    return values


def _canonical_json(values: dict[str, Any]) -> str:
    return json.dumps(values, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


# The entries of one append share everything but ``seq`` and ``uscc`` (one read: one time, one
# caller, one purpose), and those two are the last keys of the sorted canonical JSON. So the text
# up to ``"seq":`` is serialised once per run of entries sharing it, and each entry only appends
# its number and code, the same characters ``json.dumps`` writes for them (``canonical_entry``
# stays the definition; the checker uses it, and a test holds the two equal).
_PER_ENTRY_FIELDS = ("seq", "uscc")
_SHARED_FIELDS = tuple(f for f in _HASHED_FIELDS if f not in _PER_ENTRY_FIELDS)
if tuple(sorted(_HASHED_FIELDS))[-2:] != _PER_ENTRY_FIELDS:  # pragma: no cover - a change of the fields
    raise ImportError("the query log's seq and uscc must be the last keys of its canonical JSON")


def _shared_of(entry: LoggedRead) -> tuple[Any, ...]:
    return (entry.at, entry.actor, entry.actor_role, entry.actor_kind, entry.purpose, entry.endpoint, entry.outcome,
            entry.personal_info_unmasked)


def _canonical_head(entry: LoggedRead) -> str:
    """``canonical_entry(entry)`` up to and including ``"seq":``."""
    return _canonical_json(_canonical_values(entry, _SHARED_FIELDS))[:-1] + ',"seq":'


def stored_time(value: dt.datetime | str) -> dt.datetime:
    """An entry's ``at`` as read from the database, unconverted (a string on SQLite), as the
    column type gives it: timezone-aware UTC."""
    at = dt.datetime.fromisoformat(value) if isinstance(value, str) else value
    return at.replace(tzinfo=dt.UTC) if at.tzinfo is None else at.astimezone(dt.UTC)


def chain_hash(prev_hash: str, entry: QueryLogEntry | LoggedRead) -> str:
    """The unkeyed link of entries written before migration 0003 (checked, never written any more):
    anyone who can write the database can recompute it, which is why it was replaced."""
    return hashlib.sha256((prev_hash + canonical_entry(entry)).encode("utf-8")).hexdigest()


def entry_mac(key: str, prev_hash: str, entry: QueryLogEntry | LoggedRead) -> str:
    """The keyed link of an entry: HMAC-SHA256 under the log's MAC key."""
    return hmac.new(key.encode("utf-8"), (prev_hash + canonical_entry(entry)).encode("utf-8"),
                    hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class LogKeys:
    """What appending to one database's log needs besides the database: the MAC key, the
    checkpoint signing key (64 hex digits), file and interval, and the flush interval
    (``Settings.querylog_flush_ms`` in seconds; 0: every commit waits for its own fsync)."""

    mac_key: str
    signing_key: str
    checkpoints: Path
    checkpoint_interval_s: float = 10.0
    flush_interval_s: float = 0.0

    @classmethod
    def of(cls, settings: Any) -> LogKeys:
        return cls(settings.secret("querylog_mac_key"), settings.secret("querylog_signing_key"),
                   settings.checkpoint_path, settings.querylog_checkpoint_interval_s,
                   settings.querylog_flush_ms / 1000)


# database (URL without its password) → its log's keys, registered by the app that serves it
# (``create_app``) or the CLI that checks it: no entry is ever appended without its key
_keys_by_database: dict[str, LogKeys] = {}
_keys_lock = threading.Lock()


def _database_key(url: Any) -> str:
    return make_url(url).render_as_string(hide_password=True)


def use_keys(database_url: Any, keys: LogKeys) -> None:
    """Appends to the log of ``database_url`` in this process use ``keys`` from now on."""
    with _keys_lock:
        _keys_by_database[_database_key(database_url)] = keys


def keys_for(database_url: Any) -> LogKeys:
    """The keys registered for ``database_url`` (RuntimeError if none: a read is never answered
    without a keyed log entry)."""
    found = _keys_by_database.get(_database_key(database_url))
    if found is None:
        raise RuntimeError(f"the query log of {_database_key(database_url)} has no keys: the service registers "
                           "them at startup (querylog.use_keys)")
    return found


def append_entry(session: Session, *, principal: Principal, uscc: str, purpose: str, endpoint: str,
                 outcome: str = "allowed", personal_info_unmasked: bool = False,
                 commit: bool = True) -> LoggedRead:
    """Append one read to the log, durably, before returning (see ``append_entries``).

    "Durably" throughout this module: committed when the call returns, and on disk then (flush
    interval 0) or within the flush interval (``Settings.querylog_flush_ms``, ``querylog_flush``):
    a crash of the service never loses an entry whose call returned, a power cut at most the
    entries of the last interval."""
    return append_entries(session, principal=principal, reads=[(uscc, outcome)], purpose=purpose,
                          endpoint=endpoint, personal_info_unmasked=personal_info_unmasked, commit=commit)[0]


async def append_entry_async(engine: Engine, *, principal: Principal, uscc: str, purpose: str, endpoint: str,
                             outcome: str = "allowed", personal_info_unmasked: bool = False) -> LoggedRead:
    """``append_entry`` for a coroutine outside any transaction: the entry is durable when this
    returns, and the event loop serves other requests while the writer thread commits it."""
    entry = _new_entry(principal, uscc, outcome, purpose, endpoint, personal_info_unmasked)
    await group_writer(engine).append_async([entry])
    return entry


def append_entry_durably(engine: Engine, *, principal: Principal, uscc: str, purpose: str, endpoint: str,
                         outcome: str = "allowed", personal_info_unmasked: bool = False) -> LoggedRead:
    """``append_entry`` for a thread outside any transaction and without a session: the entry is
    durable when this returns (the thread waits for the group writer's commit)."""
    entry = _new_entry(principal, uscc, outcome, purpose, endpoint, personal_info_unmasked)
    group_writer(engine).append([entry])
    return entry


def append_entries(session: Session, *, principal: Principal, reads: list[tuple[str, str]], purpose: str,
                   endpoint: str, personal_info_unmasked: bool = False, commit: bool = True) -> list[LoggedRead]:
    """Append one entry per (uscc, outcome) in ``reads``, chained in order. The entries are one
    read (a batch of joint checks: one entry per code), so they share its time.

    With ``commit`` (the default) and a caller that only read, the caller's transaction is ended,
    then the entries are durably committed, when this returns, by the process's group-commit
    writer (``group_writer``): concurrent reads share one transaction. A caller that has written
    in its transaction commits its writes and the entries together (never one without the other).
    With ``commit=False`` the entries join the caller's transaction, which the caller commits.
    """
    if not reads:
        return []
    # one read, one time: the entries of one call share ``at`` (and so their canonical head)
    at = dt.datetime.now(dt.UTC)
    pending = [LoggedRead(at, principal.username, principal.role, principal.kind, uscc, purpose, endpoint, outcome,
                          personal_info_unmasked) for uscc, outcome in reads]
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
                 .returning(_HEAD.c.seq, _HEAD.c.last_hash, _HEAD.c.keyed_from))
_SET_HEAD_HASH = update(_HEAD).where(_HEAD.c.id == 1).values(last_hash=bindparam("new_last_hash"))
_INSERT = _LOG.insert()


def _chain_in_transaction(conn: Connection, entries: list[LoggedRead]) -> None:
    """Number and chain ``entries`` onto the head and insert them, inside ``conn``'s transaction
    (the same driver statements as the group writer, on the same DBAPI connection)."""
    key = keys_for(conn.engine.url).mac_key
    cursor = conn.connection.cursor()
    try:
        _chain_on_cursor(cursor, _driver_statements(conn.dialect), entries, key)
    finally:
        cursor.close()


def _link(entries: list[LoggedRead], head_seq: int, prev_hash: str, key: str) -> str:
    """Number ``entries`` to end at ``head_seq`` (the advanced head) and chain them onto
    ``prev_hash`` with the MAC ``key``; returns the new last hash."""
    seq = head_seq - len(entries)
    mac_key = key.encode("utf-8")
    digest = hmac.digest  # one-shot HMAC in C: the same bytes as hmac.new(...).digest()
    shared: tuple[Any, ...] | None = None
    head = ""
    for entry in entries:
        seq += 1
        entry.seq, entry.prev_hash = seq, prev_hash
        if (now := _shared_of(entry)) != shared:
            shared, head = now, _canonical_head(entry)
        text = f'{prev_hash}{head}{seq},"uscc":{encode_basestring(entry.uscc)}}}'
        entry.entry_hash = prev_hash = digest(mac_key, text.encode("utf-8"), "sha256").hex()
    return prev_hash


@dataclass(frozen=True)
class _DriverStatements:
    """The log's three statements compiled once for one database's driver, with the column
    types' bind conversions: the group writer runs them on a DBAPI cursor, where the same
    statements through ``Connection.execute`` cost ≈ 100 µs more per commit (196 → 102 µs of CPU
    for a one-entry commit)."""

    advance: DriverStatement
    insert: DriverStatement
    set_head: DriverStatement
    to_driver: dict[str, Callable[[Any], Any]]

    @classmethod
    def for_dialect(cls, dialect: Dialect) -> _DriverStatements:
        processors = {c.key: c.type.dialect_impl(dialect).bind_processor(dialect) for c in _LOG.columns}
        return cls(*(DriverStatement.compile(s, dialect) for s in (_ADVANCE_HEAD, _INSERT, _SET_HEAD_HASH)),
                   {k: f for k, f in processors.items() if f is not None})

    def row(self, entry: LoggedRead) -> Any:
        values = {name: getattr(entry, name) for name in _COLUMNS}
        for name, convert in self.to_driver.items():
            values[name] = convert(values[name])
        return self.insert.params(values)

    def rows(self, entries: list[LoggedRead]) -> list[Any]:
        """``[self.row(e) for e in entries]``, converting the values entries share (time, caller,
        purpose …) once per run of entries sharing them rather than once per entry."""
        insert = self.insert
        if insert.order is not None and not insert.fixed and len(insert.order) > 1:
            pack: Callable[[dict[str, Any]], Any] = operator.itemgetter(*insert.order)
        else:  # named parameters: each row its own dict (``values`` is reused below)
            def pack(values: dict[str, Any]) -> Any:
                return insert.params(dict(values))
        per_entry = ("seq", "uscc", "prev_hash", "entry_hash")
        own = {name: self.to_driver.get(name) for name in per_entry}
        if any(own.values()):  # no driver converts these today; if one does, the plain path
            return [self.row(e) for e in entries]
        out = []
        shared: tuple[Any, ...] | None = None
        values: dict[str, Any] = {}
        for entry in entries:
            if (now := _shared_of(entry)) != shared:
                shared = now
                values = {name: getattr(entry, name) for name in _COLUMNS if name not in per_entry}
                for name, convert in self.to_driver.items():
                    values[name] = convert(values[name])
            values["seq"], values["uscc"] = entry.seq, entry.uscc
            values["prev_hash"], values["entry_hash"] = entry.prev_hash, entry.entry_hash
            out.append(pack(values))
        return out


@lru_cache(maxsize=8)
def _driver_statements(dialect: Dialect) -> _DriverStatements:
    """The log's statements for one engine's dialect, compiled once."""
    return _DriverStatements.for_dialect(dialect)


def _advanced_head(cursor: Any) -> tuple[int, str, int]:
    """The head (seq, last hash, keyed_from) the advance statement just returned on ``cursor``."""
    head = cursor.fetchone()
    if head is None:  # the head row is gone (tampering): no entry, so the read is refused too
        raise RuntimeError("the query log's head row is missing: run `tiers querylog check`")
    return head


def _chain_on_cursor(cursor: Any, sql: _DriverStatements, entries: list[LoggedRead],
                     key: str) -> tuple[int, str, int]:
    """Number and chain ``entries`` onto the head and insert them, in the cursor's transaction;
    returns the new head (seq, last hash, keyed_from)."""
    cursor.execute(sql.advance.sql, sql.advance.params({"n_entries": len(entries)}))
    seq, prev_hash, keyed_from = _advanced_head(cursor)
    last_hash = _link(entries, seq, prev_hash, key)
    cursor.executemany(sql.insert.sql, sql.rows(entries))
    cursor.execute(sql.set_head.sql, sql.set_head.params({"new_last_hash": last_hash}))
    return seq, last_hash, keyed_from


@dataclass(eq=False, slots=True)
class _Batch:
    """One caller's entries waiting in the group-commit queue, and how to tell it they are durable:
    a thread's event, or a future on an event loop (set from the writer thread)."""

    entries: list[LoggedRead]
    event: threading.Event | None = None
    loop: asyncio.AbstractEventLoop | None = None
    future: asyncio.Future[None] | None = None
    error: BaseException | None = None


class GroupCommitWriter:
    """Group commit of query-log appends for one database in one process.

    Callers queue their entries and wait, a thread on an event and a coroutine on a future (its
    event loop is never blocked), until a transaction containing them has committed. One writer
    thread takes everything queued so far, chains it in order under the head-row lock, commits
    once (one fsync for the whole group) and wakes the callers it served: each waiting thread,
    and each event loop once per group. Under load every commit carries all the reads that
    arrived during the previous one, so the log keeps up with the request rate while every read
    is still durable before it is answered. The thread is started on demand and ends after
    ``idle_s`` without work.

    After waking its callers, the writer hands the head it committed to the checkpoint thread
    (``serving.services.checkpoints.CheckpointWriter``: sign seq, MAC and time, append, fsync)
    when ``checkpoint_interval_s`` has passed since its last one, and always before it ends idle:
    the tail of the log is anchored outside the database within seconds, and neither a request
    nor the next commit waits for the signature or the checkpoint file's fsync.

    On PostgreSQL the group's transaction commits without waiting for its WAL, which releases
    the head row's lock at once, and the writer waits for durability afterwards, outside the lock
    (``_chain_and_commit_pg``): the workers' commits do not queue behind each other's WAL flush.

    For SQLite a ``flock`` on ``<database>-querylog.lock`` orders the writers of different
    processes: the kernel wakes the next one as soon as the lock is released, where SQLite's
    own busy handler would sleep 1, 2, 5, 10 … ms between retries. A writer that finds it taken
    offers its group to the holder, whose transaction then carries both workers' reads
    (``serving.services.querylog_spool``: the offering writer still answers only once the
    database holds its entries, or commits them itself).

    With a flush interval of 0 the commit keeps SQLite's own fsync (``synchronous=FULL`` by
    default) and its automatic WAL checkpoint inside the lock: a read is answered once its entry
    is on disk. With an interval W > 0 (``LogKeys.flush_interval_s``, the default 10 ms) the
    commit runs at ``synchronous=NORMAL`` and a read is answered once its entry is committed
    (a crash of the service loses nothing); the process's ``querylog_flush.WalFlusher`` fsyncs the
    WAL within W, so a power cut loses at most the last W ms of entries, never a link of the chain
    before them. Only heads it has flushed are signed into checkpoints (``_anchor``). On
    PostgreSQL the same setting makes the log's transactions ``SET LOCAL synchronous_commit =
    off`` (the server's WAL writer flushes them: docs/postgres.md).
    """

    def __init__(self, engine: Engine, idle_s: float = 1.0) -> None:
        self._engine = weakref.ref(engine)  # a strong reference would keep the registry's key alive
        self._idle_s = idle_s
        self._cond = threading.Condition()
        self._queue: list[_Batch] = []
        self._thread: threading.Thread | None = None  # the writer thread while it runs
        database = engine.url.database if engine.url.get_backend_name() == "sqlite" else None
        self._keys = keys_for(engine.url)
        self._spool = (Spool(Path(database + "-querylog.lock"), spool_directory(database),
                             self._keys.mac_key, LoggedRead)
                       if database and database != ":memory:" and fcntl is not None else None)
        self._raw: Any = None  # the DBAPI connection of the writer's current turn
        # PostgreSQL: commit without waiting for the WAL, then wait outside the head lock
        # (``_chain_and_commit_pg``); None until the first commit asks the server whether it can
        pg = engine.dialect.name == "postgresql" and engine.dialect.driver == "psycopg"
        self._flush_after: bool | None = None if pg else False
        self._committed: tuple[int, str, int] | None = None  # the head this writer last committed
        self._anchored_seq = 0  # … and last signed into a checkpoint
        self._anchored_at = time.monotonic()
        self._flusher: WalFlusher | None = None  # W > 0 on an SQLite file: made on the first commit
        self._postgres = engine.url.get_backend_name() == "postgresql"

    def append(self, entries: list[LoggedRead]) -> None:
        """Chain and durably commit ``entries`` (their ``seq`` and hashes are filled in); blocks."""
        batch = _Batch(entries, event=threading.Event())
        self._submit(batch)
        batch.event.wait()
        if batch.error is not None:
            raise batch.error

    async def append_async(self, entries: list[LoggedRead]) -> None:
        """``append`` for a coroutine: waits on its event loop, which goes on serving meanwhile.
        A caller cancelled while waiting leaves its entries to be committed all the same."""
        loop = asyncio.get_running_loop()
        batch = _Batch(entries, loop=loop, future=loop.create_future())
        self._submit(batch)
        await batch.future

    def _submit(self, batch: _Batch) -> None:
        with self._cond:
            self._queue.append(batch)
            try:
                self._thread = wake_or_start(self._cond, self._thread, self._run, "querylog-writer")
            except BaseException:  # no writer (e.g. the thread limit): this caller fails, nobody waits
                self._queue.remove(batch)
                raise

    def _run(self) -> None:
        carried: tuple[list[_Batch], Offer | None] | None = None  # offered before the last release
        group: list[_Batch] = []  # the round's batches: woken if the writer itself breaks
        try:
            while True:
                if carried is None:
                    with self._cond:
                        if not self._queue:
                            self._cond.wait(self._idle_s)
                    if not self._queue and self._flusher is not None:
                        self._flusher.flush()  # before falling idle: the head anchored below is on disk
                    with self._cond:
                        idle = not self._queue
                        if idle:  # the next append starts a new thread
                            self._thread = None
                        else:
                            group, self._queue = self._queue, []
                    if idle:
                        self._anchor(idle=True)
                        if self._spool is not None:
                            self._spool.tidy()
                        return
                    offer = None
                else:
                    (group, offer), carried = carried, None
                outcomes, carried = self._round(group, offer)
                group = []
                for batches, error in outcomes:  # a failed commit: its callers learn they were not logged
                    _wake(batches, error)
                if time.monotonic() - self._anchored_at >= self._keys.checkpoint_interval_s:
                    self._anchor()
        except BaseException as exc:  # pragma: no cover - the writer itself broke: strand nobody
            with self._cond:
                self._thread = None
                stranded, self._queue = self._queue, []
            # a batch already woken is woken again with the error: harmless (its caller has gone on)
            _wake([*group, *(carried[0] if carried else []), *stranded], exc)
            raise

    def _anchor(self, idle: bool = False) -> None:
        """Hand the head this writer last committed, if not handed over yet, to the checkpoint
        thread (``checkpoints.CheckpointWriter``): signing it and the file's fsync happen there.
        With a flusher, only a head on disk: the newest it flushed, or (``idle``) everything, once
        flushed; a checkpoint never anchors an entry a power cut could take back."""
        self._anchored_at = time.monotonic()
        head = self._committed
        if self._flusher is not None and not (idle and self._flusher.flush()):
            head = self._flusher.durable_head
        if head is None or head[0] <= self._anchored_seq:
            return
        from serving.services.checkpoints import checkpoint_writer

        checkpoint_writer(self._keys.checkpoints, self._keys.signing_key).submit(head)
        self._anchored_seq = head[0]

    def _round(self, group: list[_Batch], offer: Offer | None
               ) -> tuple[list[tuple[list[_Batch], BaseException | None]], tuple[list[_Batch], Offer | None] | None]:
        """One turn of this writer: commit ``group`` (or find it committed by another worker, if it
        was offered as ``offer``), with what was queued while waiting and what other workers
        offered, in one transaction; then, still under the lock, offer what was queued during the
        commit, so that whoever takes the lock next commits it. Returns each set of batches with
        its error (None: durable), and the batches carried to the next turn with their offer."""
        engine = self._engine()
        if engine is None:  # pragma: no cover - the caller's session holds the engine
            return [(group, RuntimeError("the query log's engine was disposed"))], None
        spool = self._spool
        try:
            # the connection first, then the cross-process lock: waiting for a busy pool while
            # holding the lock would stall the other workers' log writes too
            self._raw = engine.raw_connection()  # from the service's pool (which counts the writer)
        except BaseException as exc:
            return [(group, exc)], None
        outcomes: list[tuple[list[_Batch], BaseException | None]] = []
        carried: tuple[list[_Batch], Offer | None] | None = None
        try:
            if spool is None:  # PostgreSQL (its lock is not held across the flush), in-memory SQLite
                return [(group, self._commit_entries(_entries_of(group)))], None
            _read_subject_leaves(self._raw, _entries_of(group))  # before the lock: see its doc
            try:
                offer, held = spool.acquire(_entries_of(group), offered=offer)
                if not held:  # marked taken while the lock was busy: checked without the lock
                    if self._was_taken(offer, group):
                        _wake(group, None)
                        return [], None
                    spool.lock()  # a mark not believed: this writer commits the group itself
                    offer = None
            except BaseException as exc:
                return [(group, exc)], None
            try:
                own = group
                if offer is not None and self._was_taken(offer, group):
                    _wake(group, None)  # committed by another worker, checked here: answered at once
                    own = []
                own = own + self._take_queue()  # reads queued while this writer waited: this commit
                outcomes.append((own, self._commit_entries(_entries_of(own))))
                if (later := self._take_queue()):  # reads queued during the commit: offered now
                    carried = (later, spool.offer(_entries_of(later)))
            finally:
                spool.release()
            return [(b, e) for b, e in outcomes if b], carried
        finally:
            raw, self._raw = self._raw, None
            raw.close()  # back to the pool (which resets, or discards, a connection left broken)

    def _was_taken(self, offer: Offer, group: list[_Batch]) -> bool:
        """Whether another worker committed the offered ``group``: its mark says where, and the
        database holds the MAC that the group's own entries give there (anything else: no)."""
        spool = self._spool
        try:
            taken = spool.taken_at(offer)
            spool.withdraw(offer)
            return taken is not None and _is_chained_at(self._raw, _entries_of(group), *taken, self._keys.mac_key)
        except Exception:  # unreadable mark or database: this writer commits the group itself
            with contextlib.suppress(Exception):
                self._raw.rollback()
            return False

    def _take_queue(self) -> list[_Batch]:
        with self._cond:
            taken, self._queue = self._queue, []
        return taken

    def _commit_entries(self, entries: list[LoggedRead]) -> BaseException | None:
        """``_commit`` under the held lock; the error instead of raising it."""
        if not entries and (self._spool is None or not self._spool.anything_offered()):
            return None
        try:
            head = self._commit(entries)
        except BaseException as exc:
            with contextlib.suppress(Exception):  # the commit's own error is the one to report
                self._raw.rollback()
            return exc
        if head is not None:
            self._committed = head
        return None

    def _commit(self, entries: list[LoggedRead]) -> tuple[int, str, int] | None:
        """Chain and commit ``entries`` and the groups other workers offered (``querylog_spool``)
        in one transaction, on the round's connection, under the held lock; then mark the offered
        groups as taken. Returns the new head (None: nothing to commit). Durable when it returns,
        or, with a flush interval, committed and flushed by the flusher within it."""
        engine = self._engine()
        flusher = self._flusher_covering()  # before anything is written: see querylog_flush
        others = self._spool.offered() if self._spool is not None else []
        if flusher is None:
            return self._commit_all(engine, entries, others)
        cursor = self._raw.cursor()
        restore = None  # the connection's own setting, put back for the pool's other users
        try:
            restore = int(cursor.execute("PRAGMA synchronous").fetchone()[0])
            cursor.execute("PRAGMA synchronous=NORMAL")
            head = self._commit_all(engine, entries, others)
        finally:
            if restore is not None:
                with contextlib.suppress(Exception):  # a broken connection is discarded by the pool
                    cursor.execute(f"PRAGMA synchronous={restore}")
            cursor.close()
        if head is not None:
            flusher.committed(head)
        return head

    def _flusher_covering(self) -> WalFlusher | None:
        """The flusher when this commit may skip its own fsync (SQLite file, W > 0, the WAL's
        descriptor open: ``WalFlusher.covers``); raises ``FlushFailed`` after an fsync error."""
        interval = self._keys.flush_interval_s
        if interval <= 0 or self._spool is None:
            return None
        if self._flusher is None:
            path = wal_path(self._raw)
            if path is None:  # pragma: no cover - a file database has a WAL path
                return None
            self._flusher = WalFlusher(path, interval)
        return self._flusher if self._flusher.covers() else None

    def _commit_all(self, engine: Engine, entries: list[LoggedRead], others: list[Offered]
                    ) -> tuple[int, str, int] | None:
        if others:
            others = _claim_offers(self._raw, others)
        everything = [*entries, *(e for o in others for e in o.entries)]
        if not everything:
            return None
        if self._postgres and self._keys.flush_interval_s > 0 and _psycopg_pipelines():
            # bounded loss (TIERS_QUERYLOG_FLUSH_MS > 0): the same commit without waiting for the WAL,
            # and no durability barrier before the answer: the server's WAL writer flushes it
            # (docs/postgres.md); without pipelines, the synchronous commit below
            head = _chain_and_commit_pg(self._raw, engine, everything, self._keys.mac_key, barrier=False)
        else:
            if self._flush_after is None:  # PostgreSQL's first commit of this writer: can it?
                self._flush_after = _can_flush_after(self._raw, engine.dialect)
            commit = _chain_and_commit_pg if self._flush_after else _chain_and_commit
            head = commit(self._raw, engine, everything, self._keys.mac_key)
        for other in others:  # after the commit returned: their rows are committed (durable: see _commit)
            with contextlib.suppress(OSError):  # no mark: its worker logs the group itself
                self._spool.mark_taken(other, other.entries[-1].seq, other.entries[0].prev_hash)
        return head


# the groups offered between workers that were chained already (migration 0013): SQLite's
# parameter style, as only SQLite's writers offer groups
_TAKEN_OFFERS = "SELECT group_id FROM query_log_offers WHERE group_id IN ({})"
_TAKE_OFFER = "INSERT INTO query_log_offers (group_id, made_at) VALUES (?, ?)"
_PRUNE_OFFERS = "DELETE FROM query_log_offers WHERE made_at < ?"


def _claim_offers(raw: Any, others: list[Offered]) -> list[Offered]:
    """The offered groups not chained before, recorded as chained in ``raw``'s transaction (the
    commit that chains them): each offer is chained once, a copy put back later is skipped (and
    removed). Records older than twice ``OFFER_TTL_S`` are pruned: the spool refuses such offers."""
    cursor = raw.cursor()
    try:
        groups = list(dict.fromkeys(o.group for o in others))
        try:
            cursor.execute(_TAKEN_OFFERS.format(",".join("?" * len(groups))), groups)
            taken = {row[0] for row in cursor.fetchall()}
        except Exception:  # no table yet (a schema before 0013): no offer taken, each worker commits its own
            return []
        fresh: list[Offered] = []
        for other in others:
            if other.group in taken:
                with contextlib.suppress(OSError):  # a copy: no one waits for it
                    other.path.unlink()
                continue
            taken.add(other.group)
            fresh.append(other)
        cursor.executemany(_TAKE_OFFER, [(o.group, o.made_at) for o in fresh])
        cursor.execute(_PRUNE_OFFERS, (time.time() - 2 * OFFER_TTL_S,))
    finally:
        cursor.close()
    return fresh


# Where a new entry of each subject goes in the log's index by subject: after the subject's last
# entry, which SQLite seeks (``seq`` is the index's next column: one leaf, not the subject's run).
# One statement for many subjects; the codes padded to a power of two (a few statement texts).
_SUBJECT_LAST = "SELECT (SELECT max(seq) FROM query_log WHERE uscc = v.column1) FROM (VALUES {}) v"
_SUBJECTS_PER_READ = 512


def _read_subject_leaves(raw: Any, entries: list[LoggedRead]) -> None:
    """Read, outside the cross-process lock, the pages of the log's index by subject
    (``ix_query_log_uscc``) that ``entries`` will be inserted into. A new entry goes after its
    subject's last, at a place in the index that reads of random subjects spread over all of it:
    on a log of tens of millions of entries, a leaf not in the OS's cache, which the insert would
    read from disk while holding the lock that every worker's log commits wait for. Read here, the
    wait happens before the lock and the insert finds the page in memory (SQLite's own cache is
    dropped whenever another connection commits; the OS's is not). A read only: no snapshot is
    kept (the driver opens no transaction for a SELECT), and any error is ignored (the commit
    reads what it needs by itself)."""
    codes = list(dict.fromkeys(e.uscc for e in entries))
    cursor = raw.cursor()
    try:
        for start in range(0, len(codes), _SUBJECTS_PER_READ):
            chunk = codes[start:start + _SUBJECTS_PER_READ]
            size = 1 << (len(chunk) - 1).bit_length()
            cursor.execute(_SUBJECT_LAST.format(",".join(["(?)"] * size)), chunk + chunk[-1:] * (size - len(chunk)))
            cursor.fetchall()
    except Exception:  # noqa: S110 - a hint for the OS's cache: the commit does without it
        pass
    finally:
        cursor.close()


def _entries_of(batches: list[_Batch]) -> list[LoggedRead]:
    return [e for b in batches for e in b.entries]


def _chain_and_commit(raw: Any, engine: Engine, entries: list[LoggedRead], key: str) -> tuple[int, str, int]:
    """Chain and insert ``entries`` on the DBAPI connection ``raw`` and commit; the new head,
    durable when this returns (on PostgreSQL the writers use ``_chain_and_commit_pg``)."""
    cursor = raw.cursor()
    head = _chain_on_cursor(cursor, _driver_statements(engine.dialect), entries, key)
    cursor.close()
    raw.commit()
    return head


def _chain_and_commit_pg(raw: Any, engine: Engine, entries: list[LoggedRead], key: str, *,
                         barrier: bool = True) -> tuple[int, str, int]:
    """``_chain_and_commit`` on PostgreSQL (psycopg): the transaction commits without waiting for
    its WAL, so the head row's lock is held only while the statements run, then
    ``_PG_FLUSH_BARRIER`` waits for durability outside it. Three round trips in all, in pipelines
    (before this, five: each a wait for a scheduler turn of the server's backend on a busy
    machine): begin and advance the head; insert, set the head's hash and commit; the barrier.
    ``barrier=False`` (a flush interval > 0): answered once committed, the WAL writer flushes it."""
    conn = raw.driver_connection
    sql = _driver_statements(engine.dialect)
    conn.autocommit = True  # the transaction's BEGIN and COMMIT are sent in the pipelines below
    cursor = conn.cursor()
    try:
        with conn.pipeline():
            cursor.execute("BEGIN")
            cursor.execute(_PG_COMMIT_WITHOUT_WAITING)
            cursor.execute(sql.advance.sql, sql.advance.params({"n_entries": len(entries)}))
            seq, prev_hash, keyed_from = _advanced_head(cursor)
        last_hash = _link(entries, seq, prev_hash, key)
        with conn.pipeline():
            cursor.executemany(sql.insert.sql, sql.rows(entries))
            cursor.execute(sql.set_head.sql, sql.set_head.params({"new_last_hash": last_hash}))
            cursor.execute("COMMIT")
        if barrier:
            cursor.execute(_PG_FLUSH_BARRIER)  # autocommit: its own transaction, committed as the session says
    except BaseException:
        with contextlib.suppress(Exception):
            status = conn.info.transaction_status
            if status != type(status).IDLE:  # a transaction left open (or failed) by the error
                conn.execute("ROLLBACK")
        raise
    finally:
        with contextlib.suppress(Exception):
            cursor.close()
        try:
            conn.autocommit = False  # as the pool lends its connections
        except Exception:  # a broken connection: the pool must not lend it again
            raw.invalidate()
    return seq, last_hash, keyed_from


# PostgreSQL: the log's transaction commits without waiting for its WAL to be flushed (this
# transaction only: the session's setting is untouched), so the head row's lock, which every
# worker's log commit takes, is released once the commit record is written instead of once the
# disk has it. Held across the flush, it made the workers' commits run one after another, each an
# fsync (issue 22: 15.7 ms a group, up to 256 ms, the reads' p99 in seconds). The entries are
# visible to others from then on, and another worker may chain onto them before they are
# durable: that is safe, as WAL is replayed in order, so a crash loses a tail of the chain, never
# an entry before one kept (its commit record precedes every later group's in the WAL).
_PG_COMMIT_WITHOUT_WAITING = "SET LOCAL synchronous_commit = off"
# … and no read is answered before its entry is durable: a transaction that writes WAL (a
# transactional logical-decoding message: no table, no lock; any role may run it) commits under
# the session's own ``synchronous_commit``, which flushes (or replicates, as that setting says)
# the WAL up to its commit record, and so up to the log's commit before it. The two workers'
# barriers share a flush when they overlap, as PostgreSQL groups concurrent WAL flushes.
_PG_FLUSH_BARRIER = "SELECT pg_logical_emit_message(true, 'tiers-querylog', '')"


def _flush_barrier(raw: Any) -> None:
    """Wait until everything this connection committed is as durable as a commit of the session's
    ``synchronous_commit`` (PostgreSQL): commit a transaction whose only write is a WAL record."""
    cursor = raw.cursor()
    try:
        cursor.execute(_PG_FLUSH_BARRIER)
    finally:
        cursor.close()
    raw.commit()


def _psycopg_pipelines() -> bool:
    import psycopg

    return psycopg.Pipeline.is_supported()


def _can_flush_after(raw: Any, dialect: Dialect) -> bool:
    """Whether the barrier runs on this PostgreSQL (run once: harmless). A server that refuses it
    (the function revoked, an older or a foreign server) is no error: the log then commits each
    group synchronously under the head lock, as before. Any other error (a lost connection)
    propagates: the question is asked again at the next commit. Without psycopg's pipeline mode
    (a libpq before 14) the same."""
    if not _psycopg_pipelines():
        return False
    try:
        _flush_barrier(raw)
        return True
    except dialect.loaded_dbapi.ProgrammingError as exc:
        with contextlib.suppress(Exception):
            raw.rollback()
        _log.warning("query log: %s fails (%s): each group commits synchronously under the head lock, "
                     "one worker's commit after another's", _PG_FLUSH_BARRIER, exc)
        return False


# the hash stored for one entry (SQLite's parameter style: only SQLite's writers offer groups)
_STORED_HASH = "SELECT entry_hash FROM query_log WHERE seq = ?"


def _is_chained_at(raw: Any, entries: list[LoggedRead], last_seq: int, prev_hash: str, key: str) -> bool:
    """Whether ``entries``, chained onto ``prev_hash`` so that the last is ``last_seq``, are what
    the database holds: the last one's MAC (over all of them, through the chain) equals the
    committed ``entry_hash`` at ``last_seq``. Fills in their ``seq`` and hashes."""
    if last_seq < len(entries):
        return False
    expected = _link(entries, last_seq, prev_hash, key)
    cursor = raw.cursor()
    try:
        cursor.execute(_STORED_HASH, (last_seq,))
        row = cursor.fetchone()
    finally:
        cursor.close()
    raw.rollback()  # end the read: a commit that follows starts from the newest head
    return row is not None and same_secret(expected, str(row[0]))


def _wake(group: list[_Batch], error: BaseException | None) -> None:
    """Tell the callers of ``group`` their entries are durable (or why not): threads directly,
    each event loop with one call for all its coroutines."""
    by_loop: dict[asyncio.AbstractEventLoop, list[asyncio.Future[None]]] = {}
    for batch in group:
        batch.error = error
        if batch.event is not None:
            batch.event.set()
        else:
            by_loop.setdefault(batch.loop, []).append(batch.future)
    for loop, futures in by_loop.items():
        with contextlib.suppress(RuntimeError):  # a loop closed meanwhile has no one left to tell
            loop.call_soon_threadsafe(_settle, futures, error)


def _settle(futures: list[asyncio.Future[None]], error: BaseException | None) -> None:
    for future in futures:
        if not future.done():  # a cancelled caller
            if error is None:
                future.set_result(None)
            else:
                future.set_exception(error)


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


def list_entries(session: Session, *, uscc: str | None = None, actor: str | None = None,
                 since: dt.datetime | None = None, until: dt.datetime | None = None,
                 offset: int = 0, limit: int = 100) -> tuple[int, list[QueryLogEntry]]:
    """Entries newest first, filtered by subject, actor and time (``since`` ≤ at < ``until``).
    ``actor``: the reader as logged, or a person as the user list shows them (part of the username,
    any case, or of the 姓名: ``users.usernames_matching``)."""
    from serving.services.users import usernames_matching

    stmt = select(QueryLogEntry)
    if uscc:
        stmt = stmt.where(QueryLogEntry.uscc == uscc)
    if actor:
        stmt = stmt.where(QueryLogEntry.actor.in_({actor, *usernames_matching(session, actor)}))
    if since is not None:
        stmt = stmt.where(QueryLogEntry.at >= since)
    if until is not None:
        stmt = stmt.where(QueryLogEntry.at < until)
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = session.scalars(stmt.order_by(QueryLogEntry.seq.desc()).offset(offset).limit(limit)).all()
    return total, list(rows)


def anchor_now(session: Session) -> Any:
    """Sign and append a checkpoint of the log's current head (None when its head row is gone);
    returns the `Checkpoint`. The group writer anchors by itself; this is for the service's start,
    `tiers querylog checkpoint` and an office's cron. An empty log is anchored too (entry 0, the
    genesis hash): the service's first start then records the keyed chain's start outside the
    database (``checkpoints.keyed_from_path``), and a service killed before its writer's first
    checkpoint leaves a signed checkpoint behind, not a log that reads as one whose checkpoint
    file was deleted (``querylog_check``: ``no_checkpoint``)."""
    from serving.services.checkpoints import append_checkpoint, sign_checkpoint

    head = session.get(QueryLogHead, 1)
    if head is None:
        return None
    keys = keys_for(session.get_bind().url)
    if session.get_bind().url.get_backend_name() == "sqlite":
        # a worker's commits may still wait for its flusher: the head signed must be on disk
        sync_wal(wal_path(session.connection().connection.dbapi_connection))
    checkpoint = sign_checkpoint(keys.signing_key, head.seq, head.last_hash, head.keyed_from)
    session.rollback()  # nothing was written; end the read before the file's fsync
    _wait_until_durable(session)
    append_checkpoint(keys.checkpoints, checkpoint)
    return checkpoint


def _wait_until_durable(session: Session) -> None:
    """PostgreSQL: wait until what ``session`` has seen is durable before it is signed. The log's
    writers commit without waiting for the WAL (``_PG_COMMIT_WITHOUT_WAITING``), so a head just
    read may not be on disk yet: a checkpoint of it, were the server to crash, would be ahead of
    the log it recovers (what ``tiers querylog check`` reports as a truncated log). A server that
    refuses the barrier has writers that commit synchronously (``_can_flush_after``): what they
    committed is durable once seen."""
    if session.get_bind().dialect.name != "postgresql":
        return
    try:
        session.execute(text(_PG_FLUSH_BARRIER))
        session.commit()
    except ProgrammingError:
        session.rollback()
