"""Ingestion's memory bound (issue 15: a 5 GB CSV under 2 GB RSS): every DuckDB connection a batch
goes through is bounded by the caller's memory limit, including the check of the whole batch
before its current state is derived (unbounded, it took ~2 GB of its own on 27 M records), and the
phases a benchmark attributes peak memory to are logged in order."""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from feat_fixtures import INGESTED_AT, record, records_frame, store_tree

import features.ingest as ingest_module
import features.store as store_module
from features.ingest import ingest
from features.profiles import build_profiles
from features.store import staged_batches

pytestmark = pytest.mark.xdist_group("feat_ingest_memory")

SAMPLES = Path(__file__).resolve().parents[2] / "data_samples"
AS_OF = INGESTED_AT.date() - timedelta(days=140)


def _codes(n: int) -> list[str]:
    return pd.read_csv(SAMPLES / "city" / "subjects.csv", dtype=str, nrows=n)["uscc"].tolist()


def _records_file(where: Path, prefix: str, n: int = 40) -> Path:
    codes = _codes(5)
    rows = [record(f"{prefix}{i}", codes[i % len(codes)], "admin_penalty", f"2026-0{1 + i % 5}-01") for i in range(n)]
    rows[3]["amount"] = "inf"  # one row quarantined: the counts must still add up
    path = where / f"{prefix}.csv"
    records_frame(rows).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def base_store(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("memory")
    summary = ingest(store=root / "store", subjects=SAMPLES / "city" / "subjects.csv",
                     records=_records_file(root, "B"), ingested_at=INGESTED_AT)
    assert all(f.read == f.accepted + f.quarantined for f in summary.files)
    return root / "store"


def _settings(con) -> tuple[str, str, int]:
    return con.execute("SELECT current_setting('memory_limit'), current_setting('temp_directory'), "
                       "current_setting('threads')").fetchall()[0]


def test_the_batch_check_runs_under_ingestions_memory_limit_and_leaves_no_spill(store, tmp_path, monkeypatch):
    seen = []
    real = store_module._check_batch

    def spy(con, *args, **kwargs):
        seen.append(_settings(con))
        return real(con, *args, **kwargs)

    monkeypatch.setattr(store_module, "_check_batch", spy)
    summary = ingest(store=store, records=_records_file(tmp_path, "N"), ingested_at=INGESTED_AT + timedelta(days=1))
    assert summary.status == "published" and summary.read == summary.accepted + summary.quarantined == 40
    bounded = duckdb.connect()
    bounded.execute(f"SET memory_limit = '{ingest_module._DUCKDB_MEMORY}'")
    assert len(seen) == 1
    memory, spill, threads = seen[0]
    assert memory == _settings(bounded)[0]  # not DuckDB's default of 80 % of the machine
    assert int(threads) <= 2
    assert Path(spill).is_relative_to(store) and not Path(spill).exists()
    assert not [p for p in store.rglob("*") if p.name.startswith(".tmp")]


def test_a_batch_check_that_fails_leaves_the_store_as_before_and_profileable(store, tmp_path, monkeypatch):
    before_tree, before_profiles = store_tree(store), build_profiles(store, as_of=AS_OF)

    def out_of_memory(*args, **kwargs):
        raise duckdb.OutOfMemoryException("Out of Memory Error: could not allocate block (injected)")

    monkeypatch.setattr(store_module, "_check_batch", out_of_memory)
    path = _records_file(tmp_path, "F")
    with pytest.raises(duckdb.OutOfMemoryException):
        ingest(store=store, records=path, ingested_at=INGESTED_AT + timedelta(days=1))
    monkeypatch.undo()
    assert store_tree(store) == before_tree and staged_batches(store) == []
    pd.testing.assert_frame_equal(build_profiles(store, as_of=AS_OF), before_profiles, check_exact=True)
    summary = ingest(store=store, records=path, ingested_at=INGESTED_AT + timedelta(days=1))
    assert summary.read == summary.accepted + summary.quarantined == 40 and summary.accepted == 39


def test_ingestion_logs_its_phases_in_order(store, tmp_path, caplog):
    caplog.set_level(logging.DEBUG, logger="features")
    ingest(store=store, records=_records_file(tmp_path, "P"), ingested_at=INGESTED_AT + timedelta(days=1))
    phases = [r.getMessage().removeprefix("phase: ") for r in caplog.records if r.getMessage().startswith("phase: ")]
    assert phases == ["stage P.csv", "duplicates P.csv", "versions P.csv", "quarantine P.csv", "publish",
                      "check batch", "derive delta", "sync batch"]


def test_a_check_that_spills_works_on_a_new_store(tmp_path, monkeypatch):
    """A new store has no current/ yet: the check's spill directory must still be creatable (DuckDB
    makes only its last level; the 2 GB benchmark's first batch failed there once it spilled)."""
    real = store_module._check_batch

    def spilling(con, *args, **kwargs):
        limit = _settings(con)[0]
        con.execute("SET memory_limit = '64MB'")
        con.execute("SELECT count(DISTINCT 'key-' || i::VARCHAR) FROM range(3000000) t(i)").fetchall()
        con.execute(f"SET memory_limit = '{limit}'")
        return real(con, *args, **kwargs)

    monkeypatch.setattr(store_module, "_check_batch", spilling)
    store = tmp_path / "new-store"
    summary = ingest(store=store, subjects=SAMPLES / "city" / "subjects.csv", records=_records_file(tmp_path, "S"),
                     ingested_at=INGESTED_AT)
    records = summary.files[-1]
    assert summary.status == "published" and records.read == records.accepted + records.quarantined == 40
    assert not [p for p in store.rglob("*") if p.name.startswith(".tmp")]
    assert len(build_profiles(store, as_of=AS_OF)) > 0
