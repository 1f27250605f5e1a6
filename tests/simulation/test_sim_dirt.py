"""Dirt: truth/dirt.csv lists exactly the rows that break a contract rule, each breaking exactly one.

The rule checks below are written independently of the generator, from docs/data-contract.md.
"""

from __future__ import annotations

from datetime import date

import pandas as pd
import pyarrow.parquet as pq
from sim_helpers import RECORD_KINDS, read, uscc_is_valid

from simulation import SimulationConfig, generate

DOC_REQUIRED = {
    "admin_penalty", "admin_enforcement", "admin_adjudication", "list_serious_dishonesty", "list_key_attention",
    "list_abnormal_operation", "list_dishonest_debtor", "commitment_broken", "repair", "revocation",
}
INGESTION_DATE = date(2026, 11, 22)
DATE_COLUMNS = ("decision_date", "end_date", "publicity_end", "verified_on")


def _parse(value: str | None) -> date | str | None:
    if value in (None, ""):
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return "invalid"


def _record_rules(row: dict, text_ok: bool, known: set[str], seen: set[str]) -> set[str]:
    broken = set()
    if not text_ok:
        broken.add("text_encoding")
    if not uscc_is_valid(row["uscc"]):
        broken.add("uscc_invalid")
    elif row["uscc"] not in known:
        broken.add("unknown_subject")
    if row["kind"] not in RECORD_KINDS:
        broken.add("kind_unknown")
    dates = {c: _parse(row[c]) for c in DATE_COLUMNS}
    if "invalid" in dates.values():
        broken.add("date_invalid")
    decision = dates["decision_date"]
    if isinstance(decision, date):
        if decision > INGESTION_DATE:
            broken.add("date_in_future")
        if isinstance(dates["publicity_end"], date) and dates["publicity_end"] < decision:
            broken.add("date_order")
    if row["kind"] == "admin_penalty" and row["severity"] not in ("minor", "general", "serious"):
        broken.add("severity_invalid")
    if row["amount"] not in (None, "") and float(row["amount"]) < 0:
        broken.add("amount_negative")
    if row["kind"] in DOC_REQUIRED and row["document_no"] in (None, ""):
        broken.add("legal_basis_missing")
    if row["record_id"] in seen:
        broken.add("duplicate_record_id")
    seen.add(row["record_id"])
    return broken


def _subject_rules(row: dict) -> set[str]:
    broken = set()
    if not uscc_is_valid(row["uscc"]):
        broken.add("uscc_invalid")
    if _parse(row["registered_on"]) == "invalid":
        broken.add("date_invalid")
    return broken


def _found_dirt(subjects: list[dict], records: list[tuple[dict, bool]], ext: str) -> set[tuple[str, int, str]]:
    found = set()
    known = set()
    for i, row in enumerate(subjects, start=1):
        rules = _subject_rules(row)
        assert len(rules) <= 1, (i, rules)
        found |= {(f"subjects.{ext}", i, r) for r in rules}
        if not rules:
            known.add(row["uscc"])
    seen: set[str] = set()
    for i, (row, text_ok) in enumerate(records, start=1):
        rules = _record_rules(row, text_ok, known, seen)
        assert len(rules) <= 1, (i, row, rules)
        found |= {(f"records.{ext}", i, r) for r in rules}
    return found


def _csv_rows(path) -> list[tuple[dict, bool]]:
    """Rows of a contract CSV read as raw bytes, with whether the row is valid UTF-8."""
    lines = path.read_bytes().split(b"\n")
    header = lines[0].decode().split(",")
    rows = []
    for line in lines[1:]:
        if not line:
            continue
        try:
            text, ok = line.decode("utf-8"), True
        except UnicodeDecodeError:
            text, ok = line.decode("utf-8", errors="replace"), False
        rows.append((dict(zip(header, text.split(","), strict=True)), ok))
    return rows


def _listed(city, ext: str) -> set[tuple[str, int, str]]:
    dirt = pd.read_csv(city / "truth" / "dirt.csv", dtype={"row": int})
    assert set(dirt.file) <= {f"subjects.{ext}", f"records.{ext}"}
    assert not dirt.duplicated(["file", "row"]).any(), "a dirty row breaks exactly one rule"
    return set(zip(dirt.file, dirt.row, dirt.rule, strict=True))


def test_dirt_file_matches_an_independent_check_csv(dirty_csv_city):
    subjects = [row for row, _ in _csv_rows(dirty_csv_city / "subjects.csv")]
    records = _csv_rows(dirty_csv_city / "records.csv")
    listed = _listed(dirty_csv_city, "csv")
    assert _found_dirt(subjects, records, "csv") == listed
    rules = {r for _, _, r in listed}
    assert rules == {
        "uscc_invalid", "date_invalid", "date_in_future", "date_order", "kind_unknown", "severity_invalid",
        "duplicate_record_id", "amount_negative", "legal_basis_missing", "text_encoding", "unknown_subject",
    }
    share = sum(f == "records.csv" for f, _, _ in listed) / len(records)
    assert 0.005 < share < 0.03


def test_dirt_file_matches_an_independent_check_parquet(tmp_path):
    generate(SimulationConfig(n_subjects=600, seed=21, file_format="parquet"), tmp_path)
    subjects = pq.read_table(tmp_path / "subjects.parquet").to_pylist()
    records = [(r, "\ufffd" not in (r["description"] or "")) for r in pq.read_table(tmp_path / "records.parquet").to_pylist()]
    for r, _ in records:  # the checker reads strings like the CSV path does
        r["amount"] = None if r["amount"] is None else str(r["amount"])
    assert _found_dirt(subjects, records, "parquet") == _listed(tmp_path, "parquet")


def test_dirt_adds_rows_and_leaves_the_clean_city_and_truth_unchanged(dirty_csv_city, clean_csv_city):
    assert (dirty_csv_city / "truth" / "true_risk.parquet").read_bytes() == (
        clean_csv_city / "truth" / "true_risk.parquet"
    ).read_bytes()
    dirt = pd.read_csv(dirty_csv_city / "truth" / "dirt.csv")
    compare = ["uscc", "kind", "subkind", "severity", "decision_date", "end_date", "publicity_end", "amount",
               "department", "document_no", "description"]
    dirty = read(dirty_csv_city, "records")
    dirty_rows = set(dirt.loc[dirt.file == "records.csv", "row"] - 1)
    kept = dirty.loc[~dirty.index.isin(dirty_rows), compare].reset_index(drop=True)
    clean = read(clean_csv_city, "records")[compare]
    pd.testing.assert_frame_equal(kept, clean)
    subjects_dirty = read(dirty_csv_city, "subjects")
    subject_rows = set(dirt.loc[dirt.file == "subjects.csv", "row"] - 1)
    pd.testing.assert_frame_equal(
        subjects_dirty.loc[~subjects_dirty.index.isin(subject_rows)].reset_index(drop=True),
        read(clean_csv_city, "subjects"),
    )
