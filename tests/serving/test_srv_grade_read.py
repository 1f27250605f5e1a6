"""The hot single-subject grade read: the same answer and the same guards as the generic path,
on the event loop (SQLite) and in a thread (PostgreSQL); its log entry durable before the answer."""

from __future__ import annotations

import asyncio
import threading
import time

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import exc, select, text
from sqlalchemy.orm import Session

from serving.db.session import iter_session, make_engine
from serving.db.tables import QueryLogEntry
from serving.schemas import GradeOut
from serving.security import Principal
from serving.services import querylog
from serving.services.grades import latest_grade
from serving.services.querylog import append_entry
from serving.services.querylog_check import check_chain


@pytest.fixture(params=["event loop", "thread"])
def settings(request, settings, monkeypatch):
    """Every test here runs the read both ways: on the event loop (the SQLite default) and off it,
    in one thread-pool hop (on an SQLite file on the pool's connections, ``_checked_logged_read``;
    on PostgreSQL on a session, its only path). Each run fails if another path is taken."""
    from serving import deps

    on_loop = request.param == "event loop"

    def wrong_path(*args, **kwargs):
        raise AssertionError(f"the {request.param} run took another path")

    if settings.database_url.startswith("sqlite"):
        monkeypatch.setattr(deps, "_read_in_thread", wrong_path)
        monkeypatch.setattr(deps, "_checked_logged_read" if on_loop else "loop_connection", wrong_path)
    else:  # PostgreSQL: never on the event loop, whatever the setting says
        monkeypatch.setattr(deps, "_checked_logged_read", wrong_path)
        real = deps.loop_connection
        monkeypatch.setattr(deps, "loop_connection", lambda url: real(url) and wrong_path())
    return settings.model_copy(update={"event_loop_reads": on_loop})


def _entries(session) -> list[QueryLogEntry]:
    session.expire_all()
    return list(session.scalars(select(QueryLogEntry).order_by(QueryLogEntry.seq)))


def test_the_grade_body_is_the_response_model_of_the_latest_grade(client, auth, session, world):
    for user, headers in (("ent1", {}), ("reg_samr", {"X-Purpose": "case review"})):
        r = client.get(f"/api/v1/subjects/{world.ent1}/grade", headers=auth(user) | headers)
        assert r.status_code == 200 and r.headers["content-type"] == "application/json"
        expected = GradeOut.model_validate(latest_grade(session, world.ent1)).model_dump(mode="json")
        assert r.json() == expected
    assert [(e.actor, e.outcome) for e in _entries(session)] == [("ent1", "allowed"), ("reg_samr", "allowed")]


@pytest.mark.parametrize(("headers", "params", "status", "logged"), [
    ({}, {}, 401, None),                                                  # no credentials
    ({"Authorization": "Bearer not-a-token"}, {}, 401, None),
    ("analyst", {"purpose": "统计分析"}, 403, "denied"),                  # role without subject data: refused, logged
    ("reg_samr", {}, 422, None),                                          # staff must give a purpose
    ("ent2", {}, 404, "denied"),                                          # another enterprise: logged, same 404 as absent
    ("reg_samr", {"purpose": "案件调查"}, 200, "allowed"),
])
def test_the_grade_read_keeps_every_guard(client, auth, session, world, headers, params, status, logged):
    headers = auth(headers) if isinstance(headers, str) else headers
    r = client.get(f"/api/v1/subjects/{world.ent1}/grade", headers=headers, params=params)
    assert r.status_code == status, r.text
    assert ("score" in r.json()) == (status == 200)
    assert [e.outcome for e in _entries(session)] == ([logged] if logged else [])


