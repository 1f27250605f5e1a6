"""Every ingest path publishes its batch atomically (features.store): a number the current state
cannot hold is quarantined with its rule, and a failure while publishing leaves the store exactly
as it was, so the next ingest and ``tiers profile`` work (the outside test's wedged store)."""

from __future__ import annotations

import shutil
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest
from feat_fixtures import (
    INGESTED_AT,
    inject_store_failure,
    published_versions,
    record,
    records_frame,
    store_tree,
)
from typer.testing import CliRunner

import features.store as store_module
from features.ingest import ingest
from features.profiles import build_profiles
from features.schema import AMOUNT_MAX
from features.store import read_latest, staged_batches

# the module's published base store is ingested once on one worker, not on both
pytestmark = pytest.mark.xdist_group("feat_ingest_publish")

SAMPLES = Path(__file__).resolve().parents[2] / "data_samples"
AS_OF = date(2026, 6, 30)
NATIONAL_AMOUNT = "罚款金额（万元）"


def _city_codes(n: int) -> list[str]:
    return pd.read_csv(SAMPLES / "city" / "subjects.csv", dtype=str, nrows=n)["uscc"].tolist()


def _conserved(summary) -> None:
    for f in summary.files:
        assert f.read == f.accepted + f.quarantined, f.file


@pytest.fixture(scope="module")
def base_store(tmp_path_factory) -> Path:
    """The sample city's subjects and two penalties, published: the store every test starts from."""
    root = tmp_path_factory.mktemp("publish")
    first, second = _city_codes(2)
    records_frame([record("P1", first, "admin_penalty", "2026-02-01"),
                   record("P2", second, "admin_penalty", "2026-03-01")]).to_csv(root / "r1.csv", index=False)
    summary = ingest(store=root / "store", subjects=SAMPLES / "city" / "subjects.csv", records=root / "r1.csv",
                     ingested_at=INGESTED_AT)
    _conserved(summary)
    return root / "store"


def _contract_file(tmp_path: Path, amount: str | None = None) -> Path:
    rows = [record(f"N{i}", c, "admin_penalty", "2026-04-01") for i, c in enumerate(_city_codes(3))]
    if amount is not None:
        rows[1]["amount"] = amount
    path = tmp_path / "contract.csv"
    records_frame(rows).to_csv(path, index=False)
    return path


def _national_file(tmp_path: Path, amount: str | None = None) -> Path:
    path = tmp_path / "penalty_current.csv"
    shutil.copy(SAMPLES / "national" / "penalty_current.gb18030.csv", path)
    if amount is not None:
        frame = pd.read_csv(path, dtype=str, encoding="gb18030", keep_default_na=False)
        frame.loc[1, NATIONAL_AMOUNT] = amount
        frame.to_csv(path, index=False, encoding="gb18030")
    return path


def _excel_file(tmp_path: Path) -> Path:
    path = tmp_path / "penalty_current.xlsx"
    shutil.copy(SAMPLES / "national" / "penalty_current.excel.xlsx", path)
    return path


FAILURES = {"deriving the current state": "_finish_segment", "replacing the manifest": "os.replace"}
PATHS = {"contract csv": _contract_file, "national gb18030 csv": _national_file, "excel": _excel_file}


def test_the_largest_amount_the_schema_accepts_fits_the_current_state():
    """The schema's bound is what keeps CAST(ROUND(amount * 100) AS BIGINT) from overflowing."""
    assert AMOUNT_MAX * 100 < 2**63 - 1


@pytest.mark.parametrize("amount", ["inf", "-inf", "nan", "1e17", "92233720368547760"],
                         ids=["inf", "-inf", "nan", "1e17 (cents overflow BIGINT)", "2^63 / 100"])
@pytest.mark.parametrize("make", [_contract_file, _national_file], ids=["contract csv", "national csv"])
def test_an_amount_the_store_cannot_hold_is_quarantined_with_the_rule(store, tmp_path, make, amount):
    before = build_profiles(store, as_of=AS_OF)
    path = make(tmp_path, amount)
    summary = ingest(store=store, records=path, ingested_at=INGESTED_AT + timedelta(days=1))
    _conserved(summary)
    q = pd.read_csv(summary.quarantine_path, dtype=str)
    bad = q[q["field"] == "amount"]
    assert len(bad) == 1 and bad["rule"].iloc[0] in {"amount_out_of_range", "amount_negative"}, q
    assert bad["row"].iloc[0] == "2"
    after = build_profiles(store, as_of=AS_OF)
    assert len(after) == len(before) and summary.accepted > 0


