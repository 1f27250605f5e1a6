"""Login (OAuth2 password → JWT), API keys, rate limit, settings safety, masking helpers."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError
from srv_fixtures import PASSWORD

from serving.keys import make_report_certificate, make_report_key
from serving.security import mask_id_number, mask_name
from serving.settings import Settings


def login(client, username, password):
    return client.post("/api/v1/auth/token", data={"username": username, "password": password})


def test_password_login_gives_a_working_token(client, world):
    r = login(client, "ent1", PASSWORD)
    assert r.status_code == 200
    headers = {"Authorization": f"Bearer {r.json()['access_token']}"}
    me = client.get("/api/v1/auth/me", headers=headers).json()
    assert me == {"username": "ent1", "role": "enterprise", "kind": "person", "department": None,
                  "section": None, "uscc": world.ent1}


def test_wrong_password_and_forged_token_are_refused(client, settings, world):
    assert login(client, "ent1", "wrong-password").status_code == 401
    assert login(client, "nobody", PASSWORD).status_code == 401
    import jwt

    forged = jwt.encode({"sub": "admin", "role": "admin", "exp": 4102444800}, "not-the-secret-" * 3, algorithm="HS256")
    r = client.get("/api/v1/admin/querylog", headers={"Authorization": f"Bearer {forged}"})
    assert r.status_code == 401 and r.json()["error"]["code"] == "not_authenticated"


def test_failed_logins_are_rate_limited_per_user_and_ip(client):
    for _ in range(5):
        assert login(client, "ent1", "wrong-password").status_code == 401
    r = login(client, "ent1", PASSWORD)  # even the right password waits
    assert r.status_code == 429 and 1 <= int(r.headers["Retry-After"]) <= 60
    assert r.json()["error"]["code"] == "too_many_attempts"
    assert login(client, "ent2", PASSWORD).status_code == 200  # another username is unaffected


def test_api_key_for_machines(client, auth, session, world):
    created = client.post("/api/v1/admin/users", headers=auth("admin"), json={
        "username": "pipeline-samr", "password": "long-random-password", "role": "regulator", "department": "samr"})
    assert created.status_code == 201
    key = client.post("/api/v1/admin/api-keys", headers=auth("admin"),
                      json={"username": "pipeline-samr", "name": "nightly"}).json()["key"]
    me = client.get("/api/v1/auth/me", headers={"X-API-Key": key}).json()
    assert me["kind"] == "machine" and me["department"] == "samr"
    from serving.db.tables import ApiKey

    assert key not in {row.key_hash for row in session.query(ApiKey)}  # stored hashed only
    assert client.get("/api/v1/auth/me", headers={"X-API-Key": key + "x"}).status_code == 401


def test_user_scope_must_match_role(client, auth):
    r = client.post("/api/v1/admin/users", headers=auth("admin"), json={
        "username": "reg_x", "password": "long-random-password", "role": "regulator"})
    assert r.status_code == 422 and r.json()["error"]["field"] == "department"


# generated keys: production refuses typed ones ("x" * 40) as not random
_REPORT_KEY = make_report_key()
PRODUCTION_KEYS = {"jwt_secret": "kQ3v9ZpL2xW7mR4tY8nB1cD6fH0jS5gE-uA_oI", "querylog_mac_key": "Zr7T2pQ9vL4xM8kW1nB6cY3dF0hJ5sG-eU_aOi",
                   "querylog_signing_key": "9f1c4e7a2b8d3f6e0a5c9b1d7e4f2a8c3b6d0e9f1a7c4b2e8d5f3a6c0b9e1d4f",
                   "report_signing_key": _REPORT_KEY, "report_certificate": make_report_certificate(_REPORT_KEY)}


@pytest.mark.parametrize("missing", sorted(PRODUCTION_KEYS))
def test_production_refuses_to_run_without_each_key(missing):
    with pytest.raises(ValidationError, match=f"TIERS_{missing.upper()}"):
        Settings(environment="production", **{k: v for k, v in PRODUCTION_KEYS.items() if k != missing})
    with pytest.raises(ValidationError, match=f"TIERS_{missing.upper()}"):  # nor with a weak one
        Settings(environment="production", **{**PRODUCTION_KEYS, missing: "short"})
    assert Settings(environment="production", **PRODUCTION_KEYS).environment == "production"


def test_settings_read_env_prefix(monkeypatch):
    monkeypatch.setenv("TIERS_DATABASE_URL", "sqlite:///elsewhere.db")
    assert Settings().database_url == "sqlite:///elsewhere.db"


@given(st.text(min_size=2, max_size=6, alphabet="张王李赵刘陈杨黄周吴三四五六七八"))
def test_masked_name_keeps_only_the_family_name(name):
    masked = mask_name(name)
    assert masked[0] == name[0] and set(masked[1:]) == {"*"} and len(masked) == len(name)


@given(st.from_regex(r"\d{17}[\dX]", fullmatch=True))
def test_masked_id_keeps_first_and_last_four(id_number):
    masked = mask_id_number(id_number)
    assert masked[:4] == id_number[:4] and masked[-4:] == id_number[-4:] and masked[4:-4] == "*" * 10


def test_demo_users_only_in_development(session, tmp_path):
    from serving.demo import seed_demo_users
    from serving.errors import NotAllowed

    accounts = seed_demo_users(session, Settings(keys_dir=tmp_path))
    assert {role for _, _, role, _ in accounts} == {"admin", "regulator", "sector", "analyst", "enterprise"}
    with pytest.raises(NotAllowed):
        seed_demo_users(session, Settings(environment="production", **PRODUCTION_KEYS))
