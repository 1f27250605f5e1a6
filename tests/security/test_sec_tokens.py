"""Forged tokens: nobody who reads the repository can sign a token the service accepts, and a
token cannot live longer than the service's own sessions."""

from __future__ import annotations

import ast
import datetime as dt
import re
import stat
import subprocess
import uuid
import warnings

import jwt
import pytest
from sec_fixtures import REPO, server_key

from serving import security

ISSUER = getattr(security, "JWT_ISSUER", "tiered-supervision")
AUDIENCE = getattr(security, "JWT_AUDIENCE", "tiered-supervision-api")


def repository_literals() -> set[str]:
    """Every string literal of the repository's Python, TOML and Markdown files: what an attacker
    who cloned it would try as the signing key."""
    files = subprocess.run(["git", "ls-files", "*.py", "*.toml", "*.md"], cwd=REPO, capture_output=True,
                           text=True, check=True).stdout.split()
    found: set[str] = set()
    for name in files:
        path = REPO / name
        if not path.is_file():
            continue
        source = path.read_text(errors="replace")
        if name.endswith(".py"):
            for node in ast.walk(ast.parse(source)):
                if isinstance(node, ast.Constant) and isinstance(node.value, str):
                    found.add(node.value)
        else:
            for match in re.finditer(r'"([^"\n]*)"|\'([^\'\n]*)\'|`([^`\n]*)`', source):
                found.add(next(g for g in match.groups() if g is not None))
    return {s for s in found if s}


@pytest.fixture
def real_claims(client):
    """The claims of a token the service issues at login: what an attacker imitates (the format
    is in the repository); each test changes what it attacks."""
    from srv_fixtures import PASSWORD

    r = client.post("/api/v1/auth/token", data={"username": "admin", "password": PASSWORD})
    assert r.status_code == 200, r.text
    return jwt.decode(r.json()["access_token"], options={"verify_signature": False})


def admin_claims(template: dict, **overrides) -> dict:
    now = dt.datetime.now(dt.UTC)
    claims = {**template, "iat": now.timestamp(), "exp": int((now + dt.timedelta(minutes=5)).timestamp()),
              "jti": uuid.uuid4().hex}
    return {**claims, **overrides}


@pytest.mark.slow
def test_a_token_signed_with_any_string_of_the_repository_is_refused(client, real_claims):
    literals = repository_literals()
    assert len(literals) > 1000  # the walk found the code
    accepted = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PyJWT warns about short HMAC keys: that is the point
        for literal in sorted(literals):
            try:
                token = jwt.encode(admin_claims(real_claims), literal, algorithm="HS256")
            except UnicodeEncodeError:  # a lone surrogate (a test of bad input) is no key at all
                continue
            if client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"}).status_code != 401:
                accepted.append(literal)
    assert accepted == []


def test_the_service_makes_its_own_key_keeps_it_private_and_reuses_it(app, settings, keys_dir):
    from serving.app import create_app

    key = server_key(app)
    assert len(key) >= 32
    files = [p for p in keys_dir.iterdir() if p.read_text().strip() == key] if keys_dir.is_dir() else []
    assert files, "the generated key is kept in the keys directory"
    assert stat.S_IMODE(files[0].stat().st_mode) == 0o600
    assert server_key(create_app(settings)) == key  # a restart keeps the key: sessions survive it


def test_a_ten_year_token_signed_with_the_real_key_is_refused(client, app, real_claims):
    now = dt.datetime.now(dt.UTC)
    token = jwt.encode(admin_claims(real_claims, iat=now.timestamp(), exp=now + dt.timedelta(days=3650)),
                       server_key(app), algorithm="HS256")
    assert client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401


@pytest.mark.parametrize("claim", ["iss", "aud", "iat"])
def test_a_token_without_issuer_audience_or_issue_time_is_refused(client, app, real_claims, claim):
    claims = admin_claims(real_claims)
    claims.pop(claim, None)
    token = jwt.encode(claims, server_key(app), algorithm="HS256")
    assert client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_a_token_for_another_audience_is_refused(client, app, real_claims):
    token = jwt.encode(admin_claims(real_claims, aud="some-other-service"), server_key(app), algorithm="HS256")
    assert client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_a_login_token_works_and_carries_issuer_and_audience(client, app):
    from srv_fixtures import PASSWORD

    r = client.post("/api/v1/auth/token", data={"username": "admin", "password": PASSWORD})
    assert r.status_code == 200, r.text
    token = r.json()["access_token"]
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["iss"] == ISSUER and claims["aud"] == AUDIENCE
    assert client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"}).status_code == 200


def test_production_refuses_to_start_without_explicit_keys(tmp_path):
    import os
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("TIERS_")}
    env.update(TIERS_ENVIRONMENT="production", TIERS_KEYS_DIR=str(tmp_path / "keys"),
               TIERS_DATABASE_URL=f"sqlite:///{tmp_path / 'x.db'}")
    proc = subprocess.run([sys.executable, "-m", "serving.cli.main", "serve", "--port", "1"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "TIERS_JWT_SECRET" in proc.stderr
    assert not (tmp_path / "keys").exists()  # nothing generated in production


def test_the_credential_cache_never_answers_for_a_token_with_other_claims_and_the_same_jti():
    """Issue 14 finding 9: the cache was keyed by jti alone, so a token carrying another user's
    claims and a live jti got the cached answer of the first."""
    from serving.security import CredentialCache, Principal, credential_key

    admin = Principal(username="admin", role="admin", token_id="a" * 32, issued_at=1.0)
    forged = Principal(username="enterprise", role="enterprise", uscc="91320118941931114M", token_id="a" * 32,
                       issued_at=1.0)
    assert credential_key(token=admin) != credential_key(token=forged)
    cache = CredentialCache(ttl_s=60)
    cache.put(credential_key(token=admin), admin)
    assert cache.get(credential_key(token=forged)) is None
    assert cache.get(credential_key(token=admin)) == admin


@pytest.mark.parametrize("name,value", [
    ("jwt_secret", "0" * 32), ("jwt_secret", "ab" * 20), ("querylog_mac_key", "a" * 64),
    ("querylog_mac_key", "12345678901234567890123456789012"), ("querylog_signing_key", "0" * 64),
    ("querylog_signing_key", "0123456789abcdef" * 4),
])
def test_production_refuses_low_entropy_keys_and_says_how_to_make_one(tmp_path, name, value):
    """Issue 14 finding 8: "0"*32 was accepted as a production key."""
    import secrets as _secrets

    from pydantic import ValidationError

    from serving.keys import make_report_certificate, make_report_key
    from serving.settings import Settings

    report_key = make_report_key()
    keys = {"jwt_secret": _secrets.token_urlsafe(48), "querylog_mac_key": _secrets.token_urlsafe(48),
            "querylog_signing_key": _secrets.token_hex(32), "report_signing_key": report_key,
            "report_certificate": make_report_certificate(report_key)}
    Settings(environment="production", keys_dir=tmp_path, **keys)  # random keys start
    keys[name] = value
    with pytest.raises(ValidationError) as refused:
        Settings(environment="production", keys_dir=tmp_path, **keys)
    assert "secrets.token_" in str(refused.value)
