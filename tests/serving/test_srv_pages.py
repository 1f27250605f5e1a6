"""Pages through TestClient: cookie session, CSRF, language toggle, regulator decisions."""

from __future__ import annotations

from srv_fixtures import form_login

from serving.security import csrf_token, decode_access_token


def page_login(client, settings, username) -> str:
    """Log in through the form; returns the CSRF token of the new session."""
    r = form_login(client, username)
    assert r.status_code == 303
    cookie = r.cookies.get("tiers_session")
    assert "httponly" in r.headers["set-cookie"].lower() and "samesite=strict" in r.headers["set-cookie"].lower()
    client.cookies.set("tiers_session", cookie)
    return csrf_token(settings.jwt_key, decode_access_token(cookie, settings.jwt_key).token_id)


def test_pages_need_login_and_default_to_chinese(client, settings, world):
    r = client.get(f"/credit/{world.ent1}", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login"
    page_login(client, settings, "ent1")
    html = client.get(f"/credit/{world.ent1}").text
    assert "我的信用" in html and "张**" in html and "张三丰" not in html
    en = client.get(f"/credit/{world.ent1}", params={"lang": "en"})
    assert "My credit" in en.text and en.cookies.get("lang") == "en"
    assert "My credit" in client.get(f"/credit/{world.ent1}").text  # remembered by cookie


def test_regulator_decides_objection_on_its_page(client, auth, settings, world):
    oid = client.post(f"/api/v1/subjects/{world.ent1}/objections", headers=auth("ent1"),
                      json={"record_id": "R1", "reason": "处罚决定已被撤销"}).json()["id"]
    csrf = page_login(client, settings, "reg_samr")
    assert f'data-id="{oid}"' in client.get("/regulator").text
    forged = client.post(f"/regulator/objections/{oid}/decision", follow_redirects=False,
                         data={"decision": "upheld", "reason": "核实", "csrf_token": "x" * 64})
    assert forged.status_code == 403
    r = client.post(f"/regulator/objections/{oid}/decision", follow_redirects=False,
                    data={"decision": "upheld", "reason": "经核实撤销", "csrf_token": csrf})
    assert r.status_code == 303
    status = client.get(f"/api/v1/subjects/{world.ent1}/objections", headers=auth("ent1")).json()[0]["status"]
    assert status == "upheld"


def test_other_department_cannot_decide_on_page(client, auth, settings, world):
    oid = client.post(f"/api/v1/subjects/{world.ent1}/objections", headers=auth("ent1"),
                      json={"record_id": "R1", "reason": "处罚决定已被撤销"}).json()["id"]
    csrf = page_login(client, settings, "reg_eco")
    assert f'data-id="{oid}"' not in client.get("/regulator").text
    r = client.post(f"/regulator/objections/{oid}/decision",
                    data={"decision": "upheld", "reason": "越权", "csrf_token": csrf})
    assert r.status_code == 404 and "text/html" in r.headers["content-type"]  # as if it did not exist


def test_login_form_is_rate_limited(client):
    for _ in range(5):
        form_login(client, "ent2", "wrong-password")
    r = form_login(client, "ent2")
    assert r.status_code == 429 and "Retry-After" in r.headers


def test_enterprise_cannot_open_staff_pages(client, settings):
    page_login(client, settings, "ent1")
    for path in ("/regulator", "/sector", "/analyst"):
        assert client.get(path).status_code == 403
