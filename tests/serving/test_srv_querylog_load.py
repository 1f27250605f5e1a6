"""The query log under load: group commit keeps one valid chain across threads and processes,
a read is durably logged before it is answered, and a saturated worker answers a fast 503."""

from __future__ import annotations

import multiprocessing
import threading
import time

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, select, update
from srv_fixtures import TODAY, principal

from serving.app import create_app
from serving.db.session import dispose_engine, engine_for, iter_session
from serving.db.tables import QueryLogEntry
from serving.deps import get_today
from serving.overload import InFlightLimit
from serving.security import CredentialCache, Principal, credential_key
from serving.services import querylog
from serving.services.querylog import LogKeys, append_entry, group_writer, use_keys
from serving.services.querylog_check import check_chain


def _append_many(database_url: str, actor: str, threads: int, per_thread: int, keys: LogKeys) -> None:
    """``threads`` threads each logging ``per_thread`` reads, each with its own session."""
    use_keys(database_url, keys)  # a new process: the log's keys, as the app registers them
    reader = principal("reg_samr")
    who = Principal(username=actor, role=reader.role, department=reader.department)

    def work(k: int) -> None:
        for i in range(per_thread):
            session = next(iter_session(database_url))
            append_entry(session, principal=who, uscc=f"91320100{k:02d}{i:08d}", purpose="并发测试",
                         endpoint="GET /test")
            session.close()

    pool = [threading.Thread(target=work, args=(k,)) for k in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()


def test_concurrent_threads_share_commits_and_keep_one_chain(database_url, session, settings, monkeypatch):
    slow_commit = querylog.GroupCommitWriter._commit
    groups: list[int] = []

    def slower(self, entries):  # a slow disk: reads arriving meanwhile must join the next group
        time.sleep(0.02)
        head = slow_commit(self, entries)
        groups.append(len(entries))
        return head

    monkeypatch.setattr(querylog.GroupCommitWriter, "_commit", slower)
    _append_many(database_url, "thread_reader", threads=8, per_thread=10, keys=LogKeys.of(settings))
    result = check_chain(session)
    assert result.ok and result.entries == 80
    seqs = session.scalars(select(QueryLogEntry.seq).order_by(QueryLogEntry.seq)).all()
    assert seqs == list(range(1, 81))
    assert sum(groups) == 80 and len(groups) < 80 and max(groups) > 1  # reads shared transactions


def test_two_processes_append_to_one_chain_and_an_edit_is_found(database_url, session, settings):
    ctx = multiprocessing.get_context("spawn")  # like uvicorn's workers: no shared memory, no fork
    workers = [ctx.Process(target=_append_many, args=(database_url, f"worker{w}", 4, 15, LogKeys.of(settings)))
               for w in range(2)]
    for p in workers:
        p.start()
    for p in workers:
        p.join(timeout=120)
    assert [p.exitcode for p in workers] == [0, 0]
    result = check_chain(session)
    assert result.ok and result.entries == 120
    actors = session.scalars(select(QueryLogEntry.actor)).all()
    assert actors.count("worker0") == actors.count("worker1") == 60
    session.execute(update(QueryLogEntry).where(QueryLogEntry.seq == 77).values(uscc="913201000000000000"))
    session.commit()
    broken = check_chain(session)
    assert not broken.ok and broken.first_broken_seq == 77


@pytest.fixture
def logged_first_client(settings, database_url, monkeypatch):
    """A client whose grade reads record whether the log entry was already durable then."""
    from serving.services import grades

    observer = create_engine(database_url)  # another connection: sees only committed data
    seen: list[int] = []
    real = grades.latest_grade_values  # what the grade endpoint reads

    def latest_grade_values(session, uscc):
        with observer.connect() as conn:
            seen.append(len(conn.execute(select(QueryLogEntry.seq).where(QueryLogEntry.uscc == uscc)).all()))
        return real(session, uscc)

    monkeypatch.setattr(grades, "latest_grade_values", latest_grade_values)
    app = create_app(settings)
    app.dependency_overrides[get_today] = lambda: TODAY
    yield TestClient(app), seen
    observer.dispose()


def test_a_read_is_durably_logged_before_the_grade_is_read(logged_first_client, auth, world):
    client, seen = logged_first_client
    for n in range(1, 4):
        r = client.get(f"/api/v1/subjects/{world.ent1}/grade", headers=auth("ent1"))
        assert r.status_code == 200
        assert seen[-1] == n  # the n-th read's entry was committed before its grade was read


def test_no_answer_when_the_log_cannot_be_written(client, auth, world, monkeypatch, session):
    def disk_full(self, entries):
        raise OSError("No space left on device")

    monkeypatch.setattr(querylog.GroupCommitWriter, "_commit", disk_full)
    with TestClient(client.app, raise_server_exceptions=False) as c:
        r = c.get(f"/api/v1/subjects/{world.ent1}/grade", headers=auth("ent1"))
    assert r.status_code == 500 and "score" not in r.text
    assert check_chain(session).entries == 0


def test_group_writer_is_one_per_engine(database_url):
    engine = engine_for(database_url)
    assert group_writer(engine) is group_writer(engine)


def test_saturated_worker_answers_fast_503_in_the_error_shape():
    release = threading.Event()

    async def slow_app(scope, receive, send):
        while not release.is_set():
            await _sleep(0.01)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    async def scenario() -> list[httpx.Response]:
        import asyncio

        limited = InFlightLimit(slow_app, limit=2)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=limited), base_url="http://t") as http:
            first = [asyncio.create_task(http.get("/api/v1/x")) for _ in range(2)]
            await asyncio.sleep(0.05)
            started = time.perf_counter()
            shed = await http.get("/api/v1/x")
            assert time.perf_counter() - started < 0.5  # answered at once, not queued
            health = asyncio.create_task(http.get("/health"))  # liveness is never shed
            await asyncio.sleep(0.02)
            release.set()
            return [shed, *await asyncio.gather(*first), await health]

    import asyncio

    shed, ok1, ok2, health = asyncio.run(scenario())
    assert shed.status_code == 503 and int(shed.headers["Retry-After"]) >= 1
    assert shed.json()["error"]["code"] == "overloaded"
    assert ok1.status_code == ok2.status_code == health.status_code == 200


