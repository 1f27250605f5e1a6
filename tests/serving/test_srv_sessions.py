"""Sessions end when they should: logout, a deactivated user, a changed scope and a revoked API key
are refused on every path (API, hot grade read on both paths, pages) once the worker's credential
cache has expired, and at once in the worker that handled a logout."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select
from srv_fixtures import PASSWORD, form_login

from serving.db.tables import RevokedToken, User

ENDED = "this session has ended"


@pytest.fixture(params=["event loop", "thread"])
def settings(request, settings):
    """No credential cache (each request checks the database), and the hot read both ways."""
    return settings.model_copy(update={"credential_cache_ttl_s": 0.0,
                                       "event_loop_reads": request.param == "event loop"})


def login(client, username: str) -> dict[str, str]:
    r = client.post("/api/v1/auth/token", data={"username": username, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def reads(client, headers: dict[str, str], uscc: str) -> list[int]:
    """Status of a plain API call and of the hot grade read."""
    return [client.get("/api/v1/auth/me", headers=headers).status_code,
            client.get(f"/api/v1/subjects/{uscc}/grade", headers=headers | {"X-Purpose": "case review"}).status_code]


def test_a_deactivated_user_is_refused_everywhere_and_can_come_back_with_a_new_login(client, auth, world):
    ent1 = login(client, "ent1")
    assert reads(client, ent1, world.ent1) == [200, 200]
    r = client.patch("/api/v1/admin/users/ent1", headers=auth("admin"), json={"active": False})
    assert r.status_code == 200 and r.json()["active"] is False
    assert reads(client, ent1, world.ent1) == [401, 401]
    r = client.get("/api/v1/auth/me", headers=ent1)
    assert r.json()["error"]["code"] == "not_authenticated" and ENDED in r.json()["error"]["message"]
    assert client.post("/api/v1/auth/token", data={"username": "ent1", "password": PASSWORD}).status_code == 401
    assert client.patch("/api/v1/admin/users/ent1", headers=auth("admin"), json={"active": True}).status_code == 200
    # tokens from before the deactivation stay dead (one may have leaked); a new login works at once
    assert reads(client, ent1, world.ent1) == [401, 401]
    assert reads(client, login(client, "ent1"), world.ent1) == [200, 200]


def test_a_changed_scope_ends_the_tokens_that_carry_the_old_one(client, session, world):
    reg = login(client, "reg_samr")
    assert reads(client, reg, world.ent1) == [200, 200]
    user = session.scalars(select(User).where(User.username == "reg_samr")).one()
    user.department = "tax"
    session.commit()
    assert reads(client, reg, world.ent1) == [401, 401]
    assert client.get("/api/v1/auth/me", headers=login(client, "reg_samr")).json()["department"] == "tax"


def test_api_logout_ends_only_that_token(client, session, world):
    first, second = login(client, "ent1"), login(client, "ent1")
    assert client.post("/api/v1/auth/logout", headers=first).status_code == 204
    assert reads(client, first, world.ent1) == [401, 401]
    assert reads(client, second, world.ent1) == [200, 200]
    assert client.post("/api/v1/auth/logout", headers=first).status_code == 401  # once only
    assert [r.username for r in session.scalars(select(RevokedToken))] == ["ent1"]


def test_logout_in_this_worker_is_immediate_even_with_the_cache(app, client, world, monkeypatch):
    from serving import deps
    from serving.security import CredentialCache

    app.state.credential_cache = CredentialCache(ttl_s=10.0)
    checks = []
    real = deps.person_is_current
    monkeypatch.setattr(deps, "person_is_current", lambda session, p: checks.append(p) or real(session, p))
    headers = login(client, "ent1")
    assert reads(client, headers, world.ent1) == [200, 200] and len(checks) == 1  # the second read: cached
    assert client.post("/api/v1/auth/logout", headers=headers).status_code == 204
    assert reads(client, headers, world.ent1) == [401, 401]


def test_page_logout_ends_the_cookie_even_if_it_is_replayed(client, world):
    r = form_login(client, "ent1")
    assert r.status_code == 303
    cookie = client.cookies.get("tiers_session")
    page = client.get(f"/credit/{world.ent1}")
    assert page.status_code == 200
    csrf = re.search(r'name="csrf_token" value="([0-9a-f]+)"', page.text).group(1)
    assert client.post("/logout", data={"csrf_token": csrf}, follow_redirects=False).status_code == 303
    client.cookies.set("tiers_session", cookie)  # a copy of the cookie kept from before
    replayed = client.get(f"/credit/{world.ent1}", follow_redirects=False)
    assert replayed.status_code in (303, 401) and "我的信用" not in replayed.text


def test_a_revoked_api_key_and_a_deactivated_machine_user_are_refused(client, auth, world):
    assert client.post("/api/v1/admin/users", headers=auth("admin"), json={
        "username": "pipeline-samr", "password": "long-random-password", "role": "regulator",
        "department": "samr"}).status_code == 201
    keys = [client.post("/api/v1/admin/api-keys", headers=auth("admin"),
                        json={"username": "pipeline-samr", "name": name}).json() for name in ("a", "b")]
    first, second = ({"X-API-Key": k["key"]} for k in keys)
    assert reads(client, first, world.ent1) == [200, 200]
    r = client.delete(f"/api/v1/admin/api-keys/{keys[0]['prefix']}", headers=auth("admin"))
    assert r.status_code == 200 and r.json() == {"id": keys[0]["id"], "name": "a", "prefix": keys[0]["prefix"],
                                                 "revoked": True}
    assert reads(client, first, world.ent1) == [401, 401]
    assert reads(client, second, world.ent1) == [200, 200]
    r = client.post("/api/v1/auth/logout", headers=second)  # a key does not log out: an admin revokes it
    assert r.status_code == 403 and "revokes it" in r.json()["error"]["message"]
    assert reads(client, second, world.ent1) == [200, 200]
    client.patch("/api/v1/admin/users/pipeline-samr", headers=auth("admin"), json={"active": False})
    assert reads(client, second, world.ent1) == [401, 401]


def test_admin_account_changes_validate_their_input(client, auth):
    admin = auth("admin")
    assert client.patch("/api/v1/admin/users/nobody", headers=admin, json={"active": False}).status_code == 404
    assert client.delete("/api/v1/admin/api-keys/ABCDEFGH", headers=admin).status_code == 404
    r = client.patch("/api/v1/admin/users/admin", headers=admin, json={"active": False})
    assert r.status_code == 409 and r.json()["error"]["field"] == "active"
    assert client.patch("/api/v1/admin/users/ent1", headers=admin, json={"active": "maybe"}).status_code == 422
    assert client.patch("/api/v1/admin/users/ent1", headers=auth("reg_samr"), json={"active": False}).status_code == 403


def test_the_cli_deactivates_and_reactivates_a_user(client, database_url, world, monkeypatch):
    from typer.testing import CliRunner

    from serving.cli.main import app as cli
    from serving.settings import get_settings

    monkeypatch.setenv("TIERS_DATABASE_URL", database_url)
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        ent1 = login(client, "ent1")
        result = runner.invoke(cli, ["users", "deactivate", "ent1"])
        assert result.exit_code == 0 and "ent1 deactivated" in result.output, result.output
        assert reads(client, ent1, world.ent1) == [401, 401]
        assert runner.invoke(cli, ["users", "activate", "ent1"]).exit_code == 0
        assert reads(client, ent1, world.ent1) == [401, 401]
        assert reads(client, login(client, "ent1"), world.ent1) == [200, 200]
        result = runner.invoke(cli, ["users", "deactivate", "nobody"])
        assert result.exit_code == 2 and "no user 'nobody'" in result.output
    finally:
        get_settings.cache_clear()


def test_a_token_logged_out_twice_at_once_is_one_revocation(session, monkeypatch):
    import datetime as dt

    from serving.security import Principal
    from serving.services.users import revoke_token

    who = Principal(username="ent1", role="enterprise", token_id="t" * 32)
    expires = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=30)
    revoke_token(session, who, expires)
    # the other logout's row is not yet visible to this one (PostgreSQL, read committed): the
    # insert then hits the primary key, which must not be an error
    monkeypatch.setattr(session, "get", lambda *args, **kwargs: None)
    revoke_token(session, who, expires)
    monkeypatch.undo()
    session.expire_all()
    assert [r.token_id for r in session.scalars(select(RevokedToken))] == ["t" * 32]


def test_a_check_that_began_before_a_logout_cannot_cache_the_token_again():
    from serving.security import CredentialCache, Principal, credential_key

    now = [0.0]
    cache = CredentialCache(ttl_s=10, clock=lambda: now[0])
    who = Principal(username="ent1", role="enterprise", token_id="abc")
    key = credential_key(token=who)
    cache.put(key, who)
    cache.forget(key)  # the logout
    cache.put(key, who)  # a request whose database check passed just before the logout committed
    assert cache.get(key) is None
    now[0] = 10.0  # from then on every check reads the revocation from the database
    cache.put(key, who)
    assert cache.get(key) == who  # (the cache itself no longer refuses; the database check does)


def test_a_login_that_overlaps_a_deactivation_does_not_outlive_it(client, auth, session, world, monkeypatch):
    from serving.routes import auth as auth_routes
    from serving.services.users import set_active

    real = auth_routes.authenticate

    def deactivated_meanwhile(*args, **kwargs):
        user = real(*args, **kwargs)  # the password checked out ...
        set_active(session, "ent1", False)  # ... and an admin deactivates the user before the token is made
        return user

    monkeypatch.setattr(auth_routes, "authenticate", deactivated_meanwhile)
    token = login(client, "ent1")
    monkeypatch.undo()
    assert client.patch("/api/v1/admin/users/ent1", headers=auth("admin"), json={"active": True}).status_code == 200
    assert reads(client, token, world.ent1) == [401, 401]  # issued before the deactivation: dead for good
    assert reads(client, login(client, "ent1"), world.ent1) == [200, 200]
