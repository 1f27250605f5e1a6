"""Hand-made nasty files (issue 15's outside review): hidden and extra sheets, title rows above the
header, GB18030 whose only non-ASCII line is the header, UTF-8 with a few GB18030 rows. Every file is
built here, small, in tmp_path."""

from __future__ import annotations

import openpyxl
import pandas as pd
import pytest
from feat_fixtures import INGESTED_AT, code, subject, subjects_frame

from features.ingest import MalformedFileError, ingest
from features.reading import detect_encoding
from features.store import read_latest
from simulation.national import national_table

SUBJECTS = [(code(i), f"南京测试{i}有限公司") for i in range(1, 9)]


@pytest.fixture
def subjects_csv(tmp_path):
    path = tmp_path / "subjects.csv"
    subjects_frame([subject(i) for i in range(1, 9)]).to_csv(path, index=False)
    return path


def _penalties() -> tuple[pd.DataFrame, pd.DataFrame]:
    frame, truth = national_table("penalty_current", SUBJECTS, seed=3)
    return frame.astype(object).where(frame.notna(), None), truth


def _put(ws, frame: pd.DataFrame, above: list[list[str]] = ()) -> None:
    for row in above:
        ws.append(row)
    ws.append(list(frame.columns))
    for values in frame.itertuples(index=False, name=None):
        ws.append(list(values))


def test_a_hidden_first_sheet_is_skipped_and_the_visible_data_sheet_read(tmp_path, subjects_csv):
    frame, _ = _penalties()
    book = openpyxl.Workbook()
    old = book.active
    old.title = "旧数据(勿用)"
    _put(old, frame.head(2))
    old.sheet_state = "hidden"
    _put(book.create_sheet("处罚数据"), frame)
    path = tmp_path / "hidden.xlsx"
    book.save(path)
    summary = ingest(store=tmp_path / "store", subjects=subjects_csv, records=path, ingested_at=INGESTED_AT)
    f = summary.files[-1]
    assert f.read == len(frame) == f.accepted + f.quarantined
    assert f.sheet == "处罚数据"
    sheets = {s["sheet"]: s["status"] for s in f.sheets}
    assert sheets == {"旧数据(勿用)": "hidden_skipped", "处罚数据": "read"}


def test_an_instruction_sheet_before_the_data_is_named_in_the_report(tmp_path, subjects_csv):
    frame, _ = _penalties()
    book = openpyxl.Workbook()
    notes = book.active
    notes.title = "填报说明"
    notes.append(["说明：罚款金额单位为万元，日期格式yyyy-mm-dd"])
    _put(book.create_sheet("数据"), frame)
    path = tmp_path / "notes.xlsx"
    book.save(path)
    summary = ingest(store=tmp_path / "store", subjects=subjects_csv, records=path, ingested_at=INGESTED_AT)
    f = summary.files[-1]
    assert f.read == len(frame)
    assert {s["sheet"]: s["status"] for s in f.sheets} == {"填报说明": "no_matching_header", "数据": "read"}


def test_title_and_unit_rows_above_the_header_are_skipped_and_counted(tmp_path, subjects_csv):
    frame, _ = _penalties()
    book = openpyxl.Workbook()
    above = [["南京市市场监督管理局2025年第一季度行政处罚信息公示表"], ["填报单位：市场监管局", None, "制表人：张三"],
             ["行政相对人信息", None, None, "处罚信息"]]
    _put(book.active, frame, above)
    path = tmp_path / "title.xlsx"
    book.save(path)
    summary = ingest(store=tmp_path / "store", subjects=subjects_csv, records=path, ingested_at=INGESTED_AT)
    f = summary.files[-1]
    assert f.read == len(frame) == f.accepted + f.quarantined
    assert f.skipped_lines == 3
    assert f.header_line == 4


def test_title_rows_above_a_csv_header_are_skipped_and_counted(tmp_path, subjects_csv):
    frame, _ = _penalties()
    path = tmp_path / "title.csv"
    with path.open("w", encoding="gb18030", newline="") as fh:
        fh.write("2025年行政处罚双公示数据\n填报单位：市场监管局,制表人：张三\n")
        frame.to_csv(fh, index=False)
    summary = ingest(store=tmp_path / "store", subjects=subjects_csv, records=path, ingested_at=INGESTED_AT)
    f = summary.files[-1]
    assert f.read == len(frame)
    assert (f.skipped_lines, f.header_line) == (2, 3)


def test_a_totals_row_is_quarantined_under_its_own_rule(tmp_path, subjects_csv):
    frame, _ = _penalties()
    book = openpyxl.Workbook()
    _put(book.active, frame)
    book.active.append(["合计", None, None, None, None, None, None, None, None, None, None, None, None,
                        f"共{len(frame)}条"])
    path = tmp_path / "totals.xlsx"
    book.save(path)
    summary = ingest(store=tmp_path / "store", subjects=subjects_csv, records=path, ingested_at=INGESTED_AT)
    f = summary.files[-1]
    assert f.read == len(frame) + 1
    assert f.by_rule.get("totals_row") == 1