async def _sleep(seconds: float) -> None:
    import asyncio

    await asyncio.sleep(seconds)


def test_no_free_connection_is_a_fast_503_not_a_500(settings, database_url, auth, world):
    dispose_engine(database_url)
    tight = settings.model_copy(update={"threadpool_size": 1, "db_pool_timeout_s": 0.2})
    app = create_app(tight)
    app.dependency_overrides[get_today] = lambda: TODAY
    with TestClient(app) as client:
        url = f"/api/v1/subjects/{world.ent1}/grade"
        assert client.get(url, headers=auth("ent1")).status_code == 200  # creates the pool: 1 thread + the log writer
        engine = engine_for(database_url)
        held = [engine.connect() for _ in range(engine.pool.size())]  # something else holds them all
        try:
            started = time.perf_counter()
            r = client.get(url, headers=auth("ent1"))
            elapsed = time.perf_counter() - started
        finally:
            for conn in held:
                conn.close()
    assert r.status_code == 503 and r.headers["Retry-After"] == "1" and elapsed < 5
    assert r.json()["error"]["code"] == "overloaded"


def test_the_pool_counts_the_log_writer(settings, database_url):
    """One connection per thread-pool thread and one for the writer: threads that each hold a
    session never starve the log, and the log never waits for a thread's connection."""
    from serving.deps import new_session, service_engine

    dispose_engine(database_url)
    tight = settings.model_copy(update={"threadpool_size": 2, "db_pool_timeout_s": 0.2})
    sessions = [new_session(tight) for _ in range(2)]
    for s in sessions:
        s.connection()  # every thread of the pool holds its connection
    try:
        append_entry(sessions[0], principal=principal("reg_samr"), uscc="913201000000000001", purpose="满池",
                     endpoint="GET /t")  # logged through the writer's own connection
    finally:
        for s in sessions:
            s.close()
    assert service_engine(tight).pool.size() == 3


