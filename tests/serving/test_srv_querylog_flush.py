"""Issue 20, decision: the query log's bounded-loss group durability (``Settings.querylog_flush_ms``,
``serving.services.querylog_flush``). A read is answered once its entry is committed, not
fsynced; the WAL is fsynced within W; W = 0 keeps every commit's own fsync (FULL)."""

from __future__ import annotations

import dataclasses
import errno
import itertools
import os
import signal
import statistics
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from pydantic import ValidationError
from sqlalchemy import select
from srv_fixtures import principal

from serving.db.session import engine_for
from serving.db.tables import QueryLogEntry
from serving.services import querylog, querylog_flush
from serving.services.querylog import LogKeys, append_entry_durably, group_writer, use_keys
from serving.services.querylog_check import check_chain
from serving.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
ON_POSTGRES = bool(os.environ.get("TEST_DATABASE_URL"))
sqlite_only = pytest.mark.skipif(ON_POSTGRES, reason="the WAL flusher is SQLite's; PostgreSQL: its own test")


def _writer(settings, flush_ms: float):
    """The group writer of the test's database, its log keyed with a flush interval of ``flush_ms``."""
    use_keys(settings.database_url, dataclasses.replace(LogKeys.of(settings), flush_interval_s=flush_ms / 1000))
    engine = engine_for(settings.database_url)
    return engine, group_writer(engine)


def _append(engine, uscc: str = "91320100MA1XXXXX01") -> querylog.LoggedRead:
    return append_entry_durably(engine, principal=principal("reg_samr"), uscc=uscc, purpose="落盘测试",
                                endpoint="GET /test")


# --- the setting -------------------------------------------------------------------------------


def test_the_flush_interval_setting_defaults_to_10_ms_and_refuses_bad_values_in_both_languages(monkeypatch):
    assert Settings().querylog_flush_ms == 10
    monkeypatch.setenv("TIERS_QUERYLOG_FLUSH_MS", "0")
    assert Settings().querylog_flush_ms == 0
    monkeypatch.setenv("TIERS_QUERYLOG_FLUSH_MS", "25")
    assert Settings().querylog_flush_ms == 25
    for bad in ("-1", "1001", "1.5", "ten", "", "true"):
        monkeypatch.setenv("TIERS_QUERYLOG_FLUSH_MS", bad)
        with pytest.raises(ValidationError) as raised:
            Settings()
        message = str(raised.value)
        assert "TIERS_QUERYLOG_FLUSH_MS" in message and "毫秒" in message and "milliseconds" in message, bad


def test_the_log_keys_carry_the_interval_in_seconds(settings):
    assert LogKeys.of(settings.model_copy(update={"querylog_flush_ms": 10})).flush_interval_s == 0.010
    assert LogKeys.of(settings.model_copy(update={"querylog_flush_ms": 0})).flush_interval_s == 0


# --- W = 0 and W > 0 on SQLite ---------------------------------------------------------------------


def _three_commits(settings, monkeypatch, flush_ms: float):
    """Three entries appended with the log's flush interval at ``flush_ms``: the ``PRAGMA
    synchronous`` each of the log's commits ran at (2 FULL, 1 NORMAL), the engine and its writer."""
    seen: list[int] = []
    chain_and_commit = querylog._chain_and_commit

    def recording(raw, *args, **kwargs):
        seen.append(raw.execute("PRAGMA synchronous").fetchone()[0])
        return chain_and_commit(raw, *args, **kwargs)

    monkeypatch.setattr(querylog, "_chain_and_commit", recording)
    engine, writer = _writer(settings, flush_ms)
    for i in range(3):
        _append(engine, f"91320100MA1XXXXX{i:02d}")
    return seen, engine, writer


@sqlite_only
def test_zero_keeps_every_commit_at_full_and_no_flusher(settings, monkeypatch):
    seen, _engine, writer = _three_commits(settings, monkeypatch, 0)
    assert seen == [2, 2, 2] and writer._flusher is None


@sqlite_only
def test_a_positive_interval_commits_at_normal_and_gives_the_pool_its_full_back(settings, monkeypatch):
    seen, engine, writer = _three_commits(settings, monkeypatch, 10)
    # the first commit may make the WAL (FULL, SQLite fsyncs it); then NORMAL, the flusher's
    assert seen[-2:] == [1, 1] and writer._flusher is not None
    with engine.connect() as conn:  # SQLite's automatic checkpoint stays on: the WAL restarts as before
        assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 1000
    with engine.connect() as conn:  # the pool's connections keep the engine's setting
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2


