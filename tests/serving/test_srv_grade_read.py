"""The hot single-subject grade read: the same answer and the same guards as the generic path,
and the query log's fsync done after its commit but before the answer."""

from __future__ import annotations

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
def test_the_log_commits_at_the_configured_durability_with_sqlites_own_checkpoint(database_url, monkeypatch,
                                                                                 synchronous):
    """The log's transaction commits with the engine's synchronous setting (FULL by default: the
    fsync is SQLite's, before the caller is answered) and keeps SQLite's automatic checkpoint,
    which bounds the WAL under sustained load."""
    if not database_url.startswith("sqlite"):
        pytest.skip("synchronous and WAL checkpoints are SQLite's")
    inside: list[tuple[int, int]] = []
    real_chain = querylog._chain_in_transaction

    def chain(conn, entries):
        inside.append((conn.exec_driver_sql("PRAGMA synchronous").scalar(),
                       conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar()))
        real_chain(conn, entries)

    monkeypatch.setattr(querylog, "_chain_in_transaction", chain)
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