def test_a_workbook_with_no_sheet_matching_names_every_sheet(tmp_path, subjects_csv):
    book = openpyxl.Workbook()
    book.active.title = "销售"
    book.active.append(["日期", "金额"])
    book.active.append(["2025-01-01", "3"])
    path = tmp_path / "sales.xlsx"
    book.save(path)
    with pytest.raises(MalformedFileError) as err:
        ingest(store=tmp_path / "store", subjects=subjects_csv, records=path, ingested_at=INGESTED_AT)
    assert "销售" in str(err.value)


# --------------------------------------------------------------------------------------------
# encodings
# --------------------------------------------------------------------------------------------
def test_gb18030_whose_only_non_ascii_line_is_the_header_is_gb18030(tmp_path, subjects_csv):
    frame, _ = _penalties()
    ascii_rows = frame.copy()
    for col in ascii_rows.columns:  # every data cell ASCII: only the header carries Chinese
        ascii_rows[col] = ascii_rows[col].map(lambda v: v if v is None or str(v).isascii() else "x")
    path = tmp_path / "gb.csv"
    ascii_rows.to_csv(path, index=False, encoding="gb18030")
    assert detect_encoding(path)[0] == "gb18030"
    summary = ingest(store=tmp_path / "store", subjects=subjects_csv, records=path, ingested_at=INGESTED_AT)
    assert summary.files[-1].read == len(frame)


def test_a_gb18030_header_only_file_is_refused_in_readable_chinese(tmp_path, subjects_csv):
    frame, _ = _penalties()
    path = tmp_path / "header_only.csv"
    frame.head(0).to_csv(path, index=False, encoding="gb18030")
    with pytest.raises(MalformedFileError) as err:
        ingest(store=tmp_path / "store", subjects=subjects_csv, records=path, ingested_at=INGESTED_AT)
    assert not any("\udc80" <= ch <= "\udcff" for ch in str(err.value))


def test_a_utf8_file_with_a_few_gb18030_rows_quarantines_those_rows(tmp_path, subjects_csv):
    frame, _ = _penalties()
    path = tmp_path / "mixed.csv"
    text = frame.to_csv(index=False)
    lines = text.splitlines(keepends=True)
    bad = {2, 3}  # two data rows written in GB18030, the rest (header included) in UTF-8
    with path.open("wb") as fh:
        for i, line in enumerate(lines):
            fh.write(line.encode("gb18030" if i in bad else "utf-8"))
    assert detect_encoding(path)[0] == "utf-8"
    summary = ingest(store=tmp_path / "store", subjects=subjects_csv, records=path, ingested_at=INGESTED_AT)
    f = summary.files[-1]
    assert f.read == len(frame) == f.accepted + f.quarantined
    assert f.by_rule.get("text_encoding", 0) >= len(bad) - 1  # a row of pure ASCII survives either way
    stored = read_latest(tmp_path / "store", "records")
    assert len(stored) == f.accepted


def test_utf16_with_a_bom_is_read(tmp_path, subjects_csv):
    frame, _ = _penalties()
    path = tmp_path / "utf16.csv"
    frame.to_csv(path, index=False, sep="\t", encoding="utf-16")
    summary = ingest(store=tmp_path / "store", subjects=subjects_csv, records=path, ingested_at=INGESTED_AT)
    f = summary.files[-1]
    assert f.encoding == "utf-16" and f.read == len(frame) == f.accepted + f.quarantined


# --------------------------------------------------------------------------------------------
# rows the mapping must not misread
# --------------------------------------------------------------------------------------------
def _one_accepted(layout: str) -> tuple[pd.DataFrame, int]:
    frame, truth = national_table(layout, SUBJECTS, seed=3)
    frame = frame.astype(object).where(frame.notna(), None)
    row = int(truth.loc[truth["expected"] == "accepted", "row"].iloc[0])  # 1-based data row
    return frame, row - 1


def test_several_fines_in_one_cell_are_summed(tmp_path, subjects_csv):
    frame, i = _one_accepted("penalty_current")
    frame.loc[i, ["处罚类别", "处罚内容", "罚款金额（万元）"]] = ["罚款", "罚款2000元，罚款3000元", None]
    frame.loc[i, "没收违法所得、没收非法财物的金额（万元）"] = None
    path = tmp_path / "fines.csv"
    frame.to_csv(path, index=False, encoding="gb18030")
    ingest(store=tmp_path / "store", subjects=subjects_csv, records=path, ingested_at=INGESTED_AT)
    stored = read_latest(tmp_path / "store", "records").set_index("source_row")
    assert stored.loc[i + 1, "amount"] == 5000