@sqlite_only
def test_the_flusher_fsyncs_the_wal_within_the_interval_and_at_most_once_per_interval(settings, monkeypatch):
    synced: list[tuple[float, str]] = []
    real_sync = querylog_flush._sync

    def observed(fd: int) -> None:  # the real fdatasync: when it started, on which file
        synced.append((time.monotonic(), os.readlink(f"/proc/self/fd/{fd}")))
        real_sync(fd)

    monkeypatch.setattr(querylog_flush, "_sync", observed)
    interval_ms = 100
    engine, writer = _writer(settings, interval_ms)
    _append(engine)  # makes the WAL (FULL), so that the flusher covers what follows
    start = time.monotonic()
    commits = 0
    answered: list[float] = []
    while time.monotonic() - start < 0.6:  # a steady stream of commits for 0.6 s
        _append(engine, f"91320100MA1Y{commits:06d}")
        answered.append(time.monotonic())
        commits += 1
        time.sleep(0.005)
    last = time.monotonic()
    flusher = writer._flusher
    assert flusher is not None and commits > 20
    while flusher.durable_head != writer._committed and time.monotonic() - last < 5:
        time.sleep(0.01)  # nobody asks: the flusher gets there by itself
    assert flusher.durable_head == writer._committed
    database = Path(settings.database_url.removeprefix("sqlite:///")).resolve()
    wal = f"{database}-wal"
    synced = [(t, path) for t, path in synced if path.startswith(str(database.parent))]  # not other tests' logs
    assert {path for _, path in synced} == {wal}
    during = [t for t, _ in synced if start <= t <= last]
    assert len(during) <= 0.6 / (interval_ms / 1000) + 2, len(during)  # at most once per interval (+ edges)
    assert all(b - a >= interval_ms / 1000 * 0.9 for a, b in itertools.pairwise(during))
    assert commits > 2 * len(during)  # commits do not wait for it: several per fsync
    # each answered entry is in an fsync that starts within the interval (the median: robust to a
    # loaded machine's scheduling; the worst within a second)
    starts = sorted(t for t, _ in synced)
    gaps = [next((t for t in starts if t >= done), done) - done for done in answered]  # none after: begun before
    assert statistics.median(gaps) <= interval_ms / 1000 * 1.2 and max(gaps) <= interval_ms / 1000 + 1, gaps


@sqlite_only
def test_an_fsync_error_stops_the_log_rather_than_answer_unlogged(settings, monkeypatch):
    engine, writer = _writer(settings, 10)
    _append(engine)
    _append(engine, "91320100MA1XXXXX02")  # covered by the flusher
    assert writer._flusher.flush(timeout_s=5)  # its fsync done before the disk breaks

    def failing(fd: int) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(querylog_flush, "_sync", failing)
    _append(engine, "91320100MA1XXXXX03")
    assert not writer._flusher.flush(timeout_s=5)
    with pytest.raises(querylog_flush.FlushFailed, match="restart"):
        _append(engine, "91320100MA1XXXXX04")


@sqlite_only
def test_a_checkpoint_never_anchors_an_entry_not_yet_flushed(settings, monkeypatch):
    anchored: list[tuple[int, str, int]] = []

    class Capture:
        def submit(self, head):
            anchored.append(head)

    from serving.services import checkpoints

    real_writer = checkpoints.checkpoint_writer
    mine = LogKeys.of(settings).checkpoints  # other tests' writers, going idle now, anchor their own logs
    monkeypatch.setattr(checkpoints, "checkpoint_writer",
                        lambda path, key: Capture() if path == mine else real_writer(path, key))
    disk = threading.Event()  # a slow disk: an fsync returns when the test lets it
    monkeypatch.setattr(querylog_flush, "_sync", lambda fd: disk.wait(10))
    engine, writer = _writer(settings, 1000)
    _append(engine)
    _append(engine, "91320100MA1XXXXX02")
    head = writer._committed
    writer._anchor()  # under load: only what is flushed
    assert all(h[0] < head[0] for h in anchored)
    disk.set()
    writer._anchor(idle=True)  # falling idle: flushed first, then anchored
    assert anchored[-1] == head and writer._flusher.durable_head == head


@pytest.mark.skipif(not ON_POSTGRES, reason="PostgreSQL only (TEST_DATABASE_URL)")
def test_on_postgres_a_positive_interval_defers_only_the_logs_wal_flush(settings, monkeypatch):
    seen: list[str] = []
    advanced_head = querylog._advanced_head

    def recording(cursor):  # inside the log's transaction, once its head is advanced
        head = advanced_head(cursor)
        cursor.execute("SHOW synchronous_commit")
        seen.append(cursor.fetchone()[0])
        return head

    monkeypatch.setattr(querylog, "_advanced_head", recording)
    # and no durability barrier before the answer: one would fail here
    monkeypatch.setattr(querylog, "_PG_FLUSH_BARRIER", "SELECT no_such_function_for_the_test()")
    engine, _writer_10 = _writer(settings, 10)
    _append(engine)
    _append(engine, "91320100MA1XXXXX02")
    assert seen == ["off", "off"]
    with engine.connect() as conn:  # SET LOCAL: the pool's connections keep the server's setting
        assert conn.exec_driver_sql("SHOW synchronous_commit").scalar() == "on"


# --- a kill after the answer loses nothing --------------------------------------------------------