def test_the_largest_amount_is_stored_and_profiled(store, tmp_path):
    summary = ingest(store=store, records=_contract_file(tmp_path, repr(AMOUNT_MAX)),
                     ingested_at=INGESTED_AT + timedelta(days=1))
    assert summary.quarantined == 0
    profiles = build_profiles(store, as_of=AS_OF).set_index("uscc")
    assert profiles.loc[_city_codes(2)[1], "n_penalty_36m"] == 2


@pytest.mark.parametrize("failure", list(FAILURES))
@pytest.mark.parametrize("path_kind", list(PATHS))
def test_a_failure_while_publishing_leaves_the_store_exactly_as_before(store, tmp_path, monkeypatch, path_kind,
                                                                       failure):
    from serving.cli.main import app

    before_tree, before_profiles = store_tree(store), build_profiles(store, as_of=AS_OF)
    before_records = len(read_latest(store, "records"))
    path = PATHS[path_kind](tmp_path)
    when = INGESTED_AT + timedelta(days=1)
    inject_store_failure(monkeypatch, FAILURES[failure])
    with pytest.raises(OSError, match="No space left"):
        ingest(store=store, records=path, ingested_at=when)
    monkeypatch.undo()

    assert store_tree(store) == before_tree  # exactly as before: no batch, segment, staged manifest or temporary left
    assert staged_batches(store) == [] and not any(p.name.startswith(".tmp") for p in store.iterdir())
    pd.testing.assert_frame_equal(build_profiles(store, as_of=AS_OF), before_profiles, check_exact=True)
    result = CliRunner().invoke(app, ["profile", "--store", str(store), "--as-of", AS_OF.isoformat(),
                                      "--out", str(tmp_path / "p.parquet"), "--json"])
    assert result.exit_code == 0, result.output
    # the next ingest of the same file goes in whole
    summary = ingest(store=store, records=path, ingested_at=when)
    _conserved(summary)
    assert summary.accepted > 0 and sum(f.new for f in summary.files) == summary.accepted
    assert len(read_latest(store, "records")) == before_records + summary.accepted
    build_profiles(store, as_of=AS_OF)


def test_a_store_error_is_reported_by_the_cli_and_changes_nothing(store, tmp_path, monkeypatch):
    from serving.cli.main import app

    before = store_tree(store)

    def refuse(*_args, **_kwargs):
        raise store_module.StoreError("注入的失败 / injected failure")

    monkeypatch.setattr(store_module, "_build_delta", refuse)
    result = CliRunner().invoke(app, ["ingest", "--records", str(_contract_file(tmp_path)), "--store", str(store),
                                      "--ingested-at", "2026-11-23", "--json"])
    assert result.exit_code == 2 and "injected failure" in result.output
    assert store_tree(store) == before


def test_a_record_repeated_in_two_files_of_one_batch_is_stored_once(store, tmp_path):
    """Two files of one batch carrying the same record: the second adds nothing; a changed copy is
    the next version (the store holds one row per key and version)."""
    one = _contract_file(tmp_path)
    (tmp_path / "b").mkdir()
    same = shutil.copy(one, tmp_path / "b" / "again.csv")
    summary = ingest(store=store, records=[one, same], ingested_at=INGESTED_AT + timedelta(days=1))
    assert [(f.new, f.unchanged) for f in summary.files] == [(3, 0), (0, 3)]
    code = _city_codes(1)[0]
    records_frame([record("M0", code, "admin_penalty", "2026-04-01")]).to_csv(tmp_path / "m.csv", index=False)
    records_frame([record("M0", code, "admin_penalty", "2026-04-01", document_no="更正-1")]).to_csv(
        tmp_path / "m_changed.csv", index=False)
    summary = ingest(store=store, records=[tmp_path / "m.csv", tmp_path / "m_changed.csv"],
                     ingested_at=INGESTED_AT + timedelta(days=2))
    assert [(f.new, f.new_versions) for f in summary.files] == [(1, 0), (0, 1)]
    versions = published_versions(store, "records")
    assert sorted(versions.loc[versions["record_id"] == "M0", "version"]) == [1, 2]
    latest = read_latest(store, "records").set_index("record_id")
    assert latest.loc["M0", "document_no"] == "更正-1"
