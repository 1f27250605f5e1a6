"""Refused joint checks leave a trace (issue 20, open question 1): every refused check attempt of an
authenticated caller (person or API key) is a ``denied`` entry of the query log, through the same
chain as an allowed check, naming who, the codes and matter as far as they were parsed and the
refusal's code, never a credential. A credential that does not authenticate is a failed login
attempt (``login_attempts``, the login's per-address back-off), not a query-log entry."""

from __future__ import annotations

from sqlalchemy import select
from srv_fixtures import app_on, make_uscc

from serving.db.tables import LoginAttempt, QueryLogEntry
from serving.services.users import create_api_key

CHECK = "/api/v1/credit-checks"
PURPOSE = {"purpose": "项目编号 NJ-2026-001 资格审查"}


def _entries(session) -> list[QueryLogEntry]:
    session.expire_all()
    return list(session.scalars(select(QueryLogEntry).order_by(QueryLogEntry.seq)))


def test_a_refused_single_check_is_logged_denied_with_who_the_code_the_matter_and_why(client, auth, session, world):
    _, key = create_api_key(session, "reg_tax", "税务征管系统")
    cases = (  # (headers, matter, status, refusal code in the entry)
        (auth("ent1"), "administrative_approval", 403, "not_allowed"),     # an enterprise does not check
        (auth("analyst"), "administrative_approval", 403, "not_allowed"),
        (auth("reg_samr"), "no_such_matter", 422, "invalid_input"),         # unknown matter
        ({"X-API-Key": key}, "government_procurement", 403, "not_allowed"),  # a key without the matter
        (auth("reg_samr"), "BAD MATTER!", 422, "invalid_input"),            # not even a matter's shape
    )
    for headers, matter, status, _ in cases:
        r = client.get(f"{CHECK}/{world.ent1}", params={"matter": matter, **PURPOSE}, headers=headers)
        assert r.status_code == status, r.text
    entries = _entries(session)
    assert [(e.actor, e.outcome, e.uscc, e.endpoint) for e in entries] == [
        (actor, "denied", world.ent1, "GET /api/v1/credit-checks/{uscc}")
        for actor in ("ent1", "analyst", "reg_samr", "reg_tax", "reg_samr")]
    for entry, (_, matter, _, code) in zip(entries, cases, strict=True):
        assert code in entry.purpose and matter in entry.purpose and "NJ-2026-001" in entry.purpose
    assert entries[3].actor_kind == "machine" and key not in " ".join(e.purpose for e in entries)


def test_a_malformed_code_is_logged_as_far_as_it_parses(client, auth, session):
    r = client.get(f"{CHECK}/91320102<script>", params={"matter": "administrative_approval", **PURPOSE},
                   headers=auth("reg_samr"))
    assert r.status_code == 422
    [entry] = _entries(session)
    assert entry.outcome == "denied" and len(entry.uscc) <= 18 and "<" not in entry.uscc
    assert entry.uscc.startswith("91320102")


def test_a_refused_batch_is_one_entry_naming_its_first_code_and_how_many(client, auth, session, world):
    # found as attacker: a refused batch logged each code, so one request of a regulator (10,000
    # malformed codes, 422) wrote 10,000 entries while the hourly cap on refusals counts requests:
    # now a refused request is one entry, whatever it sent (the first code, the count in the purpose)
    usccs = [make_uscc(f"913201{i:011d}") for i in range(10_001)]
    r = client.post(f"{CHECK}/batch", headers=auth("reg_samr"),
                    json={"matter": "administrative_approval", "usccs": usccs, **PURPOSE})
    assert r.status_code == 422 and "一次最多" in r.json()["error"]["message"]
    [entry] = _entries(session)
    assert (entry.actor, entry.uscc, entry.outcome) == ("reg_samr", usccs[0], "denied")
    assert "共 10001 个代码" in entry.purpose and "invalid_input" in entry.purpose
    # one invalid code among valid ones: the whole batch is refused, one entry
    bad = ["91320102MA1AAAAA1X", world.ent1]
    r = client.post(f"{CHECK}/batch", headers=auth("reg_tax"),
                    json={"matter": "fiscal_funds", "usccs": bad, **PURPOSE})
    assert r.status_code == 422
    [last] = _entries(session)[1:]
    assert (last.actor, last.uscc, last.outcome) == ("reg_tax", bad[0], "denied") and "共 2 个代码" in last.purpose
    # a body that is not even JSON: one entry, no code
    r = client.post(f"{CHECK}/batch", headers={**auth("reg_tax"), "Content-Type": "application/json"},
                    content=b"{not json")
    assert r.status_code == 422
    last = _entries(session)[-1]
    assert (last.actor, last.uscc, last.outcome) == ("reg_tax", "", "denied")


