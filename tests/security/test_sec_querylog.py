"""The query log against someone who can write the database: each tampering of the issue makes
``tiers querylog check`` fail and name the break; what it cannot see alone (an insider holding
the keys who also rewrites the local checkpoints) a second party's copy of the checkpoints shows."""

from __future__ import annotations

import hashlib
import json
import sqlite3

import pytest
from srv_fixtures import ENT1

from serving.services import querylog

READS = 6


@pytest.fixture
def logged(client, auth, tiers_cli, database_url):
    """Six logged reads, anchored by a checkpoint (as the service writes them, or an office's cron);
    returns the path of the SQLite file."""
    for _ in range(READS):
        assert client.get(f"/api/v1/subjects/{ENT1}/grade", headers=auth("ent1")).status_code == 200
    tiers_cli("querylog", "checkpoint")
    code, out, _ = tiers_cli("querylog", "check", "--json")
    assert code == 0, out
    return database_url.removeprefix("sqlite:///")


def _check(tiers_cli, *args: str) -> dict:
    code, out, err = tiers_cli("querylog", "check", "--json", *args)
    result = json.loads(out)
    assert (code == 0) == result["ok"], (code, out, err)
    return result


def _kinds(result: dict) -> set[str]:
    return {b["kind"] for b in result.get("breaks", [])}


def _unkeyed(prev: str, row: dict) -> str:
    """The project's old, unkeyed chain function, as an attacker recomputes it."""
    entry = querylog.LoggedRead(**{k: row[k] for k in ("at", "actor", "actor_role", "actor_kind", "uscc", "purpose",
                                                       "endpoint", "outcome", "personal_info_unmasked", "seq")})
    return hashlib.sha256((prev + querylog.canonical_entry(entry)).encode("utf-8")).hexdigest()


def _rows(db: sqlite3.Connection) -> list[dict]:
    import datetime as dt

    db.row_factory = sqlite3.Row
    rows = [dict(r) for r in db.execute("SELECT * FROM query_log ORDER BY seq")]
    for r in rows:
        r["at"] = dt.datetime.fromisoformat(str(r["at"]))
    return rows


def _rehash_from(db: sqlite3.Connection, rows: list[dict], start: int, mac) -> None:
    """Recompute every hash from ``start`` on with ``mac`` and move the head: a consistent chain."""
    prev = rows[start - 2]["entry_hash"] if start > 1 else "0" * 64
    for row in rows[start - 1:]:
        row["prev_hash"], row["entry_hash"] = prev, mac(prev, row)
        db.execute("UPDATE query_log SET purpose=?, prev_hash=?, entry_hash=? WHERE seq=?",
                   (row["purpose"], row["prev_hash"], row["entry_hash"], row["seq"]))
        prev = row["entry_hash"]
    db.execute("UPDATE query_log_head SET seq=?, last_hash=? WHERE id=1", (rows[-1]["seq"], prev))
    db.commit()


def test_an_intact_log_checks_ok_with_its_checkpoint(logged, tiers_cli):
    result = _check(tiers_cli)
    assert result["ok"] and result["entries"] == READS
    assert result["checkpoint"]["seq"] == READS


def test_deleting_the_head_row_and_the_last_entry(logged, tiers_cli):
    with sqlite3.connect(logged) as db:
        db.execute("DELETE FROM query_log_head")
        db.execute("DELETE FROM query_log WHERE seq = ?", (READS,))
    result = _check(tiers_cli)
    assert not result["ok"] and {"missing_head", "deleted_tail"} <= _kinds(result)


def test_deleting_the_last_entry_and_moving_the_head_back(logged, tiers_cli):
    with sqlite3.connect(logged) as db:
        rows = _rows(db)
        db.execute("DELETE FROM query_log WHERE seq = ?", (READS,))
        db.execute("UPDATE query_log_head SET seq=?, last_hash=? WHERE id=1", (READS - 1, rows[-2]["entry_hash"]))
    result = _check(tiers_cli)
    assert not result["ok"] and "deleted_tail" in _kinds(result)