def test_a_machine_reads_a_grade_with_its_api_key_and_is_logged_as_one(client, auth, session, world):
    client.post("/api/v1/admin/users", headers=auth("admin"), json={
        "username": "pipeline-samr", "password": "long-random-password", "role": "regulator", "department": "samr"})
    key = client.post("/api/v1/admin/api-keys", headers=auth("admin"),
                      json={"username": "pipeline-samr", "name": "nightly"}).json()["key"]
    url = f"/api/v1/subjects/{world.ent1}/grade?purpose=批量核验"
    assert client.get(url, headers={"X-API-Key": key + "x"}).status_code == 401
    for _ in range(2):  # the second read is served from the worker's key cache
        assert client.get(url, headers={"X-API-Key": key}).status_code == 200
    assert [(e.actor, e.actor_kind) for e in _entries(session)] == [("pipeline-samr", "machine")] * 2


@pytest.mark.parametrize("synchronous", ["FULL", "NORMAL"])
def test_the_log_commits_at_the_configured_durability_with_sqlites_own_checkpoint(database_url, settings, monkeypatch,
                                                                                 synchronous):
    """With a flush interval of 0 (``TIERS_QUERYLOG_FLUSH_MS=0``) the log's transaction commits
    with the engine's synchronous setting (FULL by default: the fsync is SQLite's, before the
    caller is answered) and keeps SQLite's automatic checkpoint, which bounds the WAL under
    sustained load (W > 0: test_srv_querylog_flush)."""
    if not database_url.startswith("sqlite"):
        pytest.skip("synchronous and WAL checkpoints are SQLite's")
    querylog.use_keys(database_url, querylog.LogKeys.of(settings.model_copy(update={"querylog_flush_ms": 0})))
    inside: list[tuple[int, int]] = []
    real_chain = querylog._chain_on_cursor

    def chain(cursor, sql, entries, key):
        # the writer's DBAPI connection: same pragmas as the engine's other connections
        inside.append((cursor.execute("PRAGMA synchronous").fetchone()[0],
                       cursor.execute("PRAGMA wal_autocheckpoint").fetchone()[0]))
        return real_chain(cursor, sql, entries, key)

    monkeypatch.setattr(querylog, "_chain_on_cursor", chain)
    engine = make_engine(database_url, sqlite_synchronous=synchronous)
    session = Session(engine)
    reader = Principal(username="reg", role="regulator", department="samr")
    for i in range(3):
        append_entry(session, principal=reader, uscc=f"91320100000000{i:04d}", purpose="核验", endpoint="GET /t")
    assert inside == [({"FULL": 2, "NORMAL": 1}[synchronous], 1000)] * 3
    session.close()
    engine.dispose()
    check = next(iter_session(database_url))
    assert check_chain(check).ok and check_chain(check).entries == 3
    check.close()


def test_an_entry_being_appended_carries_every_column_of_the_log():
    assert set(querylog.LoggedRead.__slots__) == {c.key for c in QueryLogEntry.__table__.columns}


def test_the_event_loop_serves_others_while_a_read_waits_for_its_log_commit(app, settings, auth, world,
                                                                            monkeypatch, session):
    slow_commit = querylog.GroupCommitWriter._commit
    committing, committed_at = threading.Event(), []

    def slower(self, entries):  # a slow disk
        committing.set()
        time.sleep(0.4)
        slow_commit(self, entries)
        committed_at.append(time.perf_counter())

    monkeypatch.setattr(querylog.GroupCommitWriter, "_commit", slower)
    url = f"/api/v1/subjects/{world.ent1}/grade"

    async def scenario() -> tuple[httpx.Response, float, float, httpx.Response]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
            read = asyncio.create_task(http.get(url, headers=auth("ent1")))
            while not committing.is_set():  # the read is now waiting for its commit
                await asyncio.sleep(0.005)
            me = await http.get("/api/v1/auth/me", headers=auth("reg_samr"))
            other_done = time.perf_counter()
            answered = await read
            return answered, other_done, time.perf_counter(), me

    read, other_done, read_done, me = asyncio.run(scenario())
    assert me.status_code == 200 and other_done < committed_at[0]  # answered during the commit, not after it
    assert read.status_code == 200 and read_done > committed_at[0]  # the grade only after its entry was committed
    assert [e.outcome for e in _entries(session)] == ["allowed"]


