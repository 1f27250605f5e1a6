"""A batch held by a data-quality gate (features.gates): invisible until a person decides; releasing
publishes exactly what was held, rejecting leaves the store as it was; both audited."""

from __future__ import annotations

import hashlib
import json
import shutil
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from feat_fixtures import store_tree
from typer.testing import CliRunner

from features.gates import GateError, held_batches, read_report, reject, release
from features.ingest import ingest
from features.profiles import build_profiles
from features.quality import QualityConfig
from features.store import snapshot, staged_batches
from simulation import SimulationConfig, generate

# the module's city (simulated, published month by month) is built once on one worker, not on both
pytestmark = pytest.mark.xdist_group("feat_gates")

END = date(2026, 9, 30)
AS_OF = date(2026, 9, 30)


def _ingest_month(store: Path, work: Path, month: pd.Period, rows: pd.DataFrame, *, subjects: Path | None = None,
                  gates: QualityConfig | None = QualityConfig()):
    path = work / f"records-{month}-{len(rows)}.csv"
    rows.to_csv(path, index=False)
    at = datetime.combine((month + 1).start_time.date(), datetime.min.time(), tzinfo=UTC)
    return ingest(store=store, subjects=subjects, records=path, ingested_at=at, gates=gates)


@pytest.fixture(scope="module")
def city(tmp_path_factory):
    """A clean simulated city, its store published month by month up to August 2026 through the gates,
    and September's batch with the largest amount feed in 万元 (×10,000)."""
    work = tmp_path_factory.mktemp("gates")
    generate(SimulationConfig(n_subjects=1500, seed=5, dirt=False, years=2, end=END), work / "city")
    records = pd.read_csv(work / "city" / "records.csv", dtype=str, keep_default_na=False).replace("", None)
    month = pd.to_datetime(records["decision_date"]).dt.to_period("M")
    store = work / "store"
    last = pd.Period(END, "M")
    first = _ingest_month(store, work, last - 4, records[month <= last - 4], subjects=work / "city" / "subjects.csv")
    assert first.status == "published" and not [f for f in first.findings if f["action"] == "hold"]
    for m in pd.period_range(last - 3, last - 1, freq="M"):
        assert _ingest_month(store, work, m, records[month == m]).status == "published"
    clean = records[month == last].copy()
    amounts = pd.to_numeric(clean["amount"], errors="coerce")
    feed = clean[amounts > 0].groupby(["department", "kind"]).size().idxmax()
    wrong = clean.copy()
    hit = (wrong["department"] == feed[0]) & (wrong["kind"] == feed[1])
    wrong.loc[hit, "amount"] = pd.to_numeric(wrong.loc[hit, "amount"]) * 10_000
    return {"work": work, "store": store, "last": last, "wrong": wrong, "clean": clean, "feed": "/".join(feed)}


def _copy(city, name: str) -> Path:
    target = city["work"] / name
    shutil.copytree(city["store"], target)
    return target


def _batch_files(store: Path, batch_id: str) -> dict[str, str]:
    root = store / "batches" / batch_id
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*.parquet"))}


def _profiles(store: Path) -> pd.DataFrame:
    return build_profiles(snapshot(store), as_of=AS_OF).sort_values("uscc").reset_index(drop=True)


def test_a_clean_month_publishes_with_no_finding(city):
    store = _copy(city, "clean")
    summary = _ingest_month(store, city["work"], city["last"], city["clean"])
    assert summary.status == "published" and summary.findings == []
    assert summary.batch_id in snapshot(store).batch_ids
    assert read_report(store, summary.batch_id).status == "published"


def test_a_held_batch_changes_no_profile_until_released_and_then_exactly_as_published(city):
    store, twin = _copy(city, "held"), _copy(city, "twin")
    before, manifest = _profiles(store), (store / "manifest.json").read_bytes()
    summary = _ingest_month(store, city["work"], city["last"], city["wrong"])
    assert summary.status == "held"
    unit = [f for f in summary.findings if f["rule"] == "amount_unit"]
    assert unit and unit[0]["feed"] == city["feed"] and unit[0]["threshold"] == 4 and unit[0]["examples"]
    assert (store / "manifest.json").read_bytes() == manifest
    assert summary.batch_id not in snapshot(store).batch_ids
    pd.testing.assert_frame_equal(_profiles(store), before)
    assert [r.batch_id for r in held_batches(store)] == [summary.batch_id]
    held_files = _batch_files(store, summary.batch_id)

    report = release(store, summary.batch_id, by="张三", reason="单位已与市监局核实，确为万元换算后的正确金额")
    assert report.status == "released" and report.decisions[-1]["by"] == "张三" and report.decisions[-1]["at"]
    assert summary.batch_id in snapshot(store).batch_ids and staged_batches(store) == []
    assert _batch_files(store, summary.batch_id) == held_files
    # the same batch published without a gate gives the same profiles
    same = _ingest_month(twin, city["work"], city["last"], city["wrong"], gates=None)
    assert _batch_files(twin, same.batch_id) == held_files
    after = _profiles(store)
    pd.testing.assert_frame_equal(after, _profiles(twin))
    assert not after.equals(before)
    assert json.loads((store / "gates" / f"{summary.batch_id}.json").read_text(encoding="utf-8"))["status"] == \
        "released"


