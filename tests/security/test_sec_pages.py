"""Pages: security headers on every page, a CSRF token on the login form and on every form that
changes state, Secure cookies outside development, and a /health that tells strangers nothing."""

from __future__ import annotations

import re

import pytest
from srv_fixtures import ENT1, PASSWORD, principal

from serving.deps import SESSION_COOKIE
from serving.security import create_access_token

PAGES = {  # page → a user allowed to open it
    "/login": None, "/": None, f"/credit/{ENT1}": "ent1", "/regulator": "reg_samr", "/regulator/plans": "reg_samr",
    "/sector": "sector_c", "/analyst": "analyst", "/analyst/monitoring": "analyst", "/no-such-page": None,
    "/docs": None, "/static/style.css": None,
}


def _as(client, app, username):
    client.cookies.clear()
    if username:
        token, _ = create_access_token(principal(username), app.state.settings.jwt_secret.get_secret_value(), 30)
        client.cookies.set(SESSION_COOKIE, token)


def _script_src(csp: str) -> str:
    directives = dict(d.strip().split(" ", 1) if " " in d.strip() else (d.strip(), "")
                      for d in csp.split(";") if d.strip())
    return directives.get("script-src", directives.get("default-src", ""))


@pytest.mark.parametrize("path", sorted(PAGES))
def test_every_page_sends_the_security_headers(client, app, path):
    _as(client, app, PAGES[path])
    r = client.get(path, follow_redirects=False)
    assert r.status_code in (200, 303, 404), (path, r.status_code)
    csp = r.headers.get("content-security-policy", "")
    assert "frame-ancestors 'none'" in csp, csp
    assert r.headers.get("x-frame-options") == "DENY"
    assert r.headers.get("x-content-type-options") == "nosniff"
    assert r.headers.get("referrer-policy") in {"no-referrer", "same-origin", "strict-origin-when-cross-origin"}
    script_src = _script_src(csp)
    assert script_src and "'unsafe-inline'" not in script_src and "'unsafe-eval'" not in script_src


def test_api_answers_carry_nosniff_and_refuse_framing(client, auth):
    r = client.get("/api/v1/auth/me", headers=auth("admin"))
    assert r.headers.get("x-content-type-options") == "nosniff"
    assert r.headers.get("x-frame-options") == "DENY"


def _our_pages(client, app):
    """(path, HTML) of every page of ours (not FastAPI's /docs, not a static file), as its user."""
    for path, user in PAGES.items():
        if path not in {"/docs", "/static/style.css"}:
            _as(client, app, user)
            yield path, client.get(path).text


def test_pages_have_no_inline_script_or_handler(client, app):
    for path, html in _our_pages(client, app):
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), path
        assert not re.search(r"\son[a-z]+\s*=", html), path
        assert "javascript:" not in html, path


def test_the_login_form_needs_its_csrf_token(client):
    form = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert token, "the login form carries a CSRF token"
    forged = client.post("/login", data={"username": "ent1", "password": PASSWORD}, follow_redirects=False)
    assert forged.status_code == 403
    other = client.post("/login", data={"username": "ent1", "password": PASSWORD, "csrf_token": "x" * 64},
                        follow_redirects=False)
    assert other.status_code == 403
    ok = client.post("/login", data={"username": "ent1", "password": PASSWORD, "csrf_token": token.group(1)},
                     follow_redirects=False)
    assert ok.status_code == 303


def test_a_csrf_token_that_is_not_ascii_is_refused_not_a_500(client, app):
    # found as attacker: hmac.compare_digest refuses str with non-ASCII characters (TypeError), so
    # such a token was a 500 on every page form, the login form too, without being logged in
    client.get("/login")
    r = client.post("/login", data={"username": "ent1", "password": PASSWORD, "csrf_token": "令" * 64},
                    follow_redirects=False)
    assert r.status_code == 403  # the form again, with its error
    _as(client, app, "ent1")
    r = client.post("/logout", data={"csrf_token": "é" * 64}, follow_redirects=False)
    assert r.status_code == 403 and "csrf_failed" in r.text


def test_every_state_changing_page_form_carries_a_csrf_token(client, app):
    for path, html in _our_pages(client, app):
        for form in re.findall(r"<form\b[^>]*>.*?</form>", html, flags=re.S | re.I):
            if re.search(r'method="post"', form, flags=re.I):
                assert 'name="csrf_token"' in form, (path, form[:200])


def test_every_page_post_route_checks_csrf(app):
    """Each POST page route declares the ``csrf_token`` form field (checked in the handler)."""
    from fastapi.routing import APIRoute

    for route in app.routes:
        if isinstance(route, APIRoute) and "POST" in route.methods and not route.path.startswith("/api/"):
            fields = {p.alias for p in route.dependant.body_params}
            assert "csrf_token" in fields, route.path


def test_cookies_are_secure_and_samesite_outside_development(database_url, tmp_path):
    import secrets

    from fastapi.testclient import TestClient

    from serving.app import create_app
    from serving.keys import make_report_certificate, make_report_key
    from serving.settings import Settings

    report_key = make_report_key()
    prod = Settings(environment="production", database_url=database_url, run_migrations_on_startup=False,
                    jwt_secret=secrets.token_urlsafe(48), querylog_mac_key=secrets.token_urlsafe(48),
                    querylog_signing_key=secrets.token_hex(32), report_signing_key=report_key,
                    report_certificate=make_report_certificate(report_key),
                    keys_dir=tmp_path / "keys", data_dir=tmp_path / "data")
    client = TestClient(create_app(prod), base_url="https://testserver")
    form = client.get("/login")
    for cookie in form.headers.get_list("set-cookie"):
        assert "secure" in cookie.lower() and "samesite" in cookie.lower(), cookie
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)
    r = client.post("/login", data={"username": "ent1", "password": PASSWORD, "csrf_token": token},
                    follow_redirects=False)
    assert r.status_code == 303
    session_cookie = next(c for c in r.headers.get_list("set-cookie") if c.startswith(SESSION_COOKIE))
    assert "secure" in session_cookie.lower() and "samesite=strict" in session_cookie.lower()
    lang = client.get("/login?lang=en")
    for cookie in lang.headers.get_list("set-cookie"):
        assert "secure" in cookie.lower(), cookie


def test_health_tells_strangers_only_ok_or_degraded(client, auth):
    anonymous = client.get("/health")
    assert anonymous.status_code == 200 and anonymous.json() == {"status": anonymous.json()["status"]}
    assert anonymous.json()["status"] in {"ok", "degraded"}
    assert set(client.get("/health", headers=auth("reg_samr")).json()) == {"status"}
    detail = client.get("/health", headers=auth("admin")).json()
    assert {"status", "reasons", "database", "schema_revision", "grades"} <= set(detail)
