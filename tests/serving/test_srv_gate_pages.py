"""数据质量拦截 page (issue 21): an analyst or admin sees the batches held by the ingest gates of the
store at TIERS_STORE_DIR and releases or rejects them; each decision is audited in gate_decisions
(who, when, what, why) by the one service the CLI calls too."""

from __future__ import annotations

import hashlib
import re
import shutil
from datetime import UTC, date, datetime
from pathlib import Path

import pandas as pd
import pytest
from srv_fixtures import form_login

from features.ingest import ingest
from features.quality import QualityConfig
from features.store import snapshot, staged_batches
from serving.db.tables import GateDecision
from simulation import SimulationConfig, generate

pytestmark = pytest.mark.xdist_group("gate_pages")

END = date(2026, 9, 30)


def _csrf(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def _tree(store: Path) -> dict[str, str]:
    return {str(p.relative_to(store)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(store.rglob("*")) if p.is_file() and p.name != ".lock"}


@pytest.fixture(scope="module")
def held_store(tmp_path_factory):
    """A small clean city published up to August; September's batch arrives with one feed sent twice
    (same document numbers, new record ids): held by ``duplicate``. Returns (store, batch id, tree
    of the store before September's batch, the held batch's files)."""
    work = tmp_path_factory.mktemp("gate-pages")
    generate(SimulationConfig(n_subjects=300, seed=7, dirt=False, years=1, end=END), work / "city")
    records = pd.read_csv(work / "city" / "records.csv", dtype=str, keep_default_na=False).replace("", None)
    month = pd.to_datetime(records["decision_date"]).dt.to_period("M")
    last = pd.Period(END, "M")
    store = work / "store"
    records[month < last].to_csv(work / "before.csv", index=False)
    ingest(store=store, subjects=work / "city" / "subjects.csv", records=work / "before.csv",
           ingested_at=datetime(2026, 9, 1, tzinfo=UTC))
    before = _tree(store)
    now = records[month == last]
    feed = now.groupby(["department", "kind"]).size().idxmax()
    again = now[(now["department"] == feed[0]) & (now["kind"] == feed[1])].copy()
    again["record_id"] = again["record_id"] + "R"
    pd.concat([now, again]).to_csv(work / "september.csv", index=False)
    summary = ingest(store=store, records=work / "september.csv", ingested_at=datetime(2026, 10, 1, tzinfo=UTC),
                     gates=QualityConfig())
    assert summary.status == "held", summary.findings
    assert "duplicate" in {f["rule"] for f in summary.findings if f["action"] == "hold"}
    batch = store / "batches" / summary.batch_id
    files = {str(p.relative_to(batch)): hashlib.sha256(p.read_bytes()).hexdigest()
             for p in sorted(batch.rglob("*.parquet"))}
    return store, summary.batch_id, before, files


@pytest.fixture
def store(held_store, tmp_path):
    copy = tmp_path / "store"
    shutil.copytree(held_store[0], copy)
    return copy


@pytest.fixture
def settings(settings, store):
    return settings.model_copy(update={"store_dir": store})


def test_the_page_lists_the_held_batch_and_others_are_refused(client, held_store):
    _, batch_id, _, _ = held_store
    form_login(client, "reg_samr")
    assert client.get("/analyst/gates").status_code == 403
    assert client.post(f"/analyst/gates/{batch_id}/release", data={"csrf_token": "x", "reason": "r"}).status_code == 403
    client.cookies.clear()
    form_login(client, "analyst")
    page = client.get("/analyst/gates")
    assert page.status_code == 200
    assert batch_id in page.text and "疑似重复记录" in page.text and "放行并发布" in page.text
    assert re.search(r"<code>[^<]+R</code>", page.text)  # an example record: one of the resent ids


def test_release_publishes_exactly_what_was_held_and_is_audited(client, session, held_store, store):
    _, batch_id, _, files = held_store
    form_login(client, "analyst")
    token = _csrf(client.get("/analyst/gates").text)
    refused = client.post(f"/analyst/gates/{batch_id}/release", data={"csrf_token": token, "reason": " "})
    assert refused.status_code == 422 and "理由" in refused.text
    assert batch_id not in snapshot(store).batch_ids and session.query(GateDecision).count() == 0
    done = client.post(f"/analyst/gates/{batch_id}/release", data={"csrf_token": token, "reason": "已与市监局核实"},
                       follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == "/analyst/gates?done=released"
    assert batch_id in snapshot(store).batch_ids and staged_batches(store) == []
    batch = store / "batches" / batch_id
    assert {str(p.relative_to(batch)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(batch.rglob("*.parquet"))} == files
    row = session.query(GateDecision).one()
    assert (row.batch_id, row.decision, row.actor, row.reason) == (batch_id, "released", "analyst", "已与市监局核实")
    assert "duplicate" in row.rules.split(",") and row.at is not None
    after = client.get("/analyst/gates?done=released")
    assert "没有待处理的拦截批次" in after.text and "已与市监局核实" in after.text
    again = client.post(f"/analyst/gates/{batch_id}/reject", data={"csrf_token": token, "reason": "再试"})
    assert again.status_code == 409 and session.query(GateDecision).count() == 1


def test_reject_leaves_the_store_as_before_and_is_audited(client, session, held_store, store):
    _, batch_id, before, _ = held_store
    form_login(client, "admin")
    token = _csrf(client.get("/analyst/gates").text)
    assert client.post(f"/analyst/gates/{batch_id}/reject", data={"csrf_token": "forged", "reason": "x"}).status_code \
        == 403
    done = client.post(f"/analyst/gates/{batch_id}/reject", data={"csrf_token": token, "reason": "整批重复，退回重报"},
                       follow_redirects=False)
    assert done.status_code == 303
    after = _tree(store)
    assert {k: v for k, v in after.items() if not k.startswith("gates/")} == before
    row = session.query(GateDecision).one()
    assert (row.decision, row.actor) == ("rejected", "admin")


def _gate_cli(monkeypatch, tmp_path, database_url: str, *args: str):
    """``tiers gate ARGS`` on ``database_url`` (settings re-read before and after: they are cached)."""
    from typer.testing import CliRunner

    from serving.cli.main import app
    from serving.settings import get_settings

    monkeypatch.setenv("TIERS_DATABASE_URL", database_url)
    monkeypatch.setenv("TIERS_KEYS_DIR", str(tmp_path / "keys"))
    get_settings.cache_clear()
    try:
        return CliRunner().invoke(app, ["gate", *args])
    finally:
        get_settings.cache_clear()


def test_the_cli_decides_through_the_same_audit(held_store, store, tmp_path, monkeypatch):
    from serving.db.migrate import upgrade
    from serving.db.session import iter_session

    _, batch_id, _, _ = held_store
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    upgrade(url)
    result = _gate_cli(monkeypatch, tmp_path, url, "reject", batch_id, "--store", str(store), "--by", "张三",
                       "--reason", "重复报送")
    assert result.exit_code == 0, result.output
    session = next(iter_session(url))
    try:
        row = session.query(GateDecision).one()
        assert (row.batch_id, row.decision, row.actor, row.reason) == (batch_id, "rejected", "张三", "重复报送")
    finally:
        session.close()


def test_the_cli_refuses_without_its_audit_table_and_changes_nothing(held_store, store, tmp_path, monkeypatch):
    _, batch_id, _, _ = held_store
    never_upgraded = f"sqlite:///{tmp_path / 'empty.db'}"
    result = _gate_cli(monkeypatch, tmp_path, never_upgraded, "release", batch_id, "--store", str(store),
                       "--by", "张三", "--reason", "已核实")
    assert result.exit_code == 2 and "tiers db upgrade" in result.output
    assert batch_id not in snapshot(store).batch_ids and [s.batch_id for s in staged_batches(store)] == [batch_id]