def test_the_loop_connection_only_reads(database_url):
    from serving.db.session import loop_connection

    if not database_url.startswith("sqlite"):
        pytest.skip("the event-loop connection is SQLite's")

    async def scenario() -> None:
        conn = loop_connection(database_url)
        assert conn is loop_connection(database_url)  # one per event loop, kept
        with pytest.raises(exc.OperationalError, match="readonly"):
            conn.execute(text("DELETE FROM grades"))
        conn.rollback()
        assert conn.scalar(text("SELECT count(*) FROM grades")) > 0

    asyncio.run(scenario())


def test_event_loop_reads_hold_no_snapshot_between_requests(app, settings, auth, world, session):
    """After answered reads, the worker's long-lived read connection holds no snapshot: a writer's
    change can be checkpointed out of the WAL completely (an unfinished read result would pin it)."""
    if not (settings.event_loop_reads and settings.database_url.startswith("sqlite")):
        pytest.skip("the event-loop connection is SQLite's")

    async def scenario() -> None:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
            for user in ("ent1", "ent2"):  # one allowed read, one denied
                await http.get(f"/api/v1/subjects/{world.ent1}/grade", headers=auth(user))
            session.execute(text("UPDATE grades SET score = score + 0.001"))  # real WAL frames
            session.commit()
            busy, _, _ = session.execute(text("PRAGMA wal_checkpoint(TRUNCATE)")).one()
            assert busy == 0
            # the check can fail: a result left unfinished on that connection pins the WAL
            from serving.db.session import loop_connection

            pinned = loop_connection(settings.database_url).execute(text("SELECT uscc FROM grades"))
            pinned.fetchone()
            session.execute(text("UPDATE grades SET score = score - 0.001"))
            session.commit()
            # a pinned reader makes the checkpoint wait out the busy timeout before it says busy: 30 s
            session.execute(text("PRAGMA busy_timeout = 200"))
            busy, _, _ = session.execute(text("PRAGMA wal_checkpoint(TRUNCATE)")).one()
            pinned.close()
            assert busy == 1

    asyncio.run(scenario())


def test_a_locked_database_sends_the_read_to_a_thread_not_the_loop_waiting(app, settings, auth, world,
                                                                           session, monkeypatch):
    if not (settings.event_loop_reads and settings.database_url.startswith("sqlite")):
        pytest.skip("the event-loop read is SQLite's")
    from serving import deps

    monkeypatch.undo()  # this test takes the thread path on purpose
    real_can_read, calls = deps.can_read, []

    def locked_on_the_loop(source, principal, uscc):
        calls.append(type(source).__name__)
        if len(calls) == 1:
            raise exc.OperationalError("SELECT …", {}, Exception("database is locked"))
        return real_can_read(source, principal, uscc)

    monkeypatch.setattr(deps, "can_read", locked_on_the_loop)
    r = TestClient(app).get(f"/api/v1/subjects/{world.ent1}/grade", headers=auth("ent1"))
    assert r.status_code == 200 and "score" in r.json()
    assert calls == ["Connection", "Session"]  # the loop's connection, then a session in a thread
    assert [e.outcome for e in _entries(session)] == ["allowed"]  # logged once


def test_off_the_event_loop_no_read_runs_on_it(client, settings, auth, world, session, monkeypatch):
    """At city scale most pages a read of a random subject needs are not in the OS's cache: a read
    on the event loop would stop every other request of the worker while the disk answers. With
    ``event_loop_reads`` off, the coverage check and the grade read run in a thread (the entry is
    still durable before the grade is read: test_srv_querylog_load)."""
    if settings.event_loop_reads:
        pytest.skip("the default reads on the event loop")
    from serving import deps
    from serving.services import grades

    def on_a_loop() -> bool:
        try:
            asyncio.get_running_loop()
            return True
        except RuntimeError:
            return False

    seen: list[tuple[str, bool]] = []
    real_can_read, real_read = deps.can_read, grades.latest_grade_values

    def can_read(source, principal, uscc):
        seen.append(("coverage", on_a_loop()))
        return real_can_read(source, principal, uscc)

    def latest_grade_values(source, uscc):
        seen.append(("grade", on_a_loop()))
        return real_read(source, uscc)

    monkeypatch.setattr(deps, "can_read", can_read)
    monkeypatch.setattr(grades, "latest_grade_values", latest_grade_values)
    assert client.get(f"/api/v1/subjects/{world.ent1}/grade", headers=auth("ent1")).status_code == 200
    assert client.get(f"/api/v1/subjects/{world.ent1}/grade", headers=auth("ent2")).status_code == 404
    assert seen == [("coverage", False), ("grade", False), ("coverage", False)]  # nothing read for ent2
    assert [e.outcome for e in _entries(session)] == ["allowed", "denied"]