def test_rewriting_a_row_and_rehashing_with_the_unkeyed_chain_function(logged, tiers_cli):
    with sqlite3.connect(logged) as db:
        rows = _rows(db)
        rows[2]["purpose"] = "改过的用途"
        _rehash_from(db, rows, 3, _unkeyed)
    result = _check(tiers_cli)
    assert not result["ok"] and "rewritten_row" in _kinds(result)
    assert result["first_broken_seq"] <= 3


def test_emptying_both_tables(logged, tiers_cli):
    with sqlite3.connect(logged) as db:
        db.execute("DELETE FROM query_log")
        db.execute("DELETE FROM query_log_head")
    result = _check(tiers_cli)
    assert not result["ok"] and "truncated" in _kinds(result)


def _insider_mac(app):
    """What someone holding the log's MAC key computes (the project's own function and key)."""
    key = getattr(app.state.settings, "querylog_mac_key", None)
    if key is None or not hasattr(querylog, "entry_mac"):
        return _unkeyed
    secret = key.get_secret_value()
    return lambda prev, row: querylog.entry_mac(secret, prev, querylog.LoggedRead(**{
        k: row[k] for k in ("at", "actor", "actor_role", "actor_kind", "uscc", "purpose", "endpoint", "outcome",
                            "personal_info_unmasked", "seq")}))


def test_wholesale_replacement_by_someone_holding_the_mac_key(logged, tiers_cli, app):
    with sqlite3.connect(logged) as db:
        rows = _rows(db)
        for row in rows:
            row["purpose"] = "例行检查"
        _rehash_from(db, rows, 1, _insider_mac(app))
    result = _check(tiers_cli)
    assert not result["ok"] and "replaced" in _kinds(result)


def test_a_second_partys_copy_of_the_checkpoints_catches_an_insider_with_every_key(
        logged, tiers_cli, app, client, auth, tmp_path, keys_dir):
    download = client.get("/api/v1/admin/querylog/checkpoints", headers=auth("admin"))
    assert download.status_code == 200
    assert client.get("/api/v1/admin/querylog/checkpoints", headers=auth("reg_samr")).status_code == 403
    copy = tmp_path / "second-party-checkpoints.jsonl"
    copy.write_bytes(download.content)
    public = client.get("/api/v1/admin/querylog/public-key", headers=auth("admin"))
    assert public.status_code == 200
    public_key = tmp_path / "second-party-public-key.pem"
    public_key.write_bytes(public.content)

    with sqlite3.connect(logged) as db:
        rows = _rows(db)
        for row in rows:
            row["purpose"] = "例行检查"
        _rehash_from(db, rows, 1, _insider_mac(app))
    # the insider also holds the signing key: drops the local checkpoints and signs the forged head
    local = next(keys_dir.glob("*checkpoints*"))
    local.write_text("")
    tiers_cli("querylog", "checkpoint")
    assert _check(tiers_cli)["ok"]  # alone, the office cannot tell: the documented gap
    result = _check(tiers_cli, "--checkpoints", str(copy), "--public-key", str(public_key))
    assert not result["ok"] and "replaced" in _kinds(result)


def test_the_service_anchors_its_log_by_itself(client, auth, tiers_cli):
    import time

    for _ in range(3):
        client.get(f"/api/v1/subjects/{ENT1}/grade", headers=auth("ent1"))
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        result = _check(tiers_cli)
        if (result.get("checkpoint") or {}).get("seq") == 3:
            break
        time.sleep(0.3)
    assert result["ok"] and result["checkpoint"]["seq"] == 3


