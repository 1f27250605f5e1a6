"""The credential cache under load: a credential is checked against the database once per worker
at a time, and re-checked before its entry expires without a request waiting for it, while a
deactivated user is still refused within the cache's TTL (issue 14, the API load's tail)."""

from __future__ import annotations

import asyncio
import threading
import time

import httpx
import pytest

from serving import deps
from serving.security import CredentialCache
from serving.services.users import set_active

READ = {"X-Purpose": "case review"}


@pytest.fixture
def counted_checks(monkeypatch):
    """Every database check of a person's token, slowed down so that requests overlap it."""
    checks: list[str] = []
    real = deps.person_is_current
    lock = threading.Lock()

    def slow(session, principal):
        with lock:
            checks.append(principal.username)
        time.sleep(0.2)
        return real(session, principal)

    monkeypatch.setattr(deps, "person_is_current", slow)
    return checks


def run(app, requests):
    """Send ``requests`` (coroutine functions of an httpx client) concurrently to the app, then let
    any background work finish; returns their answers."""

    async def main():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as http:
            answers = await asyncio.gather(*(r(http) for r in requests))
            for _ in range(100):  # background re-checks run on this loop
                checks = getattr(app.state, "credential_checks", None)
                if checks is None or not checks._refreshes:
                    break
                await asyncio.sleep(0.02)
            return answers

    return asyncio.run(main())


def test_concurrent_requests_with_one_credential_share_one_database_check(app, auth, world, session,
                                                                          counted_checks):
    headers = auth("ent1")
    me = [lambda http: http.get("/api/v1/auth/me", headers=headers) for _ in range(12)]
    grade = [lambda http: http.get(f"/api/v1/subjects/{world.ent1}/grade", headers=headers | READ) for _ in range(8)]
    answers = run(app, me + grade)
    assert [a.status_code for a in answers] == [200] * 20
    assert counted_checks == ["ent1"]  # before: one thread-pool check per request that missed the cache

    set_active(session, "ent1", False)
    app.state.credential_cache = CredentialCache(ttl_s=10)  # as after the entry expired
    answers = run(app, me + grade)
    assert [a.status_code for a in answers] == [401] * 20  # the shared answer is the refusal
    assert counted_checks == ["ent1", "ent1"]


def test_a_credential_in_use_is_rechecked_ahead_of_expiry_and_revocation_still_holds(app, auth, world, session,
                                                                                     counted_checks):
    now = [0.0]
    app.state.credential_cache = CredentialCache(ttl_s=10, clock=lambda: now[0])
    headers = auth("ent1")

    def me(http):
        return http.get("/api/v1/auth/me", headers=headers)

    assert run(app, [me])[0].status_code == 200 and len(counted_checks) == 1
    now[0] = 5.0
    assert run(app, [me])[0].status_code == 200 and len(counted_checks) == 1  # fresh: from the cache
    now[0] = 8.0  # past 3/4 of the TTL: served from the cache, re-checked in the background, once
    answers = run(app, [me] * 5)
    assert [a.status_code for a in answers] == [200] * 5 and len(counted_checks) == 2
    now[0] = 17.0  # 9 s after that re-check (an entry left alone would have expired at 10)
    assert run(app, [me])[0].status_code == 200 and len(counted_checks) == 3

    set_active(session, "ent1", False)
    now[0] = 25.0  # still within the TTL of the last passed check (17): cached, and re-checked
    assert run(app, [me])[0].status_code == 200 and len(counted_checks) == 4
    r = run(app, [me])[0]  # the failed re-check dropped the entry: checked, refused
    assert r.status_code == 401 and len(counted_checks) == 5


def test_a_cached_credential_is_never_served_past_its_ttl_without_a_passed_check(app, auth, session,
                                                                                  counted_checks):
    now = [0.0]
    app.state.credential_cache = CredentialCache(ttl_s=10, clock=lambda: now[0])
    headers = auth("ent1")
    assert run(app, [lambda http: http.get("/api/v1/auth/me", headers=headers)])[0].status_code == 200
    set_active(session, "ent1", False)
    now[0] = 10.0  # expired, with no request in between to re-check it: the database decides
    assert run(app, [lambda http: http.get("/api/v1/auth/me", headers=headers)])[0].status_code == 401


def test_refresh_due_answers_once_per_refresh_and_put_or_drop_ends_it():
    from serving.security import Principal, credential_key

    now = [0.0]
    cache = CredentialCache(ttl_s=10, clock=lambda: now[0])
    who = Principal(username="ent1", role="enterprise", token_id="abc")
    key = credential_key(token=who)
    assert not cache.refresh_due(key)  # not cached
    cache.put(key, who)
    assert not cache.refresh_due(key)
    now[0] = 7.5
    assert cache.refresh_due(key) and not cache.refresh_due(key)  # one re-check at a time
    cache.put(key, who)  # passed: renewed from now
    now[0] = 14.9
    assert cache.get(key) == who and not cache.refresh_due(key)
    now[0] = 15.1
    assert cache.refresh_due(key)
    cache.drop(key)  # failed
    assert cache.get(key) is None and not cache.refresh_due(key)
    cache.put(key, who)
    now[0] = 22.6
    assert cache.refresh_due(key)
    cache.forget(key)  # a logout meanwhile: the re-check that passed just before cannot put it back
    cache.put(key, who)
    assert cache.get(key) is None