def test_ten_thousand_malformed_codes_write_one_entry_for_any_caller(client, auth, session):
    malformed = [f"BAD{i:06d}<x>" for i in range(10_000)]
    for user, status in (("reg_samr", 422), ("analyst", 403), ("ent1", 403)):
        before = len(_entries(session))
        r = client.post(f"{CHECK}/batch", headers=auth(user),
                        json={"matter": "administrative_approval", "usccs": malformed, **PURPOSE})
        assert r.status_code == status, r.text
        [entry] = _entries(session)[before:]
        assert entry.actor == user and entry.uscc == "BAD000000x" and "共 10000 个代码" in entry.purpose


def test_refused_entries_are_chained_with_the_allowed_ones(client, auth, session, world):
    from serving.services.querylog_check import check_chain

    client.get(f"{CHECK}/{world.ent1}", params={"matter": "no_such_matter", **PURPOSE}, headers=auth("reg_samr"))
    ok = client.get(f"{CHECK}/{world.ent1}", params={"matter": "administrative_approval", **PURPOSE},
                    headers=auth("reg_samr"))
    assert ok.status_code == 200
    assert [e.outcome for e in _entries(session)] == ["denied", "allowed"]
    result = check_chain(session)
    assert result.ok and result.entries == 2, result


def test_a_forged_api_key_is_a_failed_login_attempt_and_backs_off_never_stored(settings, session, world):
    from fastapi.testclient import TestClient

    client = TestClient(app_on(settings.model_copy(update={"api_key_free_failures_per_address": 2})))
    forged = "tsk_" + "A" * 43
    statuses = [client.get(f"{CHECK}/{world.ent1}", params={"matter": "administrative_approval", **PURPOSE},
                           headers={"X-API-Key": forged}).status_code for _ in range(3)]
    assert statuses == [401, 401, 429]  # the third waits, in the address's bucket of API keys
    assert _entries(session) == []  # no one was authenticated: nothing for the query log
    session.expire_all()
    attempts = list(session.scalars(select(LoginAttempt)))
    assert [a.outcome for a in attempts] == ["failed", "failed"]
    assert all(forged not in a.username and forged[4:12] not in a.username for a in attempts)


def test_a_batch_nested_too_deep_is_refused_and_logged_never_a_500(client, auth, session):
    # found as attacker: the refusal's logger parsed the body again with json.loads and caught only
    # ValueError; deep nesting raises RecursionError, so every caller got a 500, nothing logged
    deep = {"Content-Type": "application/json"}
    r = client.post(f"{CHECK}/batch", headers=auth("ent1") | deep, content=b"[" * 5000 + b"]" * 5000)
    assert r.status_code == 403, r.text
    r = client.post(f"{CHECK}/batch", headers=auth("reg_samr") | deep, content=b"[" * 5000 + b"]" * 5000)
    assert r.status_code in (400, 422), r.text
    assert "嵌套" in r.json()["error"]["message_zh"]
    assert [(e.actor, e.uscc, e.outcome) for e in _entries(session)] == [("ent1", "", "denied"),
                                                                         ("reg_samr", "", "denied")]
