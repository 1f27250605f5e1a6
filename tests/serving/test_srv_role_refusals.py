"""Every role refusal leaves a trace (gap 1 of session 15), and is answered before the route's
parameters are judged (gap 2): a caller whose role may not use a route — API or page, any route,
found from the app's routes — gets the role's 403, logged ``denied`` through the query log's
chain (who, role, the route's template, the purpose if any, the subject if the route names one),
whether the route's ids are well formed or not; an unauthenticated caller still gets 401 first."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select
from srv_fixtures import ENT1, principal
from test_srv_access import flat_routes

from serving.db.tables import QueryLogEntry
from serving.keys import with_keys
from serving.security import create_access_token
from serving.services.querylog_check import check_chain


@pytest.fixture
def settings(settings):
    # the sweeps are refused hundreds of times per user within the hour: the hourly cap on
    # refusals out of reach here (tests/serving/test_srv_refusal_cap.py tests it)
    return settings.model_copy(update={"refusals_per_hour": 100_000})


ROLE_USERS = ("ent1", "reg_samr", "sector_c", "analyst", "admin")  # one account per role
NOT_A_SUBJECT = "91320102MA1XXXXX0Y"  # a code's shape; no subject of the seed has it
PARAM = re.compile(r"{(\w+)(?::\w+)?}")
# each path parameter: a well-formed value that names nothing of the seed (a refused role must
# not depend on it), and a malformed one (the parameter's rule broken)
WELL_FORMED = {"uscc": ENT1, "action": "close", "username": "nobody_here", "prefix": "tsk_nothing"}
MALFORMED = {"uscc": "91320102<bad>", "action": "explode"}
DEEP = b"[" * 5000 + b"]" * 5000  # JSON nested past the parser's recursion limit (10 KB)


def _url(path: str, values: dict[str, str], default: str) -> str:
    return PARAM.sub(lambda m: values.get(m.group(1), default), path)


def _call(client, settings, username: str, method: str, url: str, purpose: str | None = None):
    token, _ = create_access_token(principal(username), with_keys(settings).jwt_key, 30)
    params = {"purpose": purpose} if purpose else {}
    if url.startswith("/api/"):
        return client.request(method, url, params=params, headers={"Authorization": f"Bearer {token}"})
    client.cookies.set("tiers_session", token)
    try:
        return client.request(method, url, params=params, follow_redirects=False)
    finally:
        client.cookies.clear()


def _denied(session, after_seq: int) -> list[QueryLogEntry]:
    session.expire_all()
    return list(session.scalars(select(QueryLogEntry).where(QueryLogEntry.seq > after_seq,
                                                            QueryLogEntry.outcome == "denied")))


def _head(session) -> int:
    session.expire_all()
    return session.scalar(select(func.coalesce(func.max(QueryLogEntry.seq), 0)))


def _role_refused(response) -> bool:
    if response.status_code != 403:
        return False
    if response.headers.get("content-type", "").startswith("application/json"):
        return response.json()["error"]["code"] == "not_allowed"
    return 'data-code="not_allowed"' in response.text  # a page's 403: the error page names its code


def _routes(app):
    return [(m, p) for m, p in flat_routes(app) if not p.startswith(("/docs", "/redoc", "/openapi", "/static"))]


def test_every_role_refusal_of_every_route_is_logged_denied_with_who_route_and_subject(app, client, settings,
                                                                                      session):
    refused = unlogged = 0
    missing = []
    for method, path in _routes(app):
        for username in ROLE_USERS:
            before = _head(session)
            url = _url(path, WELL_FORMED, "999999")
            r = _call(client, settings, username, method, url, purpose="核查用途 NJ-7")
            if not _role_refused(r):
                continue
            refused += 1
            entries = [e for e in _denied(session, before) if e.actor == username]
            if len(entries) != 1:
                unlogged += 1
                missing.append((method, path, username, len(entries)))
                continue
            [entry] = entries
            assert entry.actor_role == principal(username).role
            assert entry.endpoint == f"{method} {path}", (entry.endpoint, method, path)
            if "{uscc}" in path:
                assert entry.uscc == ENT1, (path, entry.uscc)
            # the joint checks word their refusals their own way (test_srv_check_refusals.py)
            if not path.startswith("/api/v1/credit-checks"):
                assert "核查用途 NJ-7" in entry.purpose and "not_allowed" in entry.purpose, (path, entry.purpose)
    assert refused >= 60, refused  # the sweep met role refusals on many routes of every family
    assert not missing, f"{unlogged} of {refused} role refusals unlogged: {missing[:20]}"
    result = check_chain(session)
    assert result.ok, result


def test_a_wrong_role_with_malformed_ids_gets_the_roles_403_logged_not_a_422(app, client, settings, session):
    checked = 0
    wrong = []
    for method, path in _routes(app):
        if not PARAM.search(path):
            continue
        for username in ROLE_USERS:
            well_formed = _call(client, settings, username, method, _url(path, WELL_FORMED, "999999"), purpose="核查")
            if not _role_refused(well_formed):
                continue
            for bad in ("0", "12abc", "99999999999999999999"):
                before = _head(session)
                r = _call(client, settings, username, method, _url(path, MALFORMED, bad))
                checked += 1
                if not _role_refused(r) or len([e for e in _denied(session, before) if e.actor == username]) != 1:
                    wrong.append((method, path, username, bad, r.status_code))
    assert checked >= 60, checked
    assert not wrong, wrong[:20]
    assert check_chain(session).ok


def test_an_unauthenticated_caller_with_a_malformed_id_still_gets_401(client, session):
    before = _head(session)
    for method, url in (("POST", "/api/v1/warnings/abc/close"), ("POST", "/api/v1/commitments/0/decision"),
                        ("GET", "/api/v1/subjects/bad<code>/grade"), ("PATCH", "/api/v1/admin/users/x<y>")):
        r = client.request(method, url)
        assert r.status_code == 401, (url, r.status_code, r.text)
    assert _head(session) == before  # no one to log


def test_a_refused_subject_read_names_the_subject_and_the_default_purpose(client, auth, session):
    before = _head(session)
    r = client.get(f"/api/v1/subjects/{ENT1}/grade", headers=auth("analyst"))
    assert r.status_code == 403
    [entry] = _denied(session, before)
    assert (entry.actor, entry.actor_role, entry.uscc) == ("analyst", "analyst", ENT1)
    assert entry.endpoint == "GET /api/v1/subjects/{uscc}/grade"
    assert entry.purpose.startswith("拒绝（not_allowed）")
    # a malformed code is logged as far as it parses (its letters and digits, at most 18: the joint checks' rule)
    before = _head(session)
    r = client.get("/api/v1/subjects/9132<script>alert(1)/grade", headers=auth("analyst"))
    assert r.status_code == 403
    [entry] = _denied(session, before)
    assert entry.uscc == "9132scriptalert1"
    # a purpose with control characters is logged cleaned and cut at the purpose's length
    before = _head(session)
    client.get("/api/v1/admin/querylog/check", params={"purpose": "x\x00y" + "长" * 400}, headers=auth("ent1"))
    [entry] = _denied(session, before)
    assert "\x00" not in entry.purpose and len(entry.purpose) <= 200
    assert check_chain(session).ok


def test_a_wrong_role_sending_a_body_that_is_not_json_gets_the_roles_403_logged(client, auth, session):
    # found as attacker: FastAPI parses a JSON body before any dependency runs, so a body that is
    # not JSON was a 422 (unlogged) for every role, before the role check
    broken = {"Content-Type": "application/json"}
    for method, url in (("POST", "/api/v1/admin/users"), ("PATCH", "/api/v1/admin/users/nobody_here"),
                        ("POST", "/api/v1/warnings/12abc/close"), ("POST", f"/api/v1/subjects/{ENT1}/objections")):
        before = _head(session)
        r = client.request(method, url, content=b"{not json", headers=auth("analyst") | broken)
        assert r.status_code == 403 and r.json()["error"]["code"] == "not_allowed", (url, r.text)
        [entry] = _denied(session, before)
        assert entry.actor == "analyst" and entry.endpoint.startswith(method)
    # the allowed role still learns that its body is not JSON; no credential: 401 first
    r = client.post("/api/v1/admin/users", content=b"{not json", headers=auth("admin") | broken)
    assert r.status_code == 422
    assert client.post("/api/v1/admin/users", content=b"{not json", headers=broken).status_code == 401
    assert check_chain(session).ok


def test_a_body_nested_too_deep_is_judged_after_the_role_and_named_in_both_languages(client, auth, session):
    # found as attacker: json.loads raises RecursionError (not a ValueError) for deep nesting, so
    # FastAPI answered 400, unlogged, before the role check, on every JSON-body route
    from serving.i18n import TEXTS

    broken = {"Content-Type": "application/json"}
    before = _head(session)
    r = client.post("/api/v1/admin/users", content=DEEP, headers=auth("analyst") | broken)
    assert r.status_code == 403 and r.json()["error"]["code"] == "not_allowed", r.text
    [entry] = _denied(session, before)
    assert entry.actor == "analyst"
    r = client.post("/api/v1/admin/users", content=DEEP, headers=auth("admin") | broken)
    assert 400 <= r.status_code < 500
    error = r.json()["error"]
    assert error["message_zh"] == TEXTS["body_nested_too_deep"]["zh"]
    assert error["message"] == TEXTS["body_nested_too_deep"]["en"]
    assert client.post("/api/v1/admin/users", content=DEEP, headers=broken).status_code == 401
    assert check_chain(session).ok


def test_a_refusal_by_a_rule_beside_the_role_is_logged_too(client, auth, session):
    # another department's ratios: refused by the route's own rule (the role may use the route);
    # logged as the role's refusals are, with the refusal's code, once
    before = _head(session)
    r = client.get("/api/v1/inspection-ratios", params={"department": "samr", "purpose": "越权查看"},
                   headers=auth("reg_tax"))
    assert r.status_code == 403
    [entry] = _denied(session, before)
    assert (entry.actor, entry.endpoint) == ("reg_tax", "GET /api/v1/inspection-ratios")
    assert entry.purpose == "拒绝（not_allowed）：越权查看"
    # a refusal its route logs itself (another department's warning, a joint check) is logged once
    before = _head(session)
    client.get(f"/api/v1/credit-checks/{ENT1}", params={"matter": "government_procurement", "purpose": "核查"},
               headers=auth("reg_tax"))
    assert len(_denied(session, before)) == 1
    assert check_chain(session).ok


def test_the_ratios_department_rule_comes_before_the_departments_format(client, auth, session):
    # the route's own rule (a regulator of that department, or an admin key) is judged before the
    # department's format, as roles are before ids: a caller it refuses gets the 403, logged, whatever
    # department it sent (a 422 would tell it the route's rules)
    for username, department in (("sector_c", "<bad>"), ("reg_tax", "samr tax"), ("ent1", "x" * 41),
                                 ("reg_tax", "")):
        before = _head(session)
        r = client.get("/api/v1/inspection-ratios", params={"department": department, "item": "SAMR-03",
                                                            "as_of": "2026-09-30"}, headers=auth(username))
        assert r.status_code == 403, (username, department, r.status_code, r.text)
        assert [e.actor for e in _denied(session, before)] == [username]
    # the regulator of the department still learns what is wrong with the rest of its request
    r = client.get("/api/v1/inspection-ratios", params={"department": "samr", "item": "<bad>", "as_of": "2026-09-30"},
                   headers=auth("reg_samr"))
    assert r.status_code == 422 and r.json()["error"]["field"] == "item"
    assert check_chain(session).ok


def _json_body_routes(app) -> list[tuple[str, str]]:
    """(method, path) of every route whose body is JSON (a model, not a form)."""
    from fastapi import params

    out = []
    for route in app.routes:
        for ctx in route.effective_route_contexts() if hasattr(route, "effective_route_contexts") else [route]:
            original = getattr(ctx, "original_route", ctx)
            body = getattr(original, "body_field", None)
            if body is not None and not isinstance(body.field_info, params.Form):
                out += [(m, ctx.path) for m in sorted(original.methods or []) if m != "HEAD"]
    return out


def test_a_body_that_does_not_parse_is_judged_after_the_caller_and_its_role_on_every_route(app, client, settings,
                                                                                         session):
    # a body that is not JSON (or not UTF-8) is judged as a body that parses but breaks the route's
    # model is: after the caller, its role and the route's own rules; a refused caller gets the 403,
    # logged once, whatever it sent; the others learn what is wrong with the body
    routes = _json_body_routes(app)
    assert len(routes) >= 15, routes
    refused, wrong = 0, []
    for method, path in routes:
        url = _url(path, WELL_FORMED, "999999")
        for username in ROLE_USERS:
            token, _ = create_access_token(principal(username), with_keys(settings).jwt_key, 30)
            headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
            parsed = client.request(method, url, content=b'"not an object"', headers=headers,
                                    params={"purpose": "核查"})
            for broken in (b"{not json", b"\x80\x81 not utf-8", DEEP):
                before = _head(session)
                r = client.request(method, url, content=broken, headers=headers, params={"purpose": "核查"})
                logged = [e for e in _denied(session, before) if e.actor == username]
                if _role_refused(parsed):
                    refused += 1
                    if not (_role_refused(r) and len(logged) == 1):
                        wrong.append((method, path, username, broken[:4], r.status_code, len(logged)))
                elif _role_refused(r):  # (the joint checks log every refused check, a 422 too)
                    wrong.append((method, path, username, broken[:4], r.status_code, len(logged)))
    assert refused >= 20, refused
    assert not wrong, wrong[:20]
    assert check_chain(session).ok


def test_every_route_judges_its_body_after_its_dependencies(app):
    # a router made without the route class would bring back a 422 or 400 before the role's 403
    from fastapi.routing import APIRoute

    from serving.routes._routers import CallerFirstRoute

    routes = [getattr(ctx, "original_route", ctx) for route in app.routes
              for ctx in (route.effective_route_contexts() if hasattr(route, "effective_route_contexts") else [route])]
    api_routes = [r for r in routes if isinstance(r, APIRoute)]
    assert len(api_routes) > 100
    assert [r.path for r in api_routes if not isinstance(r, CallerFirstRoute)] == []


def _page_post(client, settings, username: str, url: str, **kwargs):
    token, _ = create_access_token(principal(username), with_keys(settings).jwt_key, 30)
    client.cookies.set("tiers_session", token)
    try:
        return client.post(url, follow_redirects=False, **kwargs)
    finally:
        client.cookies.clear()


# page form bodies the form parser refuses (FastAPI answered 400 before any dependency)
BAD_FORMS = {
    "no boundary": {"content": b"--x\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n--x--\r\n",
                    "headers": {"Content-Type": "multipart/form-data"}},
    "too many fields": {"content": b"".join(b'--x\r\nContent-Disposition: form-data; name="f%d"\r\n\r\n1\r\n' % i
                                            for i in range(1001)) + b"--x--\r\n",
                        "headers": {"Content-Type": "multipart/form-data; boundary=x"}},
    # found by the attacker's second run: python-multipart's own parse errors (a part header without a
    # colon, bytes after the boundary) were still an unlogged 400 before the role
    "header without colon": {"content": b"--zz\r\nnocolonhere\r\n\r\nx\r\n--zz--\r\n",
                             "headers": {"Content-Type": "multipart/form-data; boundary=zz"}},
    "bytes after the boundary": {"content": b"--zzXYZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n--zz--\r\n",
                                 "headers": {"Content-Type": "multipart/form-data; boundary=zz"}},
    "empty quoted boundary": {"content": b"x", "headers": {"Content-Type": 'multipart/form-data; boundary="'}},
}


def test_a_page_form_that_does_not_parse_is_judged_after_the_caller_and_its_role(app, client, settings, session):
    # found as attacker: a multipart body without a boundary, or over 1000 fields, to any page
    # form post was a 400, unlogged, before the role check (9 page POST routes)
    posts = [p for m, p in _routes(app) if m == "POST" and not p.startswith("/api/")]
    assert len(posts) >= 9, posts
    refused, told, wrong = 0, 0, []
    for path in posts:
        url = _url(path, WELL_FORMED, "999999")
        for username in ROLE_USERS:
            parsed = _page_post(client, settings, username, url, data={"csrf_token": "x"})
            for name, bad in BAD_FORMS.items():
                before = _head(session)
                r = _page_post(client, settings, username, url, **bad)
                logged = [e for e in _denied(session, before) if e.actor == username]
                if _role_refused(parsed):
                    refused += 1
                    if not (_role_refused(r) and len(logged) == 1):
                        wrong.append((path, username, name, r.status_code, len(logged)))
                elif r.status_code == 400:
                    told += 1
                elif r.status_code != parsed.status_code or _role_refused(r):
                    # let through: told the form does not parse, or what a parsed form was told first
                    wrong.append((path, username, name, r.status_code, len(logged)))
    assert refused >= 18 and told >= 4, (refused, told)
    assert not wrong, wrong[:20]
    # not logged in: the login's answer first (never the parser's 400)
    r = client.post(posts[-1].replace("{uscc}", ENT1), follow_redirects=False, **BAD_FORMS["no boundary"])
    assert r.status_code != 400
    assert check_chain(session).ok