def test_a_log_chained_before_the_keys_is_kept_and_still_checked(tmp_path, keys_dir, monkeypatch):
    """A log written by the unkeyed chain (before revision 0003) stays readable: its entries are
    checked with the old function, and every entry after them with the key. (The log as 0003 left
    it: the unkeyed entries, and ``keyed_from`` after the last of them.)"""
    import datetime as dt

    from sqlalchemy import create_engine, text

    from serving.db.migrate import upgrade

    url = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade(url)
    prev = "0" * 64
    engine = create_engine(url)
    with engine.begin() as conn:
        for seq in range(1, 4):
            row = dict(seq=seq, at=dt.datetime(2026, 1, seq, tzinfo=dt.UTC), actor="old", actor_role="admin",
                       actor_kind="person", uscc=ENT1, purpose="旧记录", endpoint="GET /x", outcome="allowed",
                       personal_info_unmasked=False)
            digest = _unkeyed(prev, row)
            conn.execute(text("INSERT INTO query_log (seq, at, actor, actor_role, actor_kind, uscc, purpose, endpoint, "
                              "outcome, personal_info_unmasked, prev_hash, entry_hash) VALUES (:seq, :at, :actor, "
                              ":actor_role, :actor_kind, :uscc, :purpose, :endpoint, :outcome, "
                              ":personal_info_unmasked, :prev, :hash)"), {**row, "prev": prev, "hash": digest})
            prev = digest
        conn.execute(text("UPDATE query_log_head SET seq=3, last_hash=:h, keyed_from=4 WHERE id=1"), {"h": prev})
    engine.dispose()

    from typer.testing import CliRunner

    from serving.cli.main import app as cli_app
    from serving.settings import get_settings

    monkeypatch.setenv("TIERS_DATABASE_URL", url)
    monkeypatch.setenv("TIERS_KEYS_DIR", str(keys_dir))

    def check() -> dict:
        get_settings.cache_clear()
        out = CliRunner().invoke(cli_app, ["querylog", "check", "--json"]).stdout
        get_settings.cache_clear()
        return json.loads(out)

    result = check()
    assert result["ok"] and result["entries"] == 3 and result["legacy_entries"] == 3
    get_settings.cache_clear()
    CliRunner().invoke(cli_app, ["querylog", "checkpoint"])  # the office anchors the old log once
    with sqlite3.connect(tmp_path / "old.db") as db:
        rows = _rows(db)
        rows[1]["purpose"] = "改过的用途"
        _rehash_from(db, rows, 2, _unkeyed)
    # rehashed with the old function, the legacy part is consistent again: only a checkpoint or
    # a keyed entry after it can tell (the docs say so); here the signed checkpoint does
    result = check()
    assert not result["ok"] and _kinds(result) & {"replaced", "rewritten_row"}


def test_the_incremental_check_walks_from_the_latest_checkpoint_and_finds_tampering_after_it(
        logged, client, auth, tiers_cli):
    for _ in range(4):  # four reads after the checkpoint of entry 6
        assert client.get(f"/api/v1/subjects/{ENT1}/grade", headers=auth("ent1")).status_code == 200
    result = _check(tiers_cli, "--incremental")
    assert result["ok"] and result["checked_from"] == READS and result["entries"] == 5
    with sqlite3.connect(logged) as db:
        db.execute("UPDATE query_log SET purpose = '改过的用途' WHERE seq = ?", (READS + 2,))
    result = _check(tiers_cli, "--incremental")
    assert not result["ok"] and "rewritten_row" in _kinds(result) and result["first_broken_seq"] == READS + 2


def test_the_incremental_check_refuses_a_checkpointed_entry_that_was_replaced(logged, tiers_cli):
    with sqlite3.connect(logged) as db:
        rows = _rows(db)
        rows[READS - 1]["purpose"] = "改过的用途"
        _rehash_from(db, rows, READS, _unkeyed)  # the signed entry itself, rehashed
    result = _check(tiers_cli, "--incremental")
    assert not result["ok"] and {"replaced", "rewritten_row"} & _kinds(result)
    # an entry before the checkpoint is left to the full check: the incremental one does not walk it
    with sqlite3.connect(logged) as db:
        db.execute("UPDATE query_log SET purpose = '改过的用途' WHERE seq = 2")
    assert "rewritten_row" in _kinds(_check(tiers_cli))


def _downgrade_to_unkeyed(logged: str) -> None:
    """The attacker of issue 14 (a10_rehash.py): without the MAC key, raise the head's keyed_from
    past every entry and rehash the whole log with the unkeyed function."""
    with sqlite3.connect(logged) as db:
        rows = _rows(db)
        rows[0]["purpose"] = "rewritten"
        _rehash_from(db, rows, 1, _unkeyed)
        db.execute("UPDATE query_log_head SET keyed_from = 1000000000 WHERE id = 1")
        db.commit()