def test_threads_and_coroutines_share_one_writer_and_one_chain(database_url, session, monkeypatch):
    from serving.db.session import engine_for

    commits: list[int] = []
    real_commit = querylog.GroupCommitWriter._commit

    def counted(self, entries):
        time.sleep(0.01)
        real_commit(self, entries)
        commits.append(len(entries))

    monkeypatch.setattr(querylog.GroupCommitWriter, "_commit", counted)
    engine = engine_for(database_url)
    who = Principal(username="reg", role="regulator", department="samr")

    def thread_reads(k: int) -> None:
        s = next(iter_session(database_url))
        for i in range(5):
            append_entry(s, principal=who, uscc=f"9132010000{k:02d}{i:06d}", purpose="线程", endpoint="GET /t")
        s.close()

    async def coroutine_reads() -> None:
        await asyncio.gather(*(querylog.append_entry_async(engine, principal=who, uscc=f"9132010009{i:08d}",
                                                            purpose="协程", endpoint="GET /t") for i in range(40)))

    threads = [threading.Thread(target=thread_reads, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    asyncio.run(coroutine_reads())
    for t in threads:
        t.join()
    check = check_chain(session)
    assert check.ok and check.entries == 60
    assert sum(commits) == 60 and len(commits) < 60  # grouped
    purposes = session.scalars(select(QueryLogEntry.purpose)).all()
    assert purposes.count("协程") == 40 and purposes.count("线程") == 20


def test_a_failed_commit_reaches_every_waiting_coroutine(database_url, session, monkeypatch):
    from serving.db.session import engine_for

    def disk_full(self, entries):
        raise OSError("No space left on device")

    monkeypatch.setattr(querylog.GroupCommitWriter, "_commit", disk_full)
    engine = engine_for(database_url)
    who = Principal(username="reg", role="regulator", department="samr")

    async def scenario() -> list[BaseException | None]:
        return await asyncio.gather(*(querylog.append_entry_async(engine, principal=who, uscc="913201000000000001",
                                                                   purpose="核验", endpoint="GET /t")
                                      for _ in range(5)), return_exceptions=True)

    results = asyncio.run(scenario())
    assert all(isinstance(r, OSError) for r in results)
    assert check_chain(session).entries == 0


def test_entries_written_by_the_writer_and_in_a_callers_transaction_are_one_chain(database_url, session):
    """Entries committed by the group writer and entries joining a writing caller's transaction store the
    same columns the same way: the chain, recomputed from the stored rows, verifies across both."""
    from serving.db.tables import User

    who = Principal(username="reg", role="regulator", department="samr")
    for i in range(6):
        s = next(iter_session(database_url))
        if i % 2:  # a caller that wrote: its entry joins its own transaction (on its connection)
            s.add(User(username=f"u{i}", password_hash="x", role="analyst"))
            s.flush()
        append_entry(s, principal=who, uscc=f"9132010000000{i:05d}", purpose="混合", endpoint="GET /t")
        s.close()
    assert check_chain(session).ok and check_chain(session).entries == 6
    stored = _entries(session)
    assert [e.seq for e in stored] == list(range(1, 7))
    assert all(e.at.tzinfo is not None and e.at.utcoffset().total_seconds() == 0 for e in stored)
