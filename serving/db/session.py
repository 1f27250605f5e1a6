"""Engines and sessions. One engine per database URL per process, created on first use."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from threading import Lock
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError, OperationalError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool

from serving.db.reason_labels import LabelCache

_engines: dict[str, Engine] = {}
_factories: dict[str, sessionmaker[Session]] = {}
# per database URL: the read-only engine of the event loops' connections, and per loop its connection
_loop_readers: dict[str, tuple[Engine, dict[int, tuple[asyncio.AbstractEventLoop, Connection]]]] = {}
_lock = Lock()


def make_engine(database_url: str, *, pool_size: int = 5, max_overflow: int = 10,
                pool_timeout_s: float = 30.0, sqlite_synchronous: str = "FULL",
                read_only: bool = False) -> Engine:
    """A new engine; for SQLite the parent directory is created and foreign keys enforced.

    The service sizes ``pool_size`` to its thread pool with no overflow, and a short
    ``pool_timeout_s``, so a request that finds no connection free fails fast (503) instead of
    waiting 30 s; the defaults suit the CLI and scripts. ``sqlite_synchronous`` is SQLite's
    ``PRAGMA synchronous`` (see ``Settings.sqlite_synchronous`` for the durability trade-off).
    """
    if sqlite_synchronous not in {"FULL", "NORMAL"}:
        raise ValueError(f"sqlite_synchronous={sqlite_synchronous!r}: use FULL or NORMAL (never OFF: "
                         "the query log must survive a crash)")
    url = make_url(database_url)
    # the engine's own state, reachable from its connections: the reason labels its reads have seen
    state = {"execution_options": {"reason_labels": LabelCache()}}
    pool: dict[str, Any] = {"pool_size": pool_size, "max_overflow": max_overflow, "pool_timeout": pool_timeout_s,
                            **state}
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        if not url.database or url.database == ":memory:":
            # one in-memory database per connection: SQLAlchemy's own pool applies, and no label
            # cache (its connections' databases are not one)
            pool, state = {}, {}
        # A read-only connection serves an event loop: it must never wait long for a lock (which in
        # WAL mode only recovery or a lost -shm file takes); its caller falls back to a thread.
        timeout = 0.1 if read_only else 30
        if read_only:
            pool = {"poolclass": NullPool, **state}
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": timeout}, **pool)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record) -> None:  # pragma: no cover - trivial
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            # WAL lets page reads continue while a worker appends to the query log
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA synchronous={sqlite_synchronous}")
            if read_only:
                cursor.execute("PRAGMA query_only=ON")
            cursor.close()

        return engine
    engine = create_engine(url, **pool)
    ping_when_idle(engine)
    return engine


# a connection back in the pool for less than this is not pinged when it is taken again
IDLE_PING_S = 1.0


def ping_when_idle(engine: Engine, idle_s: float = IDLE_PING_S) -> None:
    """Check a pooled connection with a round trip before use only when it sat idle ``idle_s``
    or more: a server restarted or a connection dropped meanwhile is replaced before a request
    runs on it (``pool_pre_ping``'s promise), without a ``SELECT 1`` before every statement of
    a busy service (at 500 reads/s, two extra round trips per logged read: the read's and the
    log writer's). A connection lost while in use is invalidated by the statement that finds it."""

    @event.listens_for(engine, "checkin")
    def _idle_from(_dbapi_conn, record) -> None:  # pragma: no cover - trivial
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping_if_idle(dbapi_conn, record, _proxy) -> None:
        since = record.info.pop("idle_since", None)
        if since is None or time.monotonic() - since < idle_s:  # just connected, or busy
            return
        try:
            engine.dialect.do_ping(dbapi_conn)
        except engine.dialect.loaded_dbapi.Error as exc:
            # the pool discards this connection and takes another (or connects anew)
            raise DisconnectionError(f"the pooled connection was lost: {exc}") from exc


def shown_url(database_url: str) -> str:
    """``database_url`` as it was written, its password (if any) replaced by ``***``: safe to print."""
    return re.sub(r"^([\w+.-]+://[^:/@?]*):[^@/?]*@", r"\1:***@", database_url)


def unreachable(database_url: str) -> str | None:
    """None when a connection to ``database_url`` opens; else the driver's reason, on one line
    (a PostgreSQL server not running on that socket or port, a database not created, …)."""
    engine = make_engine(database_url, pool_size=1, max_overflow=0)
    try:
        with engine.connect():
            return None
    except OperationalError as exc:
        return " ".join(str(exc.orig if exc.orig is not None else exc).split())
    finally:
        engine.dispose()


# collations under which text sorts by code point, as the lists' prefix searches and key cursors
# assume (``serving.services.subject_lists``: a USCC prefix ends at "~", a name prefix at U+10FFFF)
_CODE_POINT_COLLATIONS = {"C", "POSIX", "C.UTF-8", "C.utf8"}


def collation_problem(database_url: str) -> str | None:
    """None when the database sorts text by code point (SQLite always; PostgreSQL with a C
    collation); else what it sorts by. Under a language's collation (ICU, or a libc locale such as
    zh_CN.UTF-8) "~" sorts before digits and letters, so a search by USCC prefix finds nothing."""
    if make_url(database_url).get_backend_name() != "postgresql":
        return None
    from sqlalchemy import text

    engine = make_engine(database_url, pool_size=1, max_overflow=0)
    try:
        with engine.connect() as conn:
            provider, collate, icu = conn.execute(text(
                "SELECT datlocprovider, datcollate, daticulocale FROM pg_database "
                "WHERE datname = current_database()")).one()
    finally:
        engine.dispose()
    if provider == "i":
        return f"ICU locale {icu!r}"
    return None if collate in _CODE_POINT_COLLATIONS else f"collation {collate!r}"


def connection_limit(database_url: str) -> int | None:
    """How many connections the database server lets ordinary users open (PostgreSQL's
    ``max_connections`` less its reserved ones); None for SQLite (no server)."""
    if make_url(database_url).get_backend_name() != "postgresql":
        return None
    from sqlalchemy import text

    engine = make_engine(database_url, pool_size=1, max_overflow=0)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text(
                "SELECT current_setting('max_connections')::int - current_setting('superuser_reserved_connections')::int"
            )).scalar_one())
    finally:
        engine.dispose()


