"""联合奖惩 joint checks (issue 20, item 2): for a USCC (or a batch of up to 10,000) and a matter,
the measures that apply with the records, list entries and legal basis behind them; only records in
force by the catalogue's one rule count; every check is logged; grades never leave."""

from __future__ import annotations

import datetime as dt
from importlib import resources

import pytest
from sqlalchemy import select
from srv_fixtures import TODAY, make_uscc

from serving.db.tables import QueryLogEntry
from serving.services.subjects import current_record, new_record_version, store_records
from serving.services.users import create_api_key

CHECK = "/api/v1/credit-checks"
PURPOSE = {"purpose": "项目编号 NJ-2026-001 资格审查"}


def _entries(session) -> list[QueryLogEntry]:
    session.expire_all()
    return list(session.scalars(select(QueryLogEntry).order_by(QueryLogEntry.seq)))


def _measures(body: dict) -> dict[str, dict]:
    return {m["code"]: m for m in body["measures"]}


def _cited(measure: dict) -> set[str]:
    return {r["record_id"] for r in measure["records"]} | {r["record_id"] for r in measure["list_entries"]}


def test_a_department_key_checks_the_matters_of_its_department_and_each_check_is_logged(client, session, world):
    _, key = create_api_key(session, "reg_tax", "税务征管系统")
    headers = {"X-API-Key": key}
    r = client.get(f"{CHECK}/{world.ent1}", params={"matter": "fiscal_funds", **PURPOSE}, headers=headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["uscc"] == world.ent1 and body["matter"] == "fiscal_funds" and body["checked_on"] == TODAY.isoformat()
    measures = _measures(body)
    arrears = measures["arrears_fiscal_funds"]
    assert arrears["type"] == "restriction" and arrears["legal_basis"]
    assert _cited(arrears) == {"R3"}  # the unsettled tax arrears
    # another department's matter: refused before anything is read, in Chinese, naming the matter
    refused = client.get(f"{CHECK}/{world.ent1}", params={"matter": "government_procurement", **PURPOSE},
                         headers=headers)
    assert refused.status_code == 403 and "政府采购" in refused.json()["error"]["message"]
    entries = _entries(session)
    assert [(e.actor, e.actor_kind, e.uscc, e.endpoint, e.outcome) for e in entries] == [
        ("reg_tax", "machine", world.ent1, "GET /api/v1/credit-checks/{uscc}", outcome)
        for outcome in ("allowed", "denied")]  # the refused check leaves its trace too
    assert "fiscal_funds" in entries[0].purpose and "NJ-2026-001" in entries[0].purpose


def test_a_check_gives_measures_and_their_basis_never_the_grade(client, auth, world):
    r = client.get(f"{CHECK}/{world.ent1}", params={"matter": "government_procurement", **PURPOSE},
                   headers=auth("admin"))
    assert r.status_code == 200, r.text
    body = r.json()
    measures = _measures(body)
    serious = measures["serious_penalty_procurement"]
    assert serious["type"] == "restriction" and _cited(serious) == {"R2"}
    cited = serious["records"][0]
    assert cited["document_no"] == "宁市监罚〔2026〕88号" and cited["department"] == "samr"
    assert all(m["legal_basis"] for m in body["measures"])
    text = r.text
    for secret in ('"grade"', '"score"', '"probability"', "640.0", "0.21"):
        assert secret not in text


def test_expired_and_repaired_records_and_ended_list_entries_do_not_count(client, auth, session, world):
    # ENT2's only record, a general penalty of 2025-01-05, left its publicity period on 2026-01-05
    store_records(session, [
        dict(record_id="L-OLD", uscc=world.ent2, kind="list_serious_dishonesty", decision_date="2023-01-01",
             end_date="2025-01-01", department="court", document_no="(2023)苏01执1号"),
    ])
    approval = {"matter": "administrative_approval", **PURPOSE}
    r = client.get(f"{CHECK}/{world.ent2}", params={"matter": "government_procurement", **PURPOSE},
                   headers=auth("admin"))
    assert r.status_code == 200 and r.json()["measures"] == []
    # ENT1's serious penalty counts today; once repaired (a new version of the record) it no longer does
    first = client.get(f"{CHECK}/{world.ent1}", params={"matter": "government_procurement", **PURPOSE},
                       headers=auth("admin")).json()
    assert "R2" in set().union(*(_cited(m) for m in first["measures"]))
    new_record_version(session, current_record(session, "R2", world.ent1), "repaired (信用修复)",
                       repaired=True, repaired_on=TODAY - dt.timedelta(days=1))
    session.commit()
    after = client.get(f"{CHECK}/{world.ent1}", params={"matter": "government_procurement", **PURPOSE},
                       headers=auth("admin")).json()
    assert "R2" not in set().union(set(), *(_cited(m) for m in after["measures"]))
    # an incentive cites the positive record in force; beside a list entry in force it yields
    store_records(session, [dict(record_id="RW1", uscc=world.ent2, kind="admin_reward", decision_date="2026-05-01",
                                 department="samr", document_no="宁市监奖〔2026〕1号")])
    rewarded = client.get(f"{CHECK}/{world.ent2}", params=approval, headers=auth("admin")).json()
    assert [(m["type"], _cited(m)) for m in rewarded["measures"]] == [("incentive", {"RW1"})]
    assert rewarded["blocked"] is False
    store_records(session, [dict(record_id="L-NOW", uscc=world.ent2, kind="list_serious_dishonesty",
                                 decision_date="2026-10-01", department="court", document_no="(2026)苏01执9号")])
    blocked = client.get(f"{CHECK}/{world.ent2}", params=approval, headers=auth("admin")).json()
    assert blocked["blocked"] is True
    assert {m["list_entries"][0]["record_id"] for m in blocked["measures"] if m["list_entries"]} == {"L-NOW"}
    assert all(m["type"] == "restriction" for m in blocked["measures"])


def test_the_batch_answers_every_code_in_order_and_logs_each_once(client, auth, session, world):
    unknown = make_uscc("91320100MA1XXXXX9")
    usccs = [world.ent2, world.ent1, unknown, world.ent1]
    r = client.post(f"{CHECK}/batch", headers=auth("reg_samr"),
                    json={"matter": "administrative_approval", "usccs": usccs, **PURPOSE})
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [x["uscc"] for x in results] == [world.ent2, world.ent1, unknown]
    assert [x["found"] for x in results] == [True, True, False]
    assert results[2]["measures"] == []
    entries = _entries(session)
    assert [(e.uscc, e.endpoint) for e in entries] == [(u, "POST /api/v1/credit-checks/batch")
                                                       for u in (world.ent2, world.ent1, unknown)]


def test_a_batch_over_10000_is_refused_in_chinese(client, auth, session):
    usccs = [make_uscc(f"913201{i:011d}") for i in range(10_001)]
    r = client.post(f"{CHECK}/batch", headers=auth("reg_samr"),
                    json={"matter": "administrative_approval", "usccs": usccs, **PURPOSE})
    assert r.status_code == 422
    error = r.json()["error"]
    assert error["field"] == "usccs" and "10000" in error["message"].replace(",", "") and "一次最多" in error["message"]
    assert {e.outcome for e in _entries(session)} == {"denied"}  # nothing answered (test_srv_check_refusals)


def test_who_may_check_what(client, auth, session, world):
    for user, matter, status, text in (
        ("ent1", "administrative_approval", 403, "enterprise"),   # an enterprise does not check others
        ("analyst", "administrative_approval", 403, "analyst"),
        ("reg_samr", "no_such_matter", 422, "事项"),                # unknown matter: named, in Chinese
    ):
        r = client.get(f"{CHECK}/{world.ent1}", params={"matter": matter, **PURPOSE}, headers=auth(user))
        assert r.status_code == status and text in r.text, (user, r.text)
    assert [e.outcome for e in _entries(session)] == ["denied"] * 3  # refused, and logged so


def test_the_catalogue_refuses_a_bad_file_naming_it(tmp_path):
    from serving.measures import MeasuresError, load_measures

    good = load_measures(None)
    assert {"government_procurement", "bidding", "administrative_approval", "honours", "fiscal_funds"} <= set(
        good.matters)
    bad = tmp_path / "measures.toml"
    source = resources.files("serving.measures").joinpath("default.toml").read_text(encoding="utf-8")
    bad.write_text(source.replace('kinds = ["admin_reward"', 'kinds = ["admin_penalty"', 1),  # an incentive on a penalty
                   encoding="utf-8")
    with pytest.raises(MeasuresError, match=r"measures\.toml.*incentive.*admin_penalty"):
        load_measures(bad)
    bad.write_text(source.replace('"government_procurement"', '"procurement_typo"', 1), encoding="utf-8")
    with pytest.raises(MeasuresError, match=r"measures\.toml"):
        load_measures(bad)


def test_after_the_nightly_refresh_a_check_is_a_read_until_a_record_changes(session, world, monkeypatch, tmp_path,
                                                                            database_url):
    import json

    from typer.testing import CliRunner

    import features.evidence
    from serving.cli.main import app as cli_app
    from serving.deps import get_today
    from serving.services import credit_checks
    from serving.settings import get_settings

    monkeypatch.setenv("TIERS_DATABASE_URL", database_url)
    monkeypatch.setenv("TIERS_KEYS_DIR", str(tmp_path / "keys"))
    get_settings.cache_clear()
    result = CliRunner().invoke(cli_app, ["db", "refresh-checks", "--json"])
    get_settings.cache_clear()
    assert result.exit_code == 0 and json.loads(result.stdout)["subjects"] == 3, result.stdout

    def rule_run(*args, **kwargs):
        raise AssertionError("the rule ran although every basis was fresh")

    today = get_today()
    with monkeypatch.context() as patched:
        patched.setattr(features.evidence, "records_in_force", rule_run)
        found = credit_checks.bases(session, [world.ent1, world.ent2, world.ent3], today)
    assert {e["record_id"] for e in found[world.ent1].entries} >= {"R2", "R3"}
    # a new version of a record (here a revocation) makes that subject's basis stale, and only that one
    new_record_version(session, current_record(session, "R3", world.ent1), "objection upheld", revoked=True,
                       revoked_on=today)
    session.commit()
    _, stale = credit_checks.stored_bases(session, [world.ent1, world.ent2], today)
    assert stale == [(world.ent1, "C")]
    assert "R3" not in {e["record_id"] for e in credit_checks.bases(session, [world.ent1], today)[world.ent1].entries}


def test_the_joint_checks_are_routed_first_and_no_other_route_takes_their_paths(app):
    """The router tries the app's routes in order; the joint checks' router is the first API one
    (their callers' systems send hundreds a second), which may only change what they answer if
    another route matched their paths too."""
    from starlette.routing import Match

    def contexts(route):
        return route.effective_route_contexts() if hasattr(route, "effective_route_contexts") else [route]

    code = make_uscc("91320100000000001")
    routers = [r for r in app.router.routes if hasattr(r, "effective_route_contexts")]
    assert {ctx.path for ctx in contexts(routers[0])} == {f"{CHECK}/{{uscc}}", f"{CHECK}/batch"}
    for method, path in (("GET", f"{CHECK}/{code}"), ("GET", f"{CHECK}/batch"), ("POST", f"{CHECK}/batch"),
                         ("POST", f"{CHECK}/{code}"), ("GET", f"{CHECK}/{code}/x")):
        scope = {"type": "http", "method": method, "path": path, "root_path": "", "query_string": b"", "headers": []}
        others = [ctx.path for route in app.router.routes if route is not routers[0]
                  for ctx in contexts(route) if ctx.matches(dict(scope))[0] != Match.NONE]
        assert others == [], (method, path)
