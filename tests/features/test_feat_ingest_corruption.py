"""The corruptions the outside test found: each is quarantined on its own, nothing is lost, nothing wedged.

Every test here failed on the code before the fix (the inf fine wedged the store, an unbalanced quote
swallowed three rows, an extra field refused the file, ingest accepted rows the service refuses).
"""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest
from feat_fixtures import INGESTED_AT, code, record, records_frame, subject, subjects_frame

from features.ingest import ingest
from features.profiles import build_profiles
from features.schema import RECORD_COLUMNS


def _quarantine(summary) -> pd.DataFrame:
    return pd.read_csv(summary.quarantine_path, dtype={"row": "int64", "line": "int64", "value": str})


def _subjects(tmp_path, n: int = 3):
    path = tmp_path / "subjects.csv"
    subjects_frame([subject(i) for i in range(1, n + 1)]).to_csv(path, index=False)
    return path


def _seven_records() -> pd.DataFrame:
    return records_frame([record(f"R{i}", code(1 + i % 3), "admin_penalty", f"2025-0{1 + i % 9}-1{i % 9}")
                          for i in range(1, 8)])


def _write_lines(path, lines: list[str]) -> None:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _csv_lines(frame: pd.DataFrame) -> list[str]:
    return frame.to_csv(index=False, lineterminator="\n").rstrip("\n").split("\n")


def _ingest_lines(tmp_path, lines: list[str]):
    """(the records file's summary, the quarantine) after ingesting ``lines`` with three subjects."""
    _write_lines(tmp_path / "records.csv", lines)
    summary = ingest(store=tmp_path / "store", subjects=_subjects(tmp_path), records=tmp_path / "records.csv",
                     ingested_at=INGESTED_AT)
    return summary.files[-1], _quarantine(summary)


@pytest.mark.parametrize("amount", ["inf", "-inf", "nan", "1e300", "Infinity"])
def test_a_non_finite_or_absurd_fine_is_quarantined_and_the_store_keeps_working(tmp_path, amount):
    store = tmp_path / "store"
    recs = _seven_records()
    recs.loc[2, "amount"] = amount
    recs.to_csv(tmp_path / "records.csv", index=False)
    summary = ingest(store=store, subjects=_subjects(tmp_path), records=tmp_path / "records.csv",
                     ingested_at=INGESTED_AT)
    q = _quarantine(summary)
    assert q[["row", "field"]].values.tolist() == [[3, "amount"]]
    assert q["rule"].iloc[0] in {"amount_out_of_range", "amount_negative"}
    assert summary.files[-1].accepted == 6
    # not wedged: the store profiles, and the next batch goes in
    assert len(build_profiles(store, as_of=date(2026, 6, 30))) == 3
    records_frame([record("R9", code(1), "admin_reward", "2025-05-01")]).to_csv(tmp_path / "more.csv", index=False)
    again = ingest(store=store, records=tmp_path / "more.csv", ingested_at=INGESTED_AT)
    assert again.accepted == 1
    assert len(build_profiles(store, as_of=date(2026, 6, 30))) == 3


def test_an_unbalanced_quote_swallows_no_following_row(tmp_path):
    lines = _csv_lines(_seven_records())
    # row 3's description opens a quote that never closes (the field starts with it)
    lines[3] = lines[3].rsplit(",", 1)[0] + ',"开头引号未闭合，后面的行不能被吞掉'
    rec, q = _ingest_lines(tmp_path, lines)
    assert (rec.read, rec.accepted, rec.quarantined) == (7, 6, 1)
    assert q[["row", "line", "rule"]].values.tolist() == [[3, 4, "row_malformed"]]
    assert "第 4 行" in q["message"].iloc[0] and "line 4" in q["message_en"].iloc[0]


@pytest.mark.parametrize("change", ["extra", "missing"])
def test_a_row_with_the_wrong_field_count_is_quarantined_alone(tmp_path, change):
    lines = _csv_lines(_seven_records())
    lines[5] = lines[5] + ",多出来的字段" if change == "extra" else lines[5].rsplit(",", 2)[0]
    rec, q = _ingest_lines(tmp_path, lines)
    assert (rec.read, rec.accepted, rec.quarantined) == (7, 6, 1)
    assert q[["row", "line", "rule"]].values.tolist() == [[5, 6, "field_count"]]
    assert str(len(RECORD_COLUMNS)) in q["message_en"].iloc[0]


def test_a_legitimate_multi_line_quoted_field_is_one_row(tmp_path):
    recs = _seven_records()
    recs.loc[1, "description"] = '第一行\n第二行，带逗号\n"引号"内容'
    recs.to_csv(tmp_path / "records.csv", index=False)
    summary = ingest(store=tmp_path / "store", subjects=_subjects(tmp_path), records=tmp_path / "records.csv",
                     ingested_at=INGESTED_AT)
    rec = summary.files[-1]
    assert (rec.read, rec.accepted, rec.quarantined) == (7, 7, 0)
    from features.store import read_latest

    stored = read_latest(tmp_path / "store", "records").set_index("record_id")
    assert stored.loc["R2", "description"] == '第一行\n第二行，带逗号\n"引号"内容'


def test_a_quote_that_never_closes_near_the_end_of_a_long_file_loses_nothing(tmp_path):
    recs = records_frame([record(f"R{i}", code(1 + i % 3), "admin_reward", "2025-03-01") for i in range(1, 301)])
    lines = _csv_lines(recs)
    lines[100] = lines[100].rsplit(",", 1)[0] + ',"从这里开始引号没有闭合'
    lines[250] = lines[250].rsplit(",", 1)[0] + ',"又一个'
    rec, q = _ingest_lines(tmp_path, lines)
    assert (rec.read, rec.accepted, rec.quarantined) == (300, 298, 2)
    assert q["line"].tolist() == [101, 251]


