"""A batch of reads in the query log (the joint checks' batches, up to 10,000 codes): one entry per
code, sharing the time, caller and purpose of the one request. The chain is built from a canonical
text serialised once per batch, so these tests hold it to ``canonical_entry`` (the checker's
definition) for any content, and show a batch's entries answer "who checked subject X" and that
tampering with one of them is caught."""

from __future__ import annotations

import datetime as dt
import json
import random
import sqlite3

import pytest
from srv_fixtures import make_uscc

from serving.security import Principal
from serving.services import querylog

KEY = "k" * 64
# the characters canonical JSON must escape or keep as they are
AWKWARD = ['"', "\\", "\n", "\t", "\x00", "\x1f", "/", "\u2028", "联合奖惩", "😀", "'", ',"seq":', "}"]


def _random_text(rng: random.Random, n: int) -> str:
    return "".join(rng.choice([*AWKWARD, "a", " ", "查"]) for _ in range(rng.randint(0, n)))


def _entries(rng: random.Random, n: int) -> list[querylog.LoggedRead]:
    """Runs of entries sharing a time, caller and purpose (as batches do), and single ones."""
    out: list[querylog.LoggedRead] = []
    while len(out) < n:
        at = dt.datetime(2026, 12, 7, rng.randint(0, 23), 0, 0, rng.randint(0, 999_999), tzinfo=dt.UTC)
        shared = dict(at=at, actor=_random_text(rng, 6) or "x", actor_role=rng.choice(["regulator", "admin"]),
                      actor_kind=rng.choice(["person", "machine"]), purpose=_random_text(rng, 12),
                      endpoint=rng.choice(["POST /api/v1/credit-checks/batch", "GET /t"]),
                      outcome=rng.choice(["allowed", "denied"]), personal_info_unmasked=rng.random() < 0.2)
        for _ in range(rng.randint(1, 6)):
            out.append(querylog.LoggedRead(uscc=rng.choice([make_uscc(f"913201{rng.randint(0, 10**11):011d}"),
                                                            _random_text(rng, 18)]), **shared))
    return out[:n]


@pytest.mark.parametrize("seed", range(5))
def test_the_batch_chain_is_the_checkers_mac_of_every_entry(seed):
    rng = random.Random(seed)  # noqa: S311 - seeded test data, not a secret
    entries = _entries(rng, 60)
    last = querylog._link(entries, head_seq=100 + len(entries), prev_hash="0" * 64, key=KEY)
    prev = "0" * 64
    for i, entry in enumerate(entries):
        assert entry.seq == 101 + i and entry.prev_hash == prev
        assert entry.entry_hash == querylog.entry_mac(KEY, prev, entry), (entry, querylog.canonical_entry(entry))
        prev = entry.entry_hash
    assert last == prev


@pytest.mark.parametrize("seed", range(3))
def test_the_batch_rows_are_the_single_rows(seed):
    from sqlalchemy.dialects import postgresql, sqlite

    entries = _entries(random.Random(seed), 40)  # noqa: S311 - seeded test data
    querylog._link(entries, head_seq=len(entries), prev_hash="0" * 64, key=KEY)
    for dialect in (sqlite.dialect(), postgresql.dialect()):
        sql = querylog._DriverStatements.for_dialect(dialect)
        assert sql.rows(entries) == [sql.row(e) for e in entries]


def test_the_entries_of_one_append_share_its_time(app, session):  # the app registers the log keys
    who = Principal(username="m1", role="admin", kind="machine")
    codes = [make_uscc(f"913201{i:011d}") for i in range(5)]
    logged = querylog.append_entries(session, principal=who, reads=[(u, "allowed") for u in codes],
                                     purpose="核查", endpoint="POST /x")
    assert len({e.at for e in logged}) == 1 and [e.uscc for e in logged] == codes


@pytest.fixture
def batch_logged(client, auth, tiers_cli, database_url):
    """A batch check of 300 codes by a regulator, logged and anchored; returns the codes and the
    SQLite file."""
    usccs = [make_uscc(f"913201{i:011d}") for i in range(300)]
    r = client.post("/api/v1/credit-checks/batch", headers=auth("reg_samr"),
                    json={"matter": "administrative_approval", "usccs": usccs, "purpose": "项目 NJ-1 资格审查"})
    assert r.status_code == 200, r.text
    tiers_cli("querylog", "checkpoint")
    return usccs, database_url.removeprefix("sqlite:///")


def _check(tiers_cli) -> dict:
    code, out, err = tiers_cli("querylog", "check", "--json")
    result = json.loads(out)
    assert (code == 0) == result["ok"], (code, out, err)
    return result


def test_every_subject_of_a_batch_is_found_in_the_log_and_the_chain_checks(batch_logged, client, auth, tiers_cli):
    usccs, _ = batch_logged
    result = _check(tiers_cli)
    assert result["ok"] and result["entries"] == len(usccs)
    for uscc in (usccs[0], usccs[137], usccs[-1]):  # the auditor's question: who checked subject X
        page = client.get("/api/v1/admin/querylog", params={"uscc": uscc}, headers=auth("admin")).json()
        assert page["total"] == 1, page
        assert page["items"][0]["actor"] == "reg_samr" and "NJ-1" in page["items"][0]["purpose"]


@pytest.mark.parametrize("column, value", [("uscc", "913201000000000000"), ("actor", "someone_else"),
                                           ("at", "2026-01-01 00:00:00.000000")])
def test_tampering_with_one_entry_of_a_batch_is_caught(batch_logged, tiers_cli, column, value):
    _, path = batch_logged
    with sqlite3.connect(path) as db:
        db.execute(f"UPDATE query_log SET {column} = ? WHERE seq = 150", (value,))
    result = _check(tiers_cli)
    assert not result["ok"]
    assert {(b["kind"], b["seq"]) for b in result["breaks"]} == {("rewritten_row", 150)}
