"""The hot single-subject grade read: the same answer and the same guards as the generic path,
and the query log's fsync done after its commit but before the answer."""

from __future__ import annotations

import os
import threading
import time

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from serving.db.models import QueryLogEntry
from serving.db.session import iter_session, make_engine
from serving.schemas import GradeOut
from serving.security import Principal
from serving.services import querylog
from serving.services.grades import latest_grade
from serving.services.querylog import append_entry, check_chain


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
    ("analyst", {"purpose": "统计分析"}, 403, None),                      # role without subject data
    ("reg_samr", {}, 422, None),                                          # staff must give a purpose
    ("ent2", {}, 403, "denied"),                                          # another enterprise: logged
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
def test_a_logged_read_returns_only_after_the_wal_is_synced(database_url, monkeypatch, synchronous):
    if not database_url.startswith("sqlite"):
        pytest.skip("the WAL fsync is SQLite's; PostgreSQL commits are durable")
    events: list[str] = []
    real_commit, real_sync = querylog.GroupCommitWriter._commit, os.fdatasync

    def commit(self, entries):
        real_commit(self, entries)
        events.append("commit")

    def fdatasync(fd):
        real_sync(fd)
        events.append("fsync")

    monkeypatch.setattr(querylog.GroupCommitWriter, "_commit", commit)
    monkeypatch.setattr(querylog.os, "fdatasync", fdatasync)
    engine = make_engine(database_url, sqlite_synchronous=synchronous)  # an engine (and writer) of its own
    session = Session(engine)
    reader = Principal(username="reg", role="regulator", department="samr")
    for i in range(3):
        append_entry(session, principal=reader, uscc=f"91320100000000{i:04d}", purpose="核验", endpoint="GET /t")
        events.append("returned")
    # FULL: each append committed, then synced the WAL, then returned; NORMAL: never synced
    assert events == (["commit", "fsync", "returned"] * 3 if synchronous == "FULL" else ["commit", "returned"] * 3)
    with engine.connect() as conn:  # the log's commit gave its connection its settings back
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == {"FULL": 2, "NORMAL": 1}[synchronous]
        assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 1000
    session.close()
    engine.dispose()
    check = next(iter_session(database_url))
    assert check_chain(check).ok and check_chain(check).entries == 3
    check.close()


def test_concurrent_reads_share_fsyncs_and_none_returns_before_one_covering_it(database_url, monkeypatch):
    if not database_url.startswith("sqlite"):
        pytest.skip("the WAL fsync is SQLite's; PostgreSQL commits are durable")
    events: list[tuple[str, object]] = []
    guard = threading.Lock()
    real_commit, real_sync = querylog.GroupCommitWriter._commit, os.fdatasync

    def commit(self, entries):
        real_commit(self, entries)
        with guard:
            events.append(("commit", {e.uscc for e in entries}))

    def slow_fdatasync(fd):  # a slow disk: commits made meanwhile must share the next fsync
        with guard:
            events.append(("fsync_start", None))
        time.sleep(0.02)
        real_sync(fd)
        with guard:
            events.append(("fsync_end", None))

    monkeypatch.setattr(querylog.GroupCommitWriter, "_commit", commit)
    monkeypatch.setattr(querylog.os, "fdatasync", slow_fdatasync)
    engine = make_engine(database_url)
    reader = Principal(username="reg", role="regulator", department="samr")

    def work(k: int) -> None:
        session = Session(engine)
        for i in range(5):
            uscc = f"9132010{k:02d}{i:09d}"
            append_entry(session, principal=reader, uscc=uscc, purpose="核验", endpoint="GET /t")
            with guard:
                events.append(("returned", uscc))
        session.close()

    threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    engine.dispose()
    kinds = [kind for kind, _ in events]
    assert kinds.count("returned") == 40 and kinds.count("fsync_start") < kinds.count("commit")
    for i, (kind, uscc) in enumerate(events):
        if kind != "returned":
            continue
        committed = next(j for j, (k, v) in enumerate(events) if k == "commit" and uscc in v)
        starts = [j for j in range(committed + 1, i) if events[j][0] == "fsync_start"]
        assert starts, f"{uscc} returned without an fsync started after its commit"
        assert any(events[j][0] == "fsync_end" for j in range(starts[0] + 1, i))
    check = next(iter_session(database_url))
    assert check_chain(check).ok and check_chain(check).entries == 40
    check.close()


def test_an_entry_being_appended_carries_every_column_of_the_log():
    assert set(querylog.LoggedRead.__slots__) == {c.key for c in QueryLogEntry.__table__.columns}


def test_the_log_commits_without_fsync_or_checkpoint_under_the_lock_and_checkpoints_beside(database_url,
                                                                                          monkeypatch):
    if not database_url.startswith("sqlite"):
        pytest.skip("WAL checkpoints are SQLite's")
    inside: list[tuple[int, int]] = []
    checkpoints: list[float] = []
    real_chain, real_checkpoint = querylog._chain_in_transaction, querylog.GroupCommitWriter._checkpoint

    def chain(conn, entries):
        inside.append((conn.exec_driver_sql("PRAGMA synchronous").scalar(),
                       conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar()))
        real_chain(conn, entries)

    def checkpoint(self):
        checkpoints.append(time.monotonic())
        real_checkpoint(self)

    monkeypatch.setattr(querylog, "_chain_in_transaction", chain)
    monkeypatch.setattr(querylog.GroupCommitWriter, "_checkpoint", checkpoint)
    engine = make_engine(database_url)
    session = Session(engine)
    reader = Principal(username="reg", role="regulator", department="samr")
    for i in range(5):
        append_entry(session, principal=reader, uscc=f"91320100000000{i:04d}", purpose="核验", endpoint="GET /t")
    for thread in threading.enumerate():
        if thread.name == "querylog-checkpoint":
            thread.join()
    assert inside == [(1, 0)] * 5  # NORMAL (the fsync follows outside the lock), no auto-checkpoint
    assert len(checkpoints) == 1  # five appends within CHECKPOINT_INTERVAL_S: one passive checkpoint
    session.close()
    engine.dispose()