@pytest.mark.parametrize(("field", "value", "rule"), [
    ("record_id", "R" * 300, "text_too_long"),
    ("description", "描" * 5000, "text_too_long"),
    ("document_no", "号" * 100_000, "text_too_long"),
    ("department", None, "field_missing"),
    ("description", "含控制字符\x07的描述", "control_character"),
    ("record_id", "R\x00X", "control_character"),
], ids=["record_id_300", "description_5000", "document_no_100k", "department_empty", "description_bell", "record_id_nul"])
def test_rows_the_service_schema_refuses_are_quarantined_by_ingest(tmp_path, field, value, rule):
    recs = _seven_records()
    recs.loc[3, field] = value
    recs.to_csv(tmp_path / "records.csv", index=False)
    summary = ingest(store=tmp_path / "store", subjects=_subjects(tmp_path), records=tmp_path / "records.csv",
                     ingested_at=INGESTED_AT)
    q = _quarantine(summary)
    assert q[["row", "field", "rule"]].values.tolist() == [[4, field, rule]]
    assert summary.files[-1].accepted == 6
    # the quarantine file stays readable: the long value is cut, the control character shown escaped
    assert len(q["value"].fillna("").iloc[0]) <= 300
    assert not any(ord(c) < 32 for c in q["value"].fillna("").iloc[0])


def test_every_stored_record_loads_into_the_service_schema(sim_store):
    from features.store import read_latest
    from serving.schemas import RecordIn

    stored = read_latest(sim_store, "records")
    fields = list(RecordIn.model_fields)
    rows = stored[fields].astype(object).where(stored[fields].notna(), None).to_dict("records")
    for row in rows[:3000]:
        RecordIn.model_validate(row)


def test_a_subject_row_with_control_characters_or_a_huge_name_is_quarantined(tmp_path):
    rows = [subject(1), subject(2, name="名" * 201), subject(3, name="公司\x1b[31m"), subject(4, employees="1e300")]
    subjects_frame(rows).to_csv(tmp_path / "subjects.csv", index=False)
    summary = ingest(store=tmp_path / "store", subjects=tmp_path / "subjects.csv", ingested_at=INGESTED_AT)
    q = _quarantine(summary)
    assert q[["row", "field", "rule"]].values.tolist() == [
        [2, "name", "text_too_long"], [3, "name", "control_character"], [4, "employees", "amount_out_of_range"]]
    assert RECORD_COLUMNS  # the contract columns are unchanged


def test_chunk_size_changes_nothing(sim_city, tmp_path):
    """Streaming is invisible: the same quarantine (duplicates across chunks included) and the same stored
    rows whether the file is read in one chunk or in many."""
    from features.store import read_latest

    out = {}
    for chunk_rows in (1_000_000, 4_999):
        store = tmp_path / f"store-{chunk_rows}"
        summary = ingest(store=store, subjects=sim_city / "subjects.csv", records=sim_city / "records.csv",
                         ingested_at=INGESTED_AT, chunk_rows=chunk_rows)
        q = _quarantine(summary).sort_values(["file", "row"]).reset_index(drop=True)
        stored = read_latest(store, "records")[["record_id", "content_hash", "source_row"]]
        out[chunk_rows] = (q, stored.sort_values("record_id").reset_index(drop=True))
    pd.testing.assert_frame_equal(out[1_000_000][0], out[4_999][0])
    pd.testing.assert_frame_equal(out[1_000_000][1], out[4_999][1])
    assert (out[4_999][0]["rule"] == "duplicate_record_id").any()


def test_a_refused_batch_leaves_the_store_as_it_was_and_profiling(tmp_path):
    store = tmp_path / "store"
    _seven_records().to_csv(tmp_path / "records.csv", index=False)
    ingest(store=store, subjects=_subjects(tmp_path), records=tmp_path / "records.csv", ingested_at=INGESTED_AT)
    before = sorted(p.name for p in (store / "batches").iterdir())
    (tmp_path / "garbage.csv").write_text("列一,列二\n1,2\n", encoding="utf-8")
    from features.ingest import MalformedFileError

    with pytest.raises(MalformedFileError, match=r"garbage\.csv"):
        ingest(store=store, records=[tmp_path / "records.csv", tmp_path / "garbage.csv"], ingested_at=INGESTED_AT)
    assert sorted(p.name for p in (store / "batches").iterdir()) == before
    assert not [p for p in store.iterdir() if p.name.startswith(".tmp")]
    assert len(build_profiles(store, as_of=date(2026, 6, 30))) == 3


def test_personal_fields_are_never_shown_in_the_quarantine(tmp_path):
    rows = [subject(1, legal_rep_id="32010219800101123X" * 2), subject(2, legal_rep_name="张\x07三")]
    subjects_frame(rows).to_csv(tmp_path / "subjects.csv", index=False)
    summary = ingest(store=tmp_path / "store", subjects=tmp_path / "subjects.csv", ingested_at=INGESTED_AT)
    q = _quarantine(summary)
    assert q["field"].tolist() == ["legal_rep_id", "legal_rep_name"] and q["value"].isna().all()
    assert "32010219800101123X" not in (tmp_path / "store").joinpath(
        "batches", summary.batch_id, "quarantine.csv").read_text(encoding="utf-8")