_CHILD = textwrap.dedent("""
    import sys, time
    from serving.db.session import engine_for
    from serving.keys import with_keys
    from serving.services.querylog import LogKeys, append_entry_durably, group_writer, use_keys
    from serving.security import Principal
    from serving.settings import Settings

    settings = with_keys(Settings(database_url=sys.argv[1], keys_dir=sys.argv[2], querylog_flush_ms=1000,
                                  run_migrations_on_startup=False))
    use_keys(settings.database_url, LogKeys.of(settings))
    engine = engine_for(settings.database_url)
    who = Principal(username="killed_reader", role="regulator", department="samr")
    for i in range(3):
        append_entry_durably(engine, principal=who, uscc=f"91320100MA1KILL{i:03d}", purpose="进程被杀测试",
                             endpoint="GET /test")
    flusher = group_writer(engine)._flusher
    print("answered", flusher.fsyncs if flusher else -1, flush=True)
    time.sleep(60)
""")


@sqlite_only
@pytest.mark.slow
def test_an_answered_entry_survives_a_sigkill_before_its_fsync(settings, session, monkeypatch):
    child = subprocess.Popen([sys.executable, "-c", _CHILD, settings.database_url, str(settings.keys_dir)],
                             cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE, text=True)
    try:
        line = child.stdout.readline().split()
        assert line[0] == "answered"
        # answered before the flusher's first fsync of them (W = 1 s): only the OS holds them
        assert int(line[1]) <= 1
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    finally:
        child.kill()
        child.wait(10)
    rows = session.scalars(select(QueryLogEntry.uscc).where(QueryLogEntry.actor == "killed_reader")).all()
    assert sorted(rows) == [f"91320100MA1KILL{i:03d}" for i in range(3)]
    assert check_chain(session).ok

    from typer.testing import CliRunner

    from serving.cli import admin  # noqa: F401  (registers the commands)
    from serving.cli.app import app as cli
    from serving.settings import get_settings

    monkeypatch.setenv("TIERS_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("TIERS_KEYS_DIR", str(settings.keys_dir))
    get_settings.cache_clear()
    try:
        checked = CliRunner().invoke(cli, ["querylog", "check", "--json"])
        assert checked.exit_code == 0 and '"ok": true' in checked.stdout, checked.stdout
    finally:
        get_settings.cache_clear()


@sqlite_only
def test_a_graceful_stop_flushes_what_the_interval_has_not_yet(settings, world):
    from fastapi.testclient import TestClient
    from srv_fixtures import app_on

    from serving.security import create_access_token

    slow = settings.model_copy(update={"querylog_flush_ms": 1000})  # the interval alone would take a second
    app = app_on(slow)
    token, _ = create_access_token(principal("reg_samr"), slow.jwt_key, 30)
    with TestClient(app) as client:
        for _ in range(3):
            r = client.get(f"/api/v1/subjects/{world.ent1}/records", params={"purpose": "案件调查"},
                           headers={"Authorization": f"Bearer {token}"})
            assert r.status_code == 200
        writer = group_writer(engine_for(slow.database_url))
    flusher = writer._flusher  # the app's stop has returned: everything committed is flushed
    assert flusher is not None and flusher.durable_head == writer._committed


def test_a_flusher_that_cannot_start_tries_again_on_the_next_commit(tmp_path, monkeypatch):
    # as the log's writer (test_srv_querylog_load): a thread that never started is not taken for
    # a running one, which would leave every later commit unflushed
    monkeypatch.setattr(querylog_flush, "_sync", lambda fd: None)
    wal = tmp_path / "db-wal"
    wal.write_bytes(b"wal")
    flusher = querylog_flush.WalFlusher(str(wal), interval_s=0.001)
    assert flusher.covers()
    real_start = threading.Thread.start

    def no_thread(self):
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr(threading.Thread, "start", no_thread)
    with pytest.raises(RuntimeError, match="can't start"):
        flusher.committed((1, "h1", 1))
    monkeypatch.setattr(threading.Thread, "start", real_start)
    flusher.committed((2, "h2", 1))
    assert flusher.flush(timeout_s=5) and flusher.durable_head == (2, "h2", 1)


def test_a_wal_made_anew_is_not_covered_until_the_old_one_is_flushed(tmp_path, monkeypatch):
    # the WAL deleted (every connection closed) and made again is another inode: the flusher's
    # descriptor would fsync the old file, so commits run at FULL until it has moved over
    synced: list[int] = []
    monkeypatch.setattr(querylog_flush, "_sync", lambda fd: synced.append(os.fstat(fd).st_ino))
    wal = tmp_path / "db-wal"
    flusher = querylog_flush.WalFlusher(str(wal), interval_s=0.001)
    assert not flusher.covers()  # no WAL yet: the commit that makes it fsyncs itself
    wal.write_bytes(b"old")
    old_inode = wal.stat().st_ino
    assert flusher.covers()
    with flusher._cond:  # the next fsync held back a minute, unless someone needs it at once
        flusher._last_start = time.monotonic() + 60
    flusher.committed((1, "h", 1))
    wal.unlink()
    wal.write_bytes(b"new")
    assert not flusher.covers()  # the old file's commit not flushed yet: this one at FULL
    assert flusher.flush(timeout_s=5)  # ``covers`` asked for it at once: the old inode fsynced
    assert synced == [old_inode]
    assert flusher.covers() and flusher._ino[1] == wal.stat().st_ino  # now on the new file
