"""Engines and sessions. One engine per database URL per process, created on first use."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from threading import Lock

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

_engines: dict[str, Engine] = {}
_lock = Lock()


def make_engine(database_url: str) -> Engine:
    """A new engine; for SQLite the parent directory is created and foreign keys enforced."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record) -> None:  # pragma: no cover - trivial
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            # WAL lets page reads continue while a worker appends to the query log
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.close()

        return engine
    return create_engine(url, pool_pre_ping=True)


def engine_for(database_url: str) -> Engine:
    """The process-wide engine for ``database_url`` (created once)."""
    with _lock:
        engine = _engines.get(database_url)
        if engine is None:
            engine = _engines[database_url] = make_engine(database_url)
        return engine


def dispose_engine(database_url: str) -> None:
    with _lock:
        engine = _engines.pop(database_url, None)
    if engine is not None:
        engine.dispose()


def session_factory(database_url: str) -> sessionmaker[Session]:
    return sessionmaker(bind=engine_for(database_url), expire_on_commit=False)


def iter_session(database_url: str) -> Iterator[Session]:
    """Yield a session and close it; the caller commits (services own their transactions)."""
    session = session_factory(database_url)()
    try:
        yield session
    finally:
        session.close()
