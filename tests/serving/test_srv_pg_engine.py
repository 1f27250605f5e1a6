"""A pooled connection is checked with a round trip only after it sat idle (issue 22, PostgreSQL):
``pool_pre_ping`` cost a ``SELECT 1`` before every checkout, two per logged read under load."""

from __future__ import annotations

import time

from sqlalchemy import create_engine, text


def _engine(tmp_path, monkeypatch, *, fail: bool = False):
    from serving.db.session import ping_when_idle

    engine = create_engine(f"sqlite:///{tmp_path / 'ping.db'}", pool_size=1, max_overflow=0)
    pings: list[int] = []

    # with ``fail``, the first ping finds the connection lost; the pool's next one is good
    lost = [engine.dialect.loaded_dbapi.OperationalError("server closed the connection")] if fail else []

    def do_ping(dbapi_conn) -> bool:
        pings.append(id(dbapi_conn))
        if lost:
            raise lost.pop()
        return True

    monkeypatch.setattr(engine.dialect, "do_ping", do_ping)
    ping_when_idle(engine, idle_s=0.2)
    return engine, pings


def test_a_busy_connection_is_not_pinged_an_idle_one_is(tmp_path, monkeypatch):
    engine, pings = _engine(tmp_path, monkeypatch)
    for _ in range(5):  # taken again at once: no round trip
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    assert pings == []
    time.sleep(0.25)
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    assert len(pings) == 1


def test_a_connection_lost_while_idle_is_replaced_before_use(tmp_path, monkeypatch):
    engine, pings = _engine(tmp_path, monkeypatch, fail=True)
    with engine.connect() as conn:
        first = conn.connection.dbapi_connection
    time.sleep(0.25)
    with engine.connect() as conn:  # the ping fails: the pool discards it and connects anew
        assert conn.execute(text("SELECT 1")).scalar() == 1
        assert conn.connection.dbapi_connection is not first
    assert len(pings) >= 1


def test_postgresql_engines_ping_only_when_idle():
    from serving.db.session import make_engine

    engine = make_engine("postgresql+psycopg://tiers@/tiers?host=/nonexistent&port=1")  # nothing connects
    assert not engine.pool._pre_ping and len(engine.pool.dispatch.checkout) == 1