def test_overload_is_declared_in_openapi(client):
    spec = client.get("/openapi.json").json()
    grade = spec["paths"]["/api/v1/subjects/{uscc}/grade"]["get"]["responses"]
    assert "503" in grade and grade["503"]["content"]["application/json"]["schema"]["$ref"].endswith("ErrorOut")


def test_credential_cache_forgets_after_its_ttl_or_when_told():
    now = [0.0]
    cache = CredentialCache(ttl_s=10, clock=lambda: now[0])
    machine = Principal(username="pipeline", role="regulator", kind="machine", department="samr")
    key, other = credential_key(api_key="tsk_key"), credential_key(api_key="tsk_other")
    assert "tsk_key" not in key  # the key itself is never kept
    cache.put(key, machine)
    assert cache.get(key) == machine and cache.get(other) is None
    now[0] = 10.0  # a key revoked meanwhile is refused again once its entry expires
    assert cache.get(key) is None
    person = Principal(username="ent1", role="enterprise", uscc="9" * 18, token_id="abc")
    cache.put(credential_key(token=person), person)
    cache.forget(credential_key(token=person))  # a logout in this worker: at once
    assert cache.get(credential_key(token=person)) is None
    off = CredentialCache(ttl_s=0)
    off.put(key, machine)
    assert off.get(key) is None
    with pytest.raises(ValueError):
        credential_key(token=Principal(username="x", role="admin"))  # a token without an id


def test_a_verified_token_still_expires():
    from serving.security import create_access_token, decode_access_token

    secret = "s" * 40
    who = Principal(username="reg", role="regulator", department="samr")
    token, expires = create_access_token(who, secret, ttl_minutes=1)
    assert decode_access_token(token, secret).username == "reg"  # verified, now cached
    assert decode_access_token(token, secret, now=expires.timestamp()) is None
    assert decode_access_token(token, "t" * 40) is None  # another secret: verified again, refused
    assert decode_access_token(token[:-2] + "xx", secret) is None


def test_sqlite_durability_cannot_be_switched_off(tmp_path):
    from serving.db.session import make_engine

    with pytest.raises(ValueError, match="never OFF"):
        make_engine(f"sqlite:///{tmp_path / 'x.db'}", sqlite_synchronous="OFF")
    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL: every commit fsynced
    engine.dispose()


@pytest.mark.parametrize("flushed", [False, True])
def test_a_caller_that_wrote_commits_its_write_and_the_log_entry_together(database_url, session, monkeypatch,
                                                                           flushed):
    from serving.db.tables import User

    def refuse(self, entries):  # the group writer must not be used for a caller that wrote
        raise AssertionError("a writing caller went through the group writer")

    monkeypatch.setattr(querylog.GroupCommitWriter, "append", refuse)
    writer = next(iter_session(database_url))
    writer.add(User(username=f"w_{flushed}", password_hash="x", role="analyst"))
    if flushed:
        writer.flush()  # flushed rows leave session.new: still a write of this transaction
    append_entry(writer, principal=principal("reg_samr"), uscc="913201000000000001", purpose="写后读",
                 endpoint="POST /test")
    writer.close()
    assert session.scalar(select(User.id).where(User.username == f"w_{flushed}")) is not None
    assert check_chain(session).ok
    assert session.scalar(select(QueryLogEntry.purpose).order_by(QueryLogEntry.seq.desc()).limit(1)) == "写后读"


def test_a_failed_log_write_takes_the_callers_write_with_it(database_url, session, monkeypatch):
    from serving.db.tables import User

    def broken(conn, entries):
        raise RuntimeError("disk full")

    monkeypatch.setattr(querylog, "_chain_in_transaction", broken)
    writer = next(iter_session(database_url))
    writer.add(User(username="never_stored", password_hash="x", role="analyst"))
    writer.flush()
    with pytest.raises(RuntimeError):
        append_entry(writer, principal=principal("reg_samr"), uscc="913201000000000001", purpose="写后读",
                     endpoint="POST /test")
    writer.rollback()
    writer.close()
    assert session.scalar(select(User.id).where(User.username == "never_stored")) is None