def engine_for(database_url: str, **pool: float | str) -> Engine:
    """The process-wide engine for ``database_url`` (created once; ``pool`` options of
    ``make_engine`` apply when it is created)."""
    with _lock:
        engine = _engines.get(database_url)
        if engine is None:
            engine = _engines[database_url] = make_engine(database_url, **pool)
        return engine


def dispose_engine(database_url: str) -> None:
    with _lock:
        engine = _engines.pop(database_url, None)
        _factories.pop(database_url, None)
        readers = _loop_readers.pop(database_url, None)
    if engine is not None:
        engine.dispose()
    if readers is not None:
        for _loop, conn in readers[1].values():
            conn.close()
        readers[0].dispose()


def loop_connection(database_url: str) -> Connection | None:
    """A read-only connection for short reads on the running event loop, without a thread-pool
    hop; None unless the database is an SQLite file (over a network, a read must not block the loop).

    An SQLite read of a few indexed rows takes tens of microseconds (plus a page-cache refill of
    the pages it touches after another connection commits), less than the hop to a thread, and in
    WAL mode it never waits for a writer. One connection per event loop, kept open. Callers must
    consume or close every result (``scalar``, ``first``, ``one``, ``all`` do): an unfinished
    statement holds its snapshot, and a snapshot held on a connection that lives as long as the
    worker would keep the WAL from ever being checkpointed (``Connection.rollback`` does not end
    it: pysqlite begins no transaction for a SELECT). A database file replaced under running
    workers (a restore by rename) is not noticed: stop the workers first.
    """
    if not is_sqlite_file(database_url):
        return None
    loop = asyncio.get_running_loop()
    readers = _loop_readers.get(database_url)
    held = readers[1].get(id(loop)) if readers is not None else None
    if held is not None and held[0] is loop:
        return held[1]
    with _lock:
        readers = _loop_readers.get(database_url)
        if readers is None:
            readers = _loop_readers[database_url] = (make_engine(database_url, read_only=True), {})
        engine, by_loop = readers
        for key, (other, conn) in list(by_loop.items()):
            if other.is_closed() or key == id(loop):  # a finished loop's (tests run one per client)
                conn.close()
                del by_loop[key]
        conn = engine.connect()
        by_loop[id(loop)] = (loop, conn)
        return conn


@lru_cache(maxsize=64)
def is_sqlite_file(database_url: str) -> bool:
    url = make_url(database_url)  # parsed once per URL, not on every read
    return url.get_backend_name() == "sqlite" and bool(url.database) and url.database != ":memory:"


def connection_of(source: Session | Connection) -> Connection:
    """The connection to run a statement on: a session's (in its transaction, with its pending
    changes flushed, as a query through the session would autoflush them) or ``source``."""
    if isinstance(source, Session):
        if source.autoflush:
            source.flush()  # nothing pending (the usual case): a cheap check
        return source.connection()
    return source


def session_factory(database_url: str, **pool: float | str) -> sessionmaker[Session]:
    """The process-wide session factory on ``engine_for(database_url)`` (a ``sessionmaker``
    builds a class: once per engine, not once per request)."""
    engine = engine_for(database_url, **pool)
    factory = _factories.get(database_url)
    if factory is None or factory.kw["bind"] is not engine:  # the engine was disposed and recreated
        factory = _factories[database_url] = sessionmaker(bind=engine, expire_on_commit=False)
        track_flushed_writes(factory)
    return factory


def track_flushed_writes(target: sessionmaker[Session] | Session) -> None:
    """Mark in ``session.info["flushed_writes"]`` that the open transaction has written rows.

    ``session.new/dirty/deleted`` forget rows once flushed; the query log needs to know, so a
    read logged by a request that also wrote commits with that write in one transaction.
    """
    event.listen(target, "after_flush", lambda session, _ctx: session.info.__setitem__("flushed_writes", True))
    for name in ("after_commit", "after_rollback"):
        event.listen(target, name, lambda session: session.info.pop("flushed_writes", None))


def iter_session(database_url: str, **pool: float | str) -> Iterator[Session]:
    """Yield a session and close it; the caller commits (services own their transactions)."""
    session = session_factory(database_url, **pool)()
    try:
        yield session
    finally:
        session.close()
