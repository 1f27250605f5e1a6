"""The query log's commits on PostgreSQL (issue 22): a worker waiting for its WAL to be made
durable does not hold the head row's lock, so the other workers' log appends go on meanwhile,
and a read is still answered only once its entry is as durable as the server's
``synchronous_commit`` makes a commit. Runs only on the PostgreSQL of ``TEST_DATABASE_URL``
(with a superuser role: the slow disk is simulated by a synchronous standby that never answers).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import threading
import time

import pytest
from sqlalchemy import create_engine, select, text
from srv_fixtures import principal

from serving.db.tables import QueryLogEntry
from serving.security import Principal
from serving.services import querylog
from serving.services.querylog import append_entry_durably
from serving.services.querylog_check import check_chain

pytestmark = pytest.mark.skipif(not (os.environ.get("TEST_DATABASE_URL") or "").startswith("postgresql"),
                                reason="PostgreSQL only (TEST_DATABASE_URL)")


@pytest.fixture(autouse=True)
def _flush_before_answering(database_url, session):
    """These tests are of the durability barrier, which runs when every read waits for its entry's
    flush (``TIERS_QUERYLOG_FLUSH_MS=0``); with an interval > 0 the log commits without waiting
    and without a barrier (tests/serving/test_srv_querylog_flush.py)."""
    keys = querylog.keys_for(database_url)
    querylog.use_keys(database_url, dataclasses.replace(keys, flush_interval_s=0.0))
    yield
    querylog.use_keys(database_url, keys)


def _reader(name: str) -> Principal:
    reader = principal("reg_samr")
    return Principal(username=name, role=reader.role, department=reader.department)


def _log_three_reads(engine, who: str, uscc_stem: str) -> None:
    """Three reads by ``who`` logged through ``engine``'s writer (subjects ``uscc_stem`` + 0, 1, 2)."""
    for i in range(3):
        append_entry_durably(engine, principal=_reader(who), uscc=f"{uscc_stem}{i}", purpose="并发测试",
                             endpoint="GET /t")


def _set_standby(admin, names: str) -> None:
    admin.execute(text(f"ALTER SYSTEM SET synchronous_standby_names = '{names}'"))
    admin.execute(text("SELECT pg_reload_conf()"))


