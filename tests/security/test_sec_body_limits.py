"""Request bodies are bounded before anything reads them (issue 14, finding 2): a declared
Content-Length over the limit is refused at once, and a chunked body is counted as it streams and
refused as soon as it passes the limit; the answer is 413 with a Chinese message."""

from __future__ import annotations

import pytest

LIMIT = 64 * 1024


@pytest.fixture
def small_client(settings):
    from fastapi.testclient import TestClient

    from serving.app import create_app

    with TestClient(create_app(settings.model_copy(update={"max_request_body_bytes": LIMIT}))) as c:
        yield c


def _too_large(response) -> None:
    assert response.status_code == 413, response.text[:200]
    body = response.json()["error"]
    assert body["code"] == "body_too_large" and "请求体过大" in body["message"]


@pytest.mark.parametrize("path,ctype,body", [
    ("/api/v1/regulator/grades/batch", "application/json",
     b'{"usccs": ["' + b"A" * (2 * LIMIT) + b'"], "purpose": "x"}'),
    ("/api/v1/auth/token", "application/x-www-form-urlencoded", b"username=" + b"A" * (2 * LIMIT) + b"&password=x"),
], ids=["batch-json", "token-form"])
def test_a_declared_length_over_the_limit_is_refused_unread(small_client, path, ctype, body):
    _too_large(small_client.post(path, content=body, headers={"Content-Type": ctype}))


def test_a_chunked_body_is_counted_as_it_streams(small_client):
    sent = []

    def chunks():
        yield b'{"usccs": ["'
        for _ in range(64):  # 64 × 16 KiB = 1 MiB, sixteen times the limit
            sent.append(1)
            yield b"A" * 16384
        yield b'"], "purpose": "x"}'

    _too_large(small_client.post("/api/v1/auth/token", content=chunks(),
                                 headers={"Content-Type": "application/x-www-form-urlencoded"}))


def test_a_body_under_the_limit_is_served(small_client):
    r = small_client.post("/api/v1/auth/token", data={"username": "nobody", "password": "wrong-password-1"})
    assert r.status_code in (401, 422)


def test_the_default_limit_is_set_and_bounded():
    from serving.settings import Settings

    assert 0 < Settings.model_fields["max_request_body_bytes"].default <= 32 * 1024 * 1024


def _post_raw(app, path: str, headers: dict[str, str], body: bytes,
              ctype: bytes = b"application/json") -> tuple[int, bool, dict]:
    """POST ``body`` to the app as ASGI; returns (status, whether the body was read, JSON answer)."""
    import asyncio
    import json

    read = []
    sent = []

    async def receive():
        read.append(True)
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
             "headers": [(b"host", b"test"), (b"content-type", ctype),
                         (b"content-length", str(len(body)).encode()),
                         *((k.lower().encode(), v.encode()) for k, v in headers.items())],
             "client": ("127.0.0.1", 1234), "server": ("test", 80), "state": {}}
    asyncio.run(app(scope, receive, send))
    answer = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return sent[0]["status"], bool(read), json.loads(answer) if answer else {}


def test_an_unauthenticated_body_is_refused_before_it_is_read(app, auth):
    body = b'{"usccs": ["' + b"9" * 1_000_000 + b'"], "purpose": "x"}'
    for headers in ({}, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Basic eDp5"}):
        status, read, answer = _post_raw(app, "/api/v1/regulator/grades/batch", headers, body)
        assert (status, read) == (401, False), headers
        assert answer["error"]["code"] == "not_authenticated"
    # a credential that may be good goes on to the route, which reads the body and checks it
    status, read, _ = _post_raw(app, "/api/v1/regulator/grades/batch", auth("reg_samr"), b'{"usccs": [], "purpose": "x"}')
    assert read and status != 401
    status, read, _ = _post_raw(app, "/api/v1/regulator/grades/batch", {"X-API-Key": "tsk_unknown"}, b"{}")
    assert read and status in (401, 422)
    # routes without authentication (the login) still read their body
    status, read, _ = _post_raw(app, "/api/v1/auth/token", {}, b"username=nobody&password=wrong-password",
                                b"application/x-www-form-urlencoded")
    assert read and status == 401