def test_rejecting_a_held_batch_leaves_the_store_as_before(city):
    store = _copy(city, "rejected")
    tree = store_tree(store)
    summary = _ingest_month(store, city["work"], city["last"], city["wrong"])
    assert summary.status == "held"
    with pytest.raises(GateError):
        reject(store, summary.batch_id, by="张三", reason=" ")
    report = reject(store, summary.batch_id, by="张三", reason="整批金额单位错误，已退回市监局重报")
    assert report.status == "rejected"
    after = store_tree(store)
    assert set(after) - set(tree) == {f"gates/{summary.batch_id}.json"}  # the audit of the decision
    assert {k: v for k, v in after.items() if k in tree} == tree
    with pytest.raises(GateError, match="not held"):
        release(store, summary.batch_id, by="李四", reason="再试一次")
    # the corrected batch then goes through
    assert _ingest_month(store, city["work"], city["last"], city["clean"]).status == "published"


def test_an_office_first_month_publishes_whatever_its_scale(tmp_path):
    generate(SimulationConfig(n_subjects=400, seed=9, dirt=False, years=1, end=END), tmp_path / "city")
    records = pd.read_csv(tmp_path / "city" / "records.csv", dtype=str, keep_default_na=False).replace("", None)
    records["amount"] = pd.to_numeric(records["amount"]) * 10_000  # no history to compare with
    summary = _ingest_month(tmp_path / "store", tmp_path, pd.Period(END, "M") - 1, records,
                            subjects=tmp_path / "city" / "subjects.csv")
    assert summary.status == "published", [(f["rule"], f["detail"]) for f in summary.findings]
    assert not {f["rule"] for f in summary.findings} & {"amount_unit", "amount_tail", "volume_surge", "date_late"}


def test_the_cli_lists_releases_and_refuses_without_a_reason(city, tmp_path, monkeypatch, request):
    from serving.cli.main import app
    from serving.db.migrate import upgrade
    from serving.settings import get_settings

    # a decision is audited in the database (serving.services.gate_decisions): this test's own
    url = f"sqlite:///{tmp_path / 'tiers.db'}"
    upgrade(url)
    monkeypatch.setenv("TIERS_DATABASE_URL", url)
    monkeypatch.setenv("TIERS_KEYS_DIR", str(tmp_path / "keys"))
    get_settings.cache_clear()
    request.addfinalizer(get_settings.cache_clear)  # the environment's settings again after this test
    store = _copy(city, "cli")
    work = city["work"]
    path = work / "wrong.csv"
    city["wrong"].to_csv(path, index=False)
    runner = CliRunner()
    at = (city["last"] + 1).start_time.date().isoformat()
    result = runner.invoke(app, ["ingest", "--records", str(path), "--store", str(store), "--ingested-at", at, "--json"])
    assert result.exit_code == 3, result.output
    batch_id = json.loads(result.stdout)["batch_id"]
    held = runner.invoke(app, ["gate", "held", "--store", str(store), "--json"])
    assert [r["batch_id"] for r in json.loads(held.stdout)] == [batch_id]
    refused = runner.invoke(app, ["gate", "release", batch_id, "--store", str(store), "--by", "张三", "--reason", ""])
    assert refused.exit_code == 2 and batch_id not in snapshot(store).batch_ids
    done = runner.invoke(app, ["gate", "release", batch_id, "--store", str(store), "--by", "张三", "--reason", "已核实"])
    assert done.exit_code == 0 and batch_id in snapshot(store).batch_ids
    assert np.isfinite(len(json.loads(runner.invoke(app, ["gate", "held", "--store", str(store), "--json"]).stdout)))