def test_a_writer_that_cannot_start_fails_its_caller_and_the_next_one_works(database_url, session, monkeypatch):
    engine = engine_for(database_url)
    writer = querylog.GroupCommitWriter(engine)
    who = principal("reg_samr")
    real_start = threading.Thread.start

    def no_thread(self):
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr(threading.Thread, "start", no_thread)
    entry = querylog._new_entry(who, "913201000000000001", "allowed", "核验", "GET /t", False)
    with pytest.raises(RuntimeError, match="can't start"):
        writer.append([entry])
    monkeypatch.setattr(threading.Thread, "start", real_start)
    again = querylog._new_entry(who, "913201000000000002", "allowed", "核验", "GET /t", False)
    finished = threading.Event()
    threading.Thread(target=lambda: (writer.append([again]), finished.set()), daemon=True).start()
    assert finished.wait(10), "the writer never started again: the caller hangs"
    assert check_chain(session).ok and check_chain(session).entries == 1


def test_a_checkpoint_writer_that_cannot_start_tries_again_on_the_next_head(settings, tmp_path, monkeypatch):
    # as the log's writer above: a thread that never started is not taken for a running one
    from serving.services import checkpoints

    written: list[int] = []
    monkeypatch.setattr(checkpoints, "append_checkpoint", lambda path, checkpoint: written.append(checkpoint.seq))
    writer = checkpoints.CheckpointWriter(tmp_path / "checkpoints.jsonl", LogKeys.of(settings).signing_key)
    real_start = threading.Thread.start

    def no_thread(self):
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr(threading.Thread, "start", no_thread)
    with pytest.raises(RuntimeError, match="can't start"):
        writer.submit((1, "a" * 64, 1))
    monkeypatch.setattr(threading.Thread, "start", real_start)
    writer.submit((2, "b" * 64, 1))
    writer.flush(timeout_s=5)
    assert written == [2], "the next head found no thread to sign it"


def test_appends_racing_the_writers_idle_exit_are_never_stranded(database_url, session):
    engine = engine_for(database_url)
    writer = querylog.GroupCommitWriter(engine, idle_s=0.0005)  # exits between almost every append
    who = principal("reg_samr")

    def work(k: int) -> None:
        for i in range(15):
            writer.append([querylog._new_entry(who, f"91320100{k:02d}{i:08d}", "allowed", "竞态", "GET /t", False)])
            time.sleep(0.0005 * (i % 3))

    pool = [threading.Thread(target=work, args=(k,), daemon=True) for k in range(4)]
    for t in pool:
        t.start()
    for t in pool:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in pool)
    assert check_chain(session).ok and check_chain(session).entries == 60


def test_a_slow_checkpoint_never_holds_up_the_logs_commits(database_url, session, settings, monkeypatch):
    """The writer hands its head to the checkpoint thread: while a checkpoint's fsync takes a
    second (a busy disk), reads keep being logged at their usual pace, and the checkpoint of the
    newest head is written afterwards."""
    from serving.services import checkpoints

    real_append = checkpoints.append_checkpoint
    slow = threading.Event()

    def slow_append(path, checkpoint):
        slow.set()
        time.sleep(1.0)
        real_append(path, checkpoint)

    monkeypatch.setattr(checkpoints, "append_checkpoint", slow_append)
    keys = LogKeys.of(settings)
    use_keys(database_url, LogKeys(keys.mac_key, keys.signing_key, keys.checkpoints, checkpoint_interval_s=0.0))
    reader = principal("reg_samr")
    timings = []
    for i in range(12):
        start = time.perf_counter()
        s = next(iter_session(database_url))
        append_entry(s, principal=reader, uscc=f"9132010000000000{i:02d}", purpose="检查点", endpoint="GET /t")
        s.close()
        timings.append(time.perf_counter() - start)
    assert slow.is_set()  # a checkpoint was being written meanwhile
    assert max(timings) < 0.5, timings  # no append waited for it
    checkpoints.checkpoint_writer(keys.checkpoints, keys.signing_key).flush()
    result = check_chain(session)
    assert result.ok and result.entries == 12 and result.checkpoint is not None and result.checkpoint.seq >= 1