@pytest.mark.parametrize("checkpoints", ["kept", "deleted", "emptied"])
def test_moving_keyed_from_without_the_key_is_caught(logged, tiers_cli, keys_dir, checkpoints):
    """keyed_from is authenticated outside the database: raising it so that every entry falls back
    to the unkeyed check is a break, with or without the checkpoint file."""
    _downgrade_to_unkeyed(logged)
    path = keys_dir / "querylog-checkpoints.jsonl"
    if checkpoints == "deleted":
        path.unlink()
    elif checkpoints == "emptied":
        path.write_text("")
    result = _check(tiers_cli)
    assert not result["ok"]
    assert "keyed_from_moved" in _kinds(result)


@pytest.mark.parametrize("how", ["deleted", "emptied"])
def test_a_keyed_log_without_any_checkpoint_is_reported(logged, tiers_cli, keys_dir, app, how):
    """Keyed entries older than the checkpoint interval and not one valid checkpoint: nothing
    anchors the head outside the database any more, which the check says (not ok)."""
    import datetime as dt

    with sqlite3.connect(logged) as db:  # the same log, its reads an hour old (as the key holder
        rows = _rows(db)                 # writes them: the MACs are valid)
        for row in rows:
            row["at"] = row["at"] - dt.timedelta(hours=1)
            db.execute("UPDATE query_log SET at=? WHERE seq=?", (str(row["at"]), row["seq"]))
        _rehash_from(db, rows, 1, _insider_mac(app))
    path = keys_dir / "querylog-checkpoints.jsonl"
    path.unlink() if how == "deleted" else path.write_text("")
    result = _check(tiers_cli)
    assert not result["ok"] and "no_checkpoint" in _kinds(result)
    assert {"rewritten_row", "replaced"}.isdisjoint(_kinds(result))


def test_a_fresh_keyed_log_is_not_blamed_for_its_first_checkpoint_pending(client, auth, tiers_cli, keys_dir):
    assert client.get(f"/api/v1/subjects/{ENT1}/grade", headers=auth("ent1")).status_code == 200
    (keys_dir / "querylog-checkpoints.jsonl").unlink(missing_ok=True)
    assert _check(tiers_cli)["ok"]


@pytest.mark.parametrize("spread_s, reported", [(120, True), (2, False)])
def test_a_checkpoint_file_cut_back_to_the_empty_log_is_reported_once_its_reads_span_the_grace(
        logged, tiers_cli, keys_dir, app, spread_s, reported):
    """The service signs a checkpoint of its empty log at its first start. A file cut back to
    that line alone, under reads written over longer than one run of the service leaves unsigned
    (the grace, 60 s here), is `no_checkpoint`; reads within a few seconds of each other are what
    a service killed before its first checkpoint leaves: not blamed."""
    import datetime as dt

    with sqlite3.connect(logged) as db:  # the reads an hour old, spread over ``spread_s``
        rows = _rows(db)
        for i, row in enumerate(rows):
            row["at"] = row["at"] - dt.timedelta(hours=1) + dt.timedelta(seconds=spread_s * i / (len(rows) - 1))
            db.execute("UPDATE query_log SET at=? WHERE seq=?", (str(row["at"]), row["seq"]))
        _rehash_from(db, rows, 1, _insider_mac(app))
    path = keys_dir / "querylog-checkpoints.jsonl"
    empty_log = [line for line in path.read_text().splitlines() if json.loads(line)["seq"] == 0]
    assert empty_log  # signed at the service's first start
    path.write_text("".join(f"{line}\n" for line in empty_log))
    for args in ((), ("--incremental",)):
        result = _check(tiers_cli, *args)
        assert ("no_checkpoint" in _kinds(result)) is reported and result["ok"] is not reported, result
        assert {"rewritten_row", "replaced", "missing_entry"}.isdisjoint(_kinds(result))