def test_a_list_exit_before_its_entry_is_quarantined_as_date_order(tmp_path, subjects_csv):
    frame, i = _one_accepted("list_abnormal_operation")
    frame.loc[i, ["列入日期", "移出日期", "移出原因"]] = ["2025-02-01", "2024-12-01", "已补报年度报告"]
    path = tmp_path / "list.csv"
    frame.to_csv(path, index=False, encoding="gb18030")
    summary = ingest(store=tmp_path / "store", subjects=subjects_csv, records=path, ingested_at=INGESTED_AT)
    q = pd.read_csv(summary.quarantine_path)
    assert list(q.loc[q["row"] == i + 1, "rule"]) == ["date_order"]


@pytest.mark.parametrize(("category", "id_type"), [("法人及非法人组织", None), (None, "营业执照")])
def test_a_15_digit_business_registration_number_is_not_a_natural_person(tmp_path, subjects_csv, category, id_type):
    frame, i = _one_accepted("penalty_current")
    frame.loc[i, ["行政相对人类别", "行政相对人代码_1（统一社会信用代码）", "证件类型", "证件号码"]] = [
        category, "320102600012345", id_type, None]
    path = tmp_path / "regno.csv"
    frame.to_csv(path, index=False, encoding="gb18030")
    summary = ingest(store=tmp_path / "store", subjects=subjects_csv, records=path, ingested_at=INGESTED_AT)
    q = pd.read_csv(summary.quarantine_path, dtype=str)
    got = q.loc[q["row"] == str(i + 1)]
    assert list(got["rule"]) == ["uscc_legacy_registration_number"]
    assert "320102600012345" in got["message"].iloc[0]  # traceable: the clerk can find the row


def test_a_used_column_repeated_in_the_header_refuses_the_file_naming_it(tmp_path, subjects_csv):
    frame, _ = _penalties()
    frame["处罚决定日期 "] = "2025-05-30"  # the same header again (a trailing space), other values
    path = tmp_path / "dup.csv"
    frame.to_csv(path, index=False, encoding="gb18030")
    with pytest.raises(MalformedFileError, match="处罚决定日期"):
        ingest(store=tmp_path / "store", subjects=subjects_csv, records=path, ingested_at=INGESTED_AT)


def test_a_repeated_ignored_column_is_no_reason_to_refuse(tmp_path, subjects_csv):
    frame, _ = _penalties()
    text = frame.to_csv(index=False).splitlines()
    path = tmp_path / "two_notes.csv"
    path.write_text("\n".join([text[0] + ",备注"] + [t + ",x" for t in text[1:]]) + "\n", encoding="utf-8")
    summary = ingest(store=tmp_path / "store", subjects=subjects_csv, records=path, ingested_at=INGESTED_AT)
    assert summary.files[-1].read == len(frame)


def test_a_missing_column_is_named_as_the_clerk_writes_it_in_chinese(tmp_path, subjects_csv):
    frame, _ = _penalties()
    path = tmp_path / "no_date.csv"
    frame.drop(columns=["处罚决定日期"]).to_csv(path, index=False, encoding="gb18030")
    with pytest.raises(MalformedFileError) as err:
        ingest(store=tmp_path / "store", subjects=subjects_csv, records=path, ingested_at=INGESTED_AT)
    assert "缺少列：处罚决定日期" in str(err.value)
    assert "decision_date" not in str(err.value).split("数据契约")[0]


def test_the_no_amount_note_appears_only_where_an_amount_is_missing(tmp_path, subjects_csv):
    frame, i = _one_accepted("penalty_current")
    frame.loc[i, ["处罚类别", "处罚内容"]] = ["warning", "warning"]
    path = tmp_path / "warning.csv"
    frame.to_csv(path, index=False, encoding="gb18030")
    summary = ingest(store=tmp_path / "store", subjects=subjects_csv, records=path, ingested_at=INGESTED_AT)
    q = pd.read_csv(summary.quarantine_path)
    message = q.loc[q["row"] == i + 1, "message"].iloc[0]
    assert "warning" in message and "未给出金额" not in message


def test_a_lower_case_or_full_width_uscc_is_read_alike_in_subjects_and_records(tmp_path):
    subjects = subjects_frame([subject(i) for i in range(1, 9)])
    subjects.loc[0, "uscc"] = subjects.loc[0, "uscc"].lower()
    subjects.loc[1, "uscc"] = subjects.loc[1, "uscc"].translate({ord(c): ord(c) + 0xFEE0 for c in "0123456789ABCDEFGHJKLMNPQRTUWXY"})
    path = tmp_path / "subjects.csv"
    subjects.to_csv(path, index=False)
    summary = ingest(store=tmp_path / "store", subjects=path, ingested_at=INGESTED_AT)
    assert summary.files[0].quarantined == 0
    stored = set(read_latest(tmp_path / "store", "subjects")["uscc"])
    assert {code(1), code(2)} <= stored


@pytest.mark.parametrize("written", ["-0", "-0.0", "－0"])
def test_a_fine_written_minus_zero_is_zero(written):
    from features.national import _amounts

    assert _amounts(pd.Series([written]), 10_000.0).tolist() == ["0"]
