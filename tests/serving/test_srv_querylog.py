"""查询使用登记: every person's read is logged; the hash chain detects edits and deletions."""

from __future__ import annotations

from sqlalchemy import delete, update

from serving.db.tables import QueryLogEntry
from serving.services.querylog import list_entries
from serving.services.querylog_check import check_chain


def test_every_read_is_logged_with_purpose_and_endpoint(client, auth, session, world):
    client.get(f"/api/v1/subjects/{world.ent1}/grade", headers=auth("ent1"))
    client.get(f"/api/v1/subjects/{world.ent1}/records", params={"purpose": "案件调查"}, headers=auth("reg_samr"))
    total, entries = list_entries(session, uscc=world.ent1)
    assert total == 2
    by_actor = {e.actor: e for e in entries}
    assert by_actor["ent1"].purpose.startswith("self_view")
    assert by_actor["reg_samr"].purpose == "案件调查"
    assert by_actor["reg_samr"].endpoint == "GET /api/v1/subjects/{uscc}/records"
    assert all(e.outcome == "allowed" and e.actor_kind == "person" for e in entries)


def test_regulator_list_logs_each_subject_shown(client, auth, session):
    r = client.get("/api/v1/regulator/subjects", params={"purpose": "日常监管"}, headers=auth("reg_samr"))
    shown = {row["uscc"] for row in r.json()["items"]}
    logged = {e.uscc for e in list_entries(session, actor="reg_samr")[1]}
    assert shown and shown == logged


def test_list_reads_log_their_route_template(client, auth, session, world):
    # the endpoint of a logged list read is its route's template, as for a single subject's read
    client.get("/api/v1/regulator/subjects", params={"purpose": "日常监管"}, headers=auth("reg_samr"))
    client.post("/api/v1/regulator/grades/batch", json={"usccs": [world.ent1], "purpose": "批量核查"},
                headers=auth("reg_samr"))
    endpoints = {e.endpoint for e in list_entries(session, actor="reg_samr")[1]}
    assert endpoints == {"GET /api/v1/regulator/subjects", "POST /api/v1/regulator/grades/batch"}


def test_no_route_types_an_endpoint_for_the_query_log():
    # the query log's endpoint comes from the route (serving.deps.ReadLog), never a typed string
    from pathlib import Path

    routes = Path(__file__).resolve().parents[2] / "serving" / "routes"
    offenders = [p.name for p in routes.glob("*.py")
                 if "append_entr" in (text := p.read_text(encoding="utf-8")) or "endpoint=" in text]
    assert offenders == []


def test_chain_detects_an_edited_entry(client, auth, session, world):
    for _ in range(4):
        client.get(f"/api/v1/subjects/{world.ent1}", headers=auth("ent1"))
    assert check_chain(session).ok and check_chain(session).entries == 4
    session.execute(update(QueryLogEntry).where(QueryLogEntry.seq == 3).values(purpose="改过的用途"))
    session.commit()
    result = check_chain(session)
    assert not result.ok and result.first_broken_seq == 3


def test_chain_detects_deleted_entries(client, auth, session, world):
    for _ in range(3):
        client.get(f"/api/v1/subjects/{world.ent1}", headers=auth("ent1"))
    session.execute(delete(QueryLogEntry).where(QueryLogEntry.seq == 2))
    session.commit()
    assert check_chain(session).first_broken_seq == 2
    session.execute(delete(QueryLogEntry).where(QueryLogEntry.seq == 3))
    session.commit()
    assert not check_chain(session).ok  # the tail was cut: the head row still remembers it


def test_admin_reads_log_and_check_over_api(client, auth, world):
    client.get(f"/api/v1/subjects/{world.ent1}", headers=auth("ent1"))
    page = client.get("/api/v1/admin/querylog", headers=auth("admin")).json()
    assert page["total"] == 1 and page["items"][0]["actor"] == "ent1"
    assert client.get("/api/v1/admin/querylog/check", headers=auth("admin")).json()["ok"] is True


def test_personal_info_only_for_admin_and_logged_unmasked(client, auth, session, world):
    r = client.get(f"/api/v1/admin/subjects/{world.ent1}/personal-info", params={"purpose": "法院协查函"},
                   headers=auth("admin"))
    assert r.json()["legal_rep_name"] == "张三丰"
    entry = list_entries(session, actor="admin")[1][0]
    assert entry.personal_info_unmasked and entry.purpose == "法院协查函"
    # everywhere else, even for admin, the person is masked
    r = client.get(f"/api/v1/subjects/{world.ent1}", params={"purpose": "核查"}, headers=auth("admin"))
    assert "张三丰" not in r.text and r.json()["legal_rep_name"] == "张**"


def test_querylog_check_cli_reports_broken_link(database_url, settings, client, auth, session, world, monkeypatch):
    from typer.testing import CliRunner

    from serving.cli import admin  # noqa: F401  (registers the commands)
    from serving.cli.app import app as cli
    from serving.settings import get_settings

    monkeypatch.setenv("TIERS_DATABASE_URL", database_url)
    monkeypatch.setenv("TIERS_KEYS_DIR", str(settings.keys_dir))  # the service's keys
    get_settings.cache_clear()
    try:
        client.get(f"/api/v1/subjects/{world.ent1}", headers=auth("ent1"))
        ok = CliRunner().invoke(cli, ["querylog", "check", "--json"])
        assert ok.exit_code == 0 and '"ok": true' in ok.stdout
        session.execute(update(QueryLogEntry).values(actor="someone-else"))
        session.commit()
        broken = CliRunner().invoke(cli, ["querylog", "check", "--json"])
        assert broken.exit_code == 1 and '"first_broken_seq": 1' in broken.stdout
    finally:
        get_settings.cache_clear()
