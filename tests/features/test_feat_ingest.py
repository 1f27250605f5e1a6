"""Ingestion: counts conserve, the quarantine equals the simulator's dirt truth, versions, refusals."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime

import pandas as pd
import pytest
from feat_fixtures import INGESTED_AT, code, record, records_frame, subject, subjects_frame
from typer.testing import CliRunner

from features.ingest import MalformedFileError, ingest
from features.profiles import build_profiles, profile_hashes
from features.schema import CONTRACT_RULES, RECORD_COLUMNS
from features.specs import FEATURE_SPECS
from features.store import read_latest, scan_sql, snapshot


def _quarantine(summary) -> pd.DataFrame:
    return pd.read_csv(summary.quarantine_path, dtype={"row": "int64"})


def _batches(store):
    return sorted(p.name for p in (store / "batches").iterdir()) if (store / "batches").exists() else []


def test_simulated_city_quarantine_equals_dirt_truth(sim_city, tmp_path):
    summary = ingest(store=tmp_path / "store", subjects=sim_city / "subjects.csv",
                     records=sim_city / "records.csv", ingested_at=INGESTED_AT)
    for f in summary.files:
        assert f.read == f.accepted + f.quarantined
        assert f.accepted == f.new + f.new_versions + f.unchanged
    raw_rows = sum(len(pd.read_csv(sim_city / n, dtype=str, encoding_errors="replace"))
                   for n in ("subjects.csv", "records.csv"))
    assert summary.read == raw_rows
    quarantine = _quarantine(summary)
    dirt = pd.read_csv(sim_city / "truth" / "dirt.csv", dtype={"row": "int64"})
    assert set(dirt["rule"]) <= CONTRACT_RULES
    got = set(quarantine[["file", "row", "rule"]].itertuples(index=False, name=None))
    want = set(dirt[["file", "row", "rule"]].itertuples(index=False, name=None))
    assert got == want
    # the field blamed is the field the dirt was put in
    merged = quarantine.merge(dirt, on=["file", "row"], suffixes=("_q", "_d"))
    assert (merged["field_q"] == merged["field_d"]).all()
    assert len(quarantine) == len(quarantine.drop_duplicates(["file", "row"]))  # one rule per rejected row


def test_reingesting_the_same_files_adds_nothing(sim_city, tmp_path):
    store = tmp_path / "store"
    first = ingest(store=store, subjects=sim_city / "subjects.csv", records=sim_city / "records.csv",
                   ingested_at=INGESTED_AT)
    before = read_latest(store, "records")
    second = ingest(store=store, subjects=sim_city / "subjects.csv", records=sim_city / "records.csv",
                    ingested_at=datetime(2026, 11, 23, tzinfo=UTC))
    for f1, f2 in zip(first.files, second.files, strict=True):
        assert f2.new == 0 and f2.new_versions == 0
        assert f2.unchanged == f1.accepted
    after = read_latest(store, "records")
    assert len(after) == len(before)
    assert set(after["content_hash"]) == set(before["content_hash"])


def test_changed_record_becomes_a_new_version_and_profiles_use_it(tmp_path):
    subj = subjects_frame([subject(1), subject(2)])
    entry = record("R1", code(1), "list_abnormal_operation", "2025-01-10")
    subj.to_csv(tmp_path / "subjects.csv", index=False)
    records_frame([entry, record("R2", code(2), "admin_reward", "2025-02-01")]).to_csv(
        tmp_path / "records.csv", index=False)
    store = tmp_path / "store"
    ingest(store=store, subjects=tmp_path / "subjects.csv", records=tmp_path / "records.csv", ingested_at=INGESTED_AT)
    as_of = datetime(2026, 6, 30).date()
    before = build_profiles(store, as_of=as_of).set_index("uscc")
    assert before.loc[code(1), "on_list_abnormal_operation"] == 1
    first_generation = snapshot(store).generation
    assert snapshot(store).has_current
    # the department later records the list exit: same record_id, new content
    records_frame([{**entry, "end_date": "2026-03-01"}]).to_csv(tmp_path / "records_v2.csv", index=False)
    summary = ingest(store=store, records=tmp_path / "records_v2.csv", ingested_at=datetime(2026, 11, 23, tzinfo=UTC))
    assert (summary.files[0].new, summary.files[0].new_versions) == (0, 1)
    # the derived current state follows the batches: a new generation (a delta over the base)
    second_generation = snapshot(store).generation
    assert second_generation != first_generation and len(snapshot(store).segments) == 2
    records_frame([{**entry, "end_date": "2026-03-01", "document_no": "更正-1"}]).to_csv(
        tmp_path / "records_v3.csv", index=False)
    ingest(store=store, records=tmp_path / "records_v3.csv", ingested_at=datetime(2026, 11, 24, tzinfo=UTC))
    assert snapshot(store).generation != second_generation and snapshot(store).has_current
    import duckdb

    versions = duckdb.sql(f"SELECT record_id, version, end_date FROM {scan_sql(store, 'records')} "
                          "WHERE record_id = 'R1' ORDER BY version").df()
    assert versions["version"].tolist() == [1, 2, 3]  # history kept (v3: the corrected document number)
    assert pd.isna(versions["end_date"].iloc[0])
    latest = read_latest(store, "records").set_index("record_id")
    assert str(latest.loc["R1", "end_date"])[:10] == "2026-03-01"
    after = build_profiles(store, as_of=as_of).set_index("uscc")
    assert after.loc[code(1), "on_list_abnormal_operation"] == 0
    # an as-of before the exit still sees the membership (exit is dated, not retroactive)
    earlier = build_profiles(store, as_of=datetime(2026, 2, 1).date()).set_index("uscc")
    assert earlier.loc[code(1), "on_list_abnormal_operation"] == 1


def test_integer_codes_of_the_current_state_say_what_the_strings_say(sim_store):
    """The codes every build tests per record are a renaming of kind, subkind, severity and
    negative_class: one code per value, the same on every record of the simulated city."""
    import duckdb

    snap = snapshot(sim_store)
    assert snap.has_current
    con = duckdb.connect()
    rows = con.sql(
        f"SELECT negative_class, kind, subkind, severity, negative_class_code, list_code, severity_code, "
        f"context_class FROM read_parquet('{snap.segment_path(snap.segments[0], 'records')}')").df()
    con.close()
    classes = [None, "penalty", "enforcement", "commitment_broken", "inspection_problem", "complaint", "list",
               "arrears"]
    assert (rows["negative_class_code"].map(lambda c: classes[c]).fillna("none")
            == rows["negative_class"].fillna("none")).all()
    lists = ["", "list_serious_dishonesty", "list_key_attention", "list_abnormal_operation", "list_dishonest_debtor"]
    on_list = rows["kind"].isin(lists[1:])
    assert (rows.loc[on_list, "list_code"].map(lambda c: lists[c]) == rows.loc[on_list, "kind"]).all()
    assert (rows.loc[~on_list, "list_code"] == 0).all()
    severities = {"minor": 1, "general": 2, "serious": 3}
    assert (rows["severity"].map(severities).fillna(0).astype(int) == rows["severity_code"]).all()
    # 0: an action on a record (repair, revocation), not a record of the subject; 10: a signed commitment
    context = {"commitment_kept": 1, "inspection": 2, "admin_reward": 3, "self_declared": 4, "admin_check": 5,
               "repair": 0, "revocation": 0, "commitment_made": 10}
    arrears = {"tax": 6, "social_insurance": 7, "water": 8, "power": 8, "gas": 8}
    expected = [context[k] if k in context else (arrears.get(sk, 9) if k == "arrears" else 9)
                for k, sk in zip(rows["kind"], rows["subkind"], strict=True)]
    assert rows["context_class"].tolist() == expected
    assert rows["negative_class_code"].gt(0).any() and rows["context_class"].lt(9).any()
    assert rows["context_class"].eq(0).any() and rows["context_class"].eq(10).any()  # the city has both


def _good_files(tmp_path):
    subjects_frame([subject(1)]).to_csv(tmp_path / "subjects.csv", index=False)
    records_frame([record("R1", code(1), "admin_reward", "2025-02-01")]).to_csv(tmp_path / "records.csv", index=False)


@pytest.mark.parametrize("damage", ["missing_column", "unknown_column", "binary", "empty", "header_only", "suffix"])
def test_malformed_file_is_refused_whole_and_nothing_is_written(tmp_path, damage):
    _good_files(tmp_path)
    bad = tmp_path / "records.csv"
    if damage == "missing_column":
        pd.read_csv(bad).drop(columns=["kind"]).to_csv(bad, index=False)
    elif damage == "unknown_column":
        pd.read_csv(bad).assign(extra=1).to_csv(bad, index=False)
    elif damage == "binary":
        bad.write_bytes(bytes(range(256)) * 40)
    elif damage == "empty":
        bad.write_bytes(b"")
    elif damage == "header_only":
        bad.write_text(",".join(RECORD_COLUMNS) + "\n", encoding="utf-8")
    elif damage == "suffix":
        bad = bad.rename(tmp_path / "records.xlsx")
    store = tmp_path / "store"
    with pytest.raises(MalformedFileError, match=bad.name):
        ingest(store=store, subjects=tmp_path / "subjects.csv", records=bad, ingested_at=INGESTED_AT)
    # the valid subjects file of the same batch was not written either
    assert _batches(store) == []
    assert not any(p.name.startswith(".tmp") for p in store.iterdir()) if store.exists() else True


def test_letter_authority_codes_are_accepted_and_bad_check_chars_rejected(tmp_path):
    rows = [subject(i, uscc=code(i, first)) for i, first in enumerate("ANY9", start=1)]
    wrong = code(9, "N")
    rows.append(subject(9, uscc=wrong[:-1] + ("0" if wrong[-1] != "0" else "1")))
    subjects_frame(rows).to_csv(tmp_path / "subjects.csv", index=False)
    summary = ingest(store=tmp_path / "store", subjects=tmp_path / "subjects.csv", ingested_at=INGESTED_AT)
    assert summary.accepted == 4
    assert _quarantine(summary)["rule"].tolist() == ["uscc_invalid"]


def test_parquet_and_jsonl_are_validated_like_csv(tmp_path):
    subj = subjects_frame([subject(1)])
    recs = records_frame([
        record("R1", code(1), "admin_penalty", "2025-02-01"),
        record("R2", code(1), "admin_reward", "2025-02-01", description="损坏\ufffd文本"),
        record("R3", code(1), "admin_penalty", "2025-02-01", amount=-5.0),
        record("R1", code(1), "admin_reward", "2025-03-01"),
    ])
    subj.to_parquet(tmp_path / "subjects.parquet", index=False)
    recs.assign(amount=recs["amount"].astype(float)).to_parquet(tmp_path / "records.parquet", index=False)
    summary = ingest(store=tmp_path / "pq", subjects=tmp_path / "subjects.parquet",
                     records=tmp_path / "records.parquet", ingested_at=INGESTED_AT)
    q = _quarantine(summary)
    assert dict(zip(q["row"], q["rule"], strict=True)) == {2: "text_encoding", 3: "amount_negative",
                                                           4: "duplicate_record_id"}
    # JSON Lines with GBK bytes in one description
    lines = [json.dumps(r, ensure_ascii=False) for r in recs.iloc[[0, 1]].assign(
        description=["正常", "GBKMARK"]).to_dict("records")]
    payload = "\n".join(lines).encode("utf-8").replace(b"GBKMARK", "坏账".encode("gbk"))
    (tmp_path / "records.jsonl").write_bytes(payload + b"\n")
    subj.to_json(tmp_path / "subjects.jsonl", orient="records", lines=True, force_ascii=False)
    summary = ingest(store=tmp_path / "jl", subjects=tmp_path / "subjects.jsonl",
                     records=tmp_path / "records.jsonl", ingested_at=INGESTED_AT)
    q = _quarantine(summary)
    assert q[["row", "rule", "field"]].values.tolist() == [[2, "text_encoding", "description"]]
    assert summary.accepted == 2


def test_same_content_in_csv_and_parquet_hashes_alike(tmp_path):
    subj = subjects_frame([subject(1)])
    recs = records_frame([record("R1", code(1), "admin_penalty", "2025-02-01")])
    subj.to_csv(tmp_path / "s.csv", index=False)
    recs.to_csv(tmp_path / "r.csv", index=False)
    recs.assign(amount=recs["amount"].astype(float)).to_parquet(tmp_path / "r.parquet", index=False)
    store = tmp_path / "store"
    ingest(store=store, subjects=tmp_path / "s.csv", records=tmp_path / "r.csv", ingested_at=INGESTED_AT)
    again = ingest(store=store, records=tmp_path / "r.parquet", ingested_at=INGESTED_AT)
    assert again.files[0].unchanged == 1


def test_cli_ingest_json_and_refusal_exit_code(sim_city, tmp_path):
    from serving.cli.main import app

    runner = CliRunner()
    store = tmp_path / "store"
    result = runner.invoke(app, ["ingest", "--subjects", str(sim_city / "subjects.csv"), "--records",
                                 str(sim_city / "records.csv"), "--store", str(store), "--ingested-at",
                                 "2026-11-22", "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["read"] == payload["accepted"] + payload["quarantined"] > 0
    assert payload["quarantined"] == sum(sum(f["by_rule"].values()) for f in payload["files"])
    broken = tmp_path / "records.csv"
    shutil.copy(sim_city / "records.csv", broken)
    pd.read_csv(broken, dtype=str, encoding_errors="replace").drop(columns=["uscc"]).to_csv(broken, index=False)
    result = runner.invoke(app, ["ingest", "--records", str(broken), "--store", str(store), "--json"])
    assert result.exit_code == 2
    assert "records.csv" in result.output and "uscc" in result.output
    result = runner.invoke(app, ["ingest", "--records", str(broken), "--store", str(store),
                                 "--ingested-at", "yesterday"])
    assert result.exit_code == 2 and "--ingested-at" in result.output


def test_cli_profile_writes_profiles_and_refuses_bad_options(sim_store, tmp_path):
    from serving.cli.main import app

    runner = CliRunner()
    out = tmp_path / "profiles.parquet"
    result = runner.invoke(app, ["profile", "--store", str(sim_store), "--as-of", "2026-06-30", "--out", str(out),
                                 "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    written = pd.read_parquet(out)
    assert payload["subjects"] == len(written) > 0
    assert payload["features"] == len(FEATURE_SPECS) and "profile_hash" not in written.columns
    hashed_out = tmp_path / "hashed.csv"
    result = runner.invoke(app, ["profile", "--store", str(sim_store), "--as-of", "2026-06-30", "--out",
                                 str(hashed_out), "--with-hash", "--json"])
    assert result.exit_code == 0, result.output
    hashed = pd.read_csv(hashed_out, dtype={"uscc": str})
    assert json.loads(result.stdout)["features"] == len(FEATURE_SPECS)
    # read back from CSV, the profile hashes as it was built
    assert hashed["profile_hash"].is_unique and profile_hashes(written).tolist() == hashed["profile_hash"].tolist()
    for args, needle in ((["--as-of", "2026-02-30"], "--as-of"), (["--as-of", "2026-06-30", "--engine", "polars"],
                         "--engine"), (["--as-of", "2026-06-30", "--sector", "Z"], "sector")):
        result = runner.invoke(app, ["profile", "--store", str(sim_store), "--out", str(out), *args])
        assert result.exit_code == 2 and needle in result.output, result.output
    result = runner.invoke(app, ["profile", "--store", str(tmp_path / "nothing"), "--as-of", "2026-06-30",
                                 "--out", str(out)])
    assert result.exit_code == 2 and "--store" in result.output
