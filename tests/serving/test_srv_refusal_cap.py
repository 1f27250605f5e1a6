"""Refusals have a per-user hourly cap (gap of session 16): an authenticated prober's 403s are
logged, each, up to ``TIERS_REFUSALS_PER_HOUR`` in the last hour (the rule of the other hourly
limits, ``services.rates``); past it the caller is answered 429 with ``Retry-After`` (the
sentence from the text catalogue), and the log gets one compact entry saying the cap was reached,
not one per try. Allowed calls never spend the cap; each user has their own."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from srv_fixtures import ENT1, app_on

from serving.db.tables import QueryLogEntry
from serving.i18n import TEXTS
from serving.services.querylog_check import check_chain

USERS = "/api/v1/admin/querylog"  # refused to every role but admin


def _denied(session, actor: str) -> list[QueryLogEntry]:
    session.expire_all()
    return list(session.scalars(select(QueryLogEntry).where(QueryLogEntry.actor == actor,
                                                            QueryLogEntry.outcome == "denied")
                                .order_by(QueryLogEntry.seq)))


def test_refusals_past_the_hourly_cap_are_answered_429_and_logged_once(settings, auth, session):
    client = TestClient(app_on(settings.model_copy(update={"refusals_per_hour": 3})))
    statuses = [client.get(USERS, headers=auth("analyst"), params={"purpose": f"try {i}"}).status_code
                for i in range(3)]
    assert statuses == [403, 403, 403]
    assert len(_denied(session, "analyst")) == 3  # each refusal up to the cap: its own entry
    held = [client.get(USERS, headers=auth("analyst")) for _ in range(4)]
    assert [r.status_code for r in held] == [429] * 4
    wait = held[0].headers["Retry-After"]
    assert 1 <= int(wait) <= 3600
    error = held[0].json()["error"]
    assert error["code"] == "too_many_attempts"
    assert error["message_zh"] == TEXTS["too_many_refusals"]["zh"].format(n=3, s=wait)
    assert error["message"] == TEXTS["too_many_refusals"]["en"].format(n=3, s=wait)
    entries = _denied(session, "analyst")
    assert len(entries) == 4  # past the cap: one compact entry, then nothing for the hour
    assert entries[-1].purpose.startswith("拒绝（too_many_attempts）")
    assert entries[-1].endpoint == f"GET {USERS}" and entries[-1].actor_role == "analyst"
    # a refusal by a route's own rule spends the same cap; an allowed call is never held back
    r = client.get(f"/api/v1/subjects/{ENT1}/grade", headers=auth("analyst"), params={"purpose": "x"})
    assert r.status_code == 429
    assert client.get("/api/v1/analyst/alerts", headers=auth("analyst")).status_code == 200
    # another user has a cap of their own
    assert client.get(USERS, headers=auth("ent1")).status_code == 403
    assert len(_denied(session, "ent1")) == 1
    assert check_chain(session).ok


def test_a_route_rules_refusals_count_against_the_same_cap(settings, auth, session):
    client = TestClient(app_on(settings.model_copy(update={"refusals_per_hour": 2})))
    params = {"department": "samr", "item": "SAMR-03", "as_of": "2026-09-30"}
    got = [client.get("/api/v1/inspection-ratios", params=params, headers=auth("reg_tax")).status_code
           for _ in range(4)]
    assert got == [403, 403, 429, 429]
    assert len(_denied(session, "reg_tax")) == 3
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(QueryLogEntry)) > 0


def test_every_operation_that_may_refuse_documents_the_caps_429(app):
    # a route that answers 403 answers 429 past the caller's hourly refusals: its OpenAPI says so
    operations = [op for ops in app.openapi()["paths"].values() for op in ops.values() if "403" in op["responses"]]
    assert len(operations) > 60
    assert [op["operationId"] for op in operations
            if "too_many_attempts" not in op["responses"].get("429", {}).get("description", "")] == []


def _race(n_threads: int, calls: int, call) -> list:
    """``call()`` made ``calls`` times by each of ``n_threads`` threads started together."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    start = threading.Barrier(n_threads)

    def run(_: int) -> list:
        start.wait()
        return [call() for _ in range(calls)]

    with ThreadPoolExecutor(n_threads) as pool:
        return [got for batch in pool.map(run, range(n_threads)) for got in batch]


def test_concurrent_spends_never_pass_the_limit(database_url, session):
    # found as attacker: spend counted with a SELECT, then INSERTed, unserialised: 160 concurrent
    # refusals under a cap of 100 got 108 answers (and log entries) past the count
    from serving.db.session import session_factory
    from serving.db.tables import RateEvent
    from serving.errors import TooManyAttempts
    from serving.services.rates import spend

    factory = session_factory(database_url, pool_size=41, max_overflow=0)

    def one() -> bool:
        s = factory()
        try:
            spend(s, action="refusal", actor="person:analyst", per_hour=50)
            return True
        except TooManyAttempts:
            return False
        finally:
            s.close()

    spent = _race(20, 6, one)
    assert spent.count(True) == 50
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(RateEvent).where(RateEvent.action == "refusal")) == 50


def test_concurrent_refusals_through_the_app_stay_within_the_cap_plus_one(settings, auth, session):
    client = TestClient(app_on(settings.model_copy(update={"refusals_per_hour": 30})))
    headers = auth("analyst")
    with client:
        statuses = _race(16, 4, lambda: client.get(USERS, headers=headers).status_code)
    assert statuses.count(403) == 30 and statuses.count(429) == 34
    assert len(_denied(session, "analyst")) == 31
    assert check_chain(session).ok