@contextlib.contextmanager
def _stalled_standby(database_url: str):
    """While active, a commit under ``synchronous_commit = on`` waits (for a standby that is never
    there) after its WAL is written; one under ``local`` does not. Cleared at the end, which
    releases the waiting commits."""
    admin = create_engine(database_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            if not conn.scalar(text("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")):
                pytest.skip("ALTER SYSTEM needs a superuser role")
            _set_standby(conn, "no_such_standby")
        _until_commits_wait(database_url)
        try:
            yield
        finally:
            with admin.connect() as conn:
                conn.execute(text("ALTER SYSTEM RESET synchronous_standby_names"))
                conn.execute(text("SELECT pg_reload_conf()"))
    finally:
        admin.dispose()


def _until_commits_wait(database_url: str) -> None:
    """Return once a commit under ``synchronous_commit = on`` waits for the standby: the reload
    reaches the server's processes a moment after ``pg_reload_conf`` returns. A probe found
    waiting is cancelled (its commit then stands locally: a WAL record, nothing else)."""
    probe = create_engine(database_url, connect_args={"options": "-c synchronous_commit=on"})
    admin = create_engine(database_url, isolation_level="AUTOCOMMIT")
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with probe.connect() as conn:
                pid = conn.scalar(text("SELECT pg_backend_pid()"))
                conn.commit()
                done = threading.Event()

                def commit(conn=conn, done=done) -> None:
                    conn.execute(text("SELECT pg_logical_emit_message(true, 'test-probe', '')"))
                    conn.commit()
                    done.set()

                waiter = threading.Thread(target=commit, daemon=True)
                waiter.start()
                if not done.wait(0.3):
                    with admin.connect() as other:
                        other.execute(text("SELECT pg_cancel_backend(:pid)"), {"pid": pid})
                    waiter.join(10)
                    return
                waiter.join()
            time.sleep(0.05)
        pytest.fail("the stalled standby did not take effect")
    finally:
        probe.dispose()
        admin.dispose()


def test_a_worker_waiting_for_durability_does_not_hold_up_the_others(database_url, session):
    # two workers' writers (one engine each, as two processes): A's commits wait for the standby,
    # B's are durable once its own WAL is flushed
    slow = create_engine(database_url, connect_args={"options": "-c synchronous_commit=on"})
    fast = create_engine(database_url, connect_args={"options": "-c synchronous_commit=local"})
    answered: list[str] = []
    errors: list[BaseException] = []

    def read(engine, who: str, uscc: str) -> None:
        try:
            append_entry_durably(engine, principal=_reader(who), uscc=uscc, purpose="并发测试", endpoint="GET /t")
            answered.append(who)
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    try:
        for engine, who in ((slow, "worker_a"), (fast, "worker_b")):  # each writer has committed before
            read(engine, who, "913201000000000000")
        answered.clear()
        with _stalled_standby(database_url):
            a = threading.Thread(target=read, args=(slow, "worker_a", "913201000000000001"), daemon=True)
            a.start()
            a.join(1.0)
            assert answered == []  # A's entry is not durable yet: its read is not answered
            b = threading.Thread(target=read, args=(fast, "worker_b", "913201000000000002"), daemon=True)
            b.start()
            b.join(10.0)
            assert answered == ["worker_b"], "B's log append waited for A's durability"
            assert a.is_alive()  # …while A still waits for its own
        a.join(10.0)
    finally:
        slow.dispose()
        fast.dispose()
    assert errors == [] and answered == ["worker_b", "worker_a"]
    result = check_chain(session)
    assert result.ok and result.entries == 4
    actors = session.scalars(select(QueryLogEntry.actor).order_by(QueryLogEntry.seq)).all()
    assert actors == ["worker_a", "worker_b", "worker_a", "worker_b"]  # B chained onto A's entry


def test_parallel_writers_keep_one_gap_free_chain(database_url, session):
    """Four writers (engines) appending at once, many groups each: one chain, every seq once."""
    engines = [create_engine(database_url) for _ in range(4)]
    errors: list[BaseException] = []

    def work(w: int) -> None:
        try:
            for i in range(25):
                append_entry_durably(engines[w], principal=_reader(f"w{w}"), uscc=f"9132010000{w:02d}{i:06d}",
                                     purpose="并发测试", endpoint="GET /t")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(4) for _ in range(2)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    finally:
        for engine in engines:
            engine.dispose()
    assert errors == []
    result = check_chain(session)
    assert result.ok and result.entries == 200
    assert session.scalars(select(QueryLogEntry.seq).order_by(QueryLogEntry.seq)).all() == list(range(1, 201))


def test_without_the_durability_barrier_the_log_commits_synchronously(database_url, session, monkeypatch):
    """A server where the barrier cannot run (its function not granted): the writer falls back to
    committing each group synchronously under the head lock, as before; reads are still logged."""
    monkeypatch.setattr(querylog, "_PG_FLUSH_BARRIER", "SELECT no_such_function_for_the_test()")
    engine = create_engine(database_url)
    try:
        _log_three_reads(engine, "fallback", "91320100000000000")
        assert querylog.group_writer(engine)._flush_after is False
    finally:
        engine.dispose()
    result = check_chain(session)
    assert result.ok and result.entries == 3


@pytest.mark.parametrize("refused", [False, True])
def test_a_checkpoint_signs_the_head_the_writers_committed(database_url, session, monkeypatch, refused):
    """``anchor_now`` waits for the WAL before it signs the head it read (the writers' commits may
    not be flushed yet when it reads); where the barrier is refused it signs all the same."""
    if refused:
        monkeypatch.setattr(querylog, "_PG_FLUSH_BARRIER", "SELECT no_such_function_for_the_test()")
    engine = create_engine(database_url)
    try:
        _log_three_reads(engine, "anchor", "91320100000000001")
    finally:
        engine.dispose()
    checkpoint = querylog.anchor_now(session)
    assert checkpoint is not None and checkpoint.seq == 3
    assert check_chain(session).ok
