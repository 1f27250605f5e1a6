"""Login limits against a real ``tiers serve`` (2 uvicorn workers, started as the README starts
it): neither rotating ``X-Forwarded-For`` nor spraying one password over many accounts gets
through, and an attacker elsewhere cannot keep a user out of the address they use."""

from __future__ import annotations

import httpx
import pytest
from sec_fixtures import tiers_serve
from srv_fixtures import PASSWORD

from serving.db.session import iter_session
from serving.security import hash_password

pytestmark = pytest.mark.slow


def _login(http: httpx.Client, username: str, password: str, forwarded: str | None = None) -> httpx.Response:
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    return http.post("/api/v1/auth/token", data={"username": username, "password": password}, headers=headers)


def _client(base: str, source: str = "127.0.0.1") -> httpx.Client:
    """A client whose connections come from ``source`` (any 127.0.0.0/8 address is loopback on
    Linux): a real, different client address as the server's socket sees it."""
    return httpx.Client(base_url=base, transport=httpx.HTTPTransport(local_address=source), timeout=30)


def test_rotating_forwarded_for_does_not_escape_the_limit(tmp_path, database_url):
    with tiers_serve(tmp_path, database_url) as base, _client(base) as http:
        statuses = [_login(http, "admin", f"wrong-password-{n}", forwarded=f"203.0.113.{n + 1}").status_code
                    for n in range(12)]
        assert 429 in statuses, statuses
        assert statuses[:3] == [401, 401, 401]
        # the right password from yet another claimed address, during the back-off: refused
        late = _login(http, "admin", PASSWORD, forwarded="198.51.100.77")
        assert late.status_code == 429, late.text
        assert int(late.headers["Retry-After"]) >= 1
        # and from a really new address (another source IP): the account is backing off too
        with _client(base, "127.0.0.9") as elsewhere:
            assert _login(elsewhere, "admin", PASSWORD).status_code == 429


def test_one_password_over_fifty_accounts_is_limited(tmp_path, database_url):
    session = next(iter_session(database_url))
    try:
        from serving.db.tables import User

        digest = hash_password("some-other-password-1")
        session.add_all(User(username=f"staff{n:02d}", password_hash=digest, role="analyst", active=True)
                        for n in range(50))
        session.commit()
    finally:
        session.close()
    with tiers_serve(tmp_path, database_url) as base, _client(base) as http:
        statuses = [_login(http, f"staff{n:02d}", "Spring2026!").status_code for n in range(50)]
    assert 429 in statuses, statuses
    assert statuses.count(401) <= 25  # most of the spray never reaches a password check


def test_an_attacker_elsewhere_cannot_keep_a_user_out_of_their_own_address(tmp_path, database_url):
    with tiers_serve(tmp_path, database_url) as base, _client(base, "127.0.0.2") as user:
        assert _login(user, "reg_samr", PASSWORD).status_code == 200  # the user's usual address
        with _client(base, "127.0.0.3") as attacker:
            statuses = [_login(attacker, "reg_samr", f"guess-{n}").status_code for n in range(15)]
            assert 429 in statuses
            assert _login(attacker, "reg_samr", PASSWORD).status_code == 429
        assert _login(user, "reg_samr", PASSWORD).status_code == 200


def test_a_concurrent_burst_over_two_workers_gets_no_more_guesses(tmp_path, database_url):
    """Thirty guesses at once, spread by the kernel over the two workers: the limit is one count in
    the database, and each try counts the tries recorded before it, so the burst gets the five free
    password checks, plus one per back-off step that passes while it lasts (1 s, then 2 s more …
    on a busy machine the burst takes seconds), as thirty guesses in a row would; never thirty."""
    import asyncio

    async def burst(base: str) -> list[int]:
        async with httpx.AsyncClient(base_url=base, timeout=60) as http:
            answers = await asyncio.gather(*(http.post("/api/v1/auth/token", data={
                "username": "analyst", "password": f"guess-{n}"}) for n in range(30)))
        return [a.status_code for a in answers]

    with tiers_serve(tmp_path, database_url, workers=2) as base:
        statuses = asyncio.run(burst(base))
    assert 5 <= statuses.count(401) <= 8 and statuses.count(429) >= 22, statuses
