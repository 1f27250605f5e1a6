"""Bad API keys have their own per-address bucket (gap 3 of session 15): a scanner behind an
office's NAT hammering wrong ``X-API-Key``s backs off on its own count and never slows that
address's password logins; wrong passwords never slow that address's API keys. Both stay
bounded: each bucket's free failures, then the back-off (docs/security.md, Login limits)."""

from __future__ import annotations

from fastapi.testclient import TestClient
from srv_fixtures import PASSWORD, app_on

from serving.i18n import TEXTS

ME = "/api/v1/auth/me"
FORGED = "tsk_" + "B" * 43


def _login(client, password: str) -> int:
    return client.post("/api/v1/auth/token", data={"username": "reg_samr", "password": password}).status_code


def _key(client) -> int:
    return client.get(ME, headers={"X-API-Key": FORGED}).status_code


def test_bad_api_keys_do_not_slow_the_addresss_password_logins(settings):
    client = TestClient(app_on(settings.model_copy(update={"login_free_failures_per_address": 3,
                                                           "api_key_free_failures_per_address": 2})))
    assert [_key(client) for _ in range(4)] == [401, 401, 429, 429]  # the key bucket: 2 free, then back-off
    held = client.get(ME, headers={"X-API-Key": FORGED})
    wait = held.headers["Retry-After"]  # its sentences are the catalogue's, in both languages
    assert held.json()["error"]["message_zh"] == TEXTS["too_many_api_keys"]["zh"].format(s=wait)
    assert held.json()["error"]["message"] == TEXTS["too_many_api_keys"]["en"].format(s=wait)
    assert _login(client, "wrong-password-1") == 401  # the password bucket is untouched
    assert _login(client, PASSWORD) == 200


def test_wrong_passwords_do_not_slow_the_addresss_api_keys_and_each_bucket_stays_bounded(settings):
    client = TestClient(app_on(settings.model_copy(update={"login_free_failures_per_address": 2,
                                                           "login_free_failures_per_account": 50,
                                                           "api_key_free_failures_per_address": 2})))
    assert [_login(client, f"wrong-password-{i}") for i in range(2)] == [401, 401]
    assert _until_held_back(lambda: _login(client, "wrong-password-x"))[-1] == 429  # the passwords' bucket is full
    statuses = _until_held_back(lambda: _key(client))
    assert statuses[:2] == [401, 401] and statuses[-1] == 429  # ... not the keys': 2 free, then held back


def _until_held_back(call, tries: int = 8) -> list[int]:
    """Statuses until the first 429 (the back-off starts at 1 s after the last failure and doubles:
    on a slow machine a try may land after a wait has passed, so a bound is asserted, not a count)."""
    statuses = []
    for _ in range(tries):
        statuses.append(call())
        if statuses[-1] == 429:
            break
    return statuses
