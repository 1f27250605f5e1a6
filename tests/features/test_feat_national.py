"""National 双公示 and list files: recognised by header in every format, amounts in yuan, severities
derived or quarantined with the rule, natural persons quarantined and never stored."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from feat_fixtures import INGESTED_AT, code, subject, subjects_frame
from typer.testing import CliRunner

from features.catalogue import default_policy
from features.ingest import MalformedFileError, ingest
from features.national import load_layouts, load_severity_rules, normalise_header, recognise
from features.schema import RECORD_COLUMNS
from features.store import read_latest
from simulation.national import FORMATS, HEADERS, LAYOUTS, national_table, write_table

N_SUBJECTS = 20
SUBJECTS = [(code(i), f"南京测试{i}有限公司") for i in range(1, N_SUBJECTS + 1)]
EXPECTED_LAYOUT = {"penalty_legacy_names": "penalty_legacy"}


@pytest.fixture(scope="module")
def subjects_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("national") / "subjects.csv"
    subjects_frame([subject(i) for i in range(1, N_SUBJECTS + 1)]).to_csv(path, index=False)
    return path


def _ingest(tmp_path, subjects_csv, layout: str, fmt: str, **kwargs):
    frame, truth = national_table(layout, SUBJECTS, seed=3)
    path = write_table(frame, tmp_path / f"{layout}", fmt)
    summary = ingest(store=tmp_path / "store", subjects=subjects_csv, records=path, ingested_at=INGESTED_AT, **kwargs)
    return path, summary, truth, frame


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("layout", LAYOUTS)
def test_each_layout_in_each_format_ingests_with_no_flag(tmp_path, subjects_csv, layout, fmt):
    path, summary, truth, frame = _ingest(tmp_path, subjects_csv, layout, fmt)
    f = summary.files[-1]
    assert f.layout == EXPECTED_LAYOUT.get(layout, layout)
    assert f.read == len(frame) == f.accepted + f.quarantined
    if fmt.startswith("csv"):
        assert f.encoding == {"csv-gb18030": "gb18030", "csv-utf8-bom": "utf-8-sig"}[fmt]
        assert f.encoding_detected_by
    assert {c["column"] for c in f.columns} == set(HEADERS[layout])
    # the quarantine is exactly the rows the truth says, under the truth's rule
    q = pd.read_csv(summary.quarantine_path, dtype={"row": "int64"})
    q = q[q["file"] == path.name]
    want = truth[truth["expected"] != "accepted"]
    assert sorted(zip(q["row"], q["rule"], strict=True)) == sorted(zip(want["row"], want["expected"], strict=True))
    # accepted rows: kind, severity derived, amount in yuan
    stored = read_latest(tmp_path / "store", "records").set_index("source_row").sort_index()
    ok = truth[truth["expected"] == "accepted"].set_index("row")
    assert list(stored.index) == list(ok.index)
    assert (stored["kind"] == ok["kind"]).all()
    if layout.startswith("penalty"):
        assert stored["severity"].tolist() == ok["severity"].tolist()
        has_amount = ok["amount_yuan"].notna()
        assert stored.loc[has_amount[has_amount].index, "amount"].tolist() == ok.loc[has_amount, "amount_yuan"].tolist()
    assert stored["record_id"].is_unique and stored["record_id"].str.len().le(40).all()
    assert stored["department"].notna().all()


@pytest.mark.parametrize("layout", ["penalty_current", "list_dishonest_debtor", "license_current"])
def test_a_natural_persons_data_are_stored_nowhere(tmp_path, subjects_csv, layout):
    _, summary, truth, frame = _ingest(tmp_path, subjects_csv, layout, "csv-utf8-bom")
    people = truth["expected"] == "natural_person"
    assert people.sum() == 2
    personal = frame.loc[people.to_numpy()].filter(regex="名称|姓名|证件号码|身份证").stack().astype(str).tolist()
    personal += [p[-8:] for p in personal if p[-1:].isdigit()]  # not even the tail of an ID number
    assert personal
    blob = b"".join(p.read_bytes() for p in (tmp_path / "store").rglob("*") if p.is_file())
    for value in personal:
        assert value.encode("utf-8") not in blob, value
    q = pd.read_csv(summary.quarantine_path)
    assert (q.loc[q["rule"] == "natural_person", ["key", "value"]].isna().all()).all()


def test_penalty_amounts_in_wan_become_yuan_and_severity_follows_department_thresholds(tmp_path, subjects_csv):
    _, _, _, frame = _ingest(tmp_path, subjects_csv, "penalty_current", "csv-gb18030")
    stored = read_latest(tmp_path / "store", "records").set_index("source_row")
    wan = pd.to_numeric(frame["罚款金额（万元）"], errors="coerce")
    for row, value in wan.items():
        if pd.notna(value) and row + 1 in stored.index:
            assert stored.loc[row + 1, "amount"] == pytest.approx(value * 10_000)
    # 15 万元 is serious by default but general at the ecology department (threshold 20 万元)
    eco = frame.index[(frame["处罚机关"] == "南京市生态环境局") & (wan == 15.0)]
    assert len(eco) and (stored.loc[eco + 1, "severity"] == "general").all()
    assert (stored.loc[eco + 1, "department"] == "ecology").all()


@pytest.mark.parametrize(("cell", "fine_yuan", "want"), [
    ("警告", None, "minor"), ("通报批评", None, "minor"), ("罚款", 2000.0, "minor"), ("罚款", 50_000.0, "general"),
    ("罚款", 100_000.0, "serious"), ("没收违法所得", None, None), ("暂扣许可证件", None, "general"),
    ("降低资质等级", None, "serious"), ("吊销许可证", None, "serious"), ("吊销营业执照", None, "serious"),
    ("限制开展生产经营活动", None, "serious"), ("责令停产停业", None, "serious"), ("责令关闭", None, "serious"),
    ("限制从业", None, "serious"), ("行政拘留", None, "serious"), ("警告；罚款", 500.0, "minor"),
    ("警告;罚款", 200_000.0, "serious"), ("警告、吊销许可证", None, "serious"), ("警告并处罚款", 1000.0, "minor"),
    ("责令改正，罚款", 5000.0, "general"), ("其他", None, None), ("罚款", None, None), ("", None, None),
])
def test_severity_rules_cover_article_9_as_written(cell, fine_yuan, want):
    header = HEADERS["penalty_current"]
    _, mapping = recognise(header, source=None, layouts_dir=None, policy=default_policy(),
                           contract_columns=RECORD_COLUMNS)
    row = {h: None for h in header}
    row.update({"行政相对人代码_1（统一社会信用代码）": code(1), "处罚类别": cell or None, "处罚机关": "南京市市场监督管理局",
                "罚款金额（万元）": None if fine_yuan is None else str(fine_yuan / 10_000)})
    out, verdict = mapping.to_records(pd.DataFrame([row], dtype=object))
    assert out.loc[0, "severity"] == want
    assert bool(verdict.rejected[0]) == (want is None)


def test_every_category_of_article_9_has_a_rule():
    labels = " ".join(c.label for c in load_severity_rules().categories.values())
    for category in ("警告", "通报批评", "罚款", "没收违法所得", "没收非法财物", "暂扣许可证件", "降低资质等级",
                     "吊销许可证件", "限制开展生产经营活动", "责令停产停业", "责令关闭", "限制从业", "行政拘留"):
        assert category in labels, category


@pytest.mark.parametrize("spelling", [
    "行政相对人代码_1(统一社会信用代码)", "行政相对人代码＿1（统一社会信用代码）", "行政相对人代码-1（统一社会信用代码）",
    "行政相对人代码_1：", " 行政相对人代码_1 ", "行政相对人代码_1【统一社会信用代码】"])
def test_header_spellings_are_normalised(spelling):
    header = [h.replace("（", "(").replace("）", ")") + ("：" if h == "处罚类别" else "") for h in HEADERS["penalty_current"]]
    header = [spelling if h.startswith("行政相对人代码_1") else h for h in header]
    layout, mapping = recognise(header, source=None, layouts_dir=None, policy=default_policy(),
                                contract_columns=RECORD_COLUMNS)
    assert layout.name == "penalty_current"
    assert mapping.targets["uscc"] == [spelling]
    assert normalise_header("罚款金额（万元）") == normalise_header("罚款金额(万元)") != normalise_header("罚款金额(元)")


def test_the_report_says_what_every_column_was_mapped_to(tmp_path, subjects_csv):
    _, summary, _, _ = _ingest(tmp_path, subjects_csv, "penalty_current", "xlsx")
    mapped = {c["column"]: c["mapped_to"] for c in summary.files[-1].columns}
    assert mapped["罚款金额（万元）"] == "fine_wan"
    assert mapped["行政相对人代码_1（统一社会信用代码）"] == "uscc"
    assert mapped["法定代表人证件号码"] == "ignored"
    assert all(v is not None for v in mapped.values())


def test_cli_reports_encoding_layout_and_mapping_and_source_forces(tmp_path, subjects_csv):
    from serving.cli.main import app

    frame, _ = national_table("tax_credit", SUBJECTS, seed=1)
    path = write_table(frame, tmp_path / "nsxy", "csv-gb18030")
    runner = CliRunner()
    result = runner.invoke(app, ["ingest", "--subjects", str(subjects_csv), "--records", str(path), "--store",
                                 str(tmp_path / "store"), "--ingested-at", "2026-11-22", "--json"])
    assert result.exit_code == 0, result.output
    f = json.loads(result.stdout)["files"][-1]
    assert (f["encoding"], f["layout"]) == ("gb18030", "tax_credit")
    assert {c["mapped_to"] for c in f["columns"]} >= {"uscc", "year", "level"}
    assert f["read"] == f["accepted"] + f["quarantined"] and f["by_rule"] == {"value_invalid": 1}
    result = runner.invoke(app, ["ingest", "--records", str(path), "--store", str(tmp_path / "store2"),
                                 "--source", "penalty_current", "--json"])
    assert result.exit_code == 2 and "penalty_current" in result.output


def test_a_city_adds_its_own_layout_without_code(tmp_path, subjects_csv):
    layouts = tmp_path / "layouts"
    layouts.mkdir()
    (layouts / "nanjing_penalty.toml").write_text('''
name = "nanjing_penalty"
title_zh = "南京市处罚导出"
title_en = "Nanjing penalty export"
family = "penalty"
kind = "admin_penalty"
record_id_prefix = "NJCF"
required = ["uscc", "document_no", "penalty_types", "decision_date", "authority"]
[columns]
uscc = ["社会信用代码"]
document_no = ["文书号"]
penalty_types = ["处罚种类"]
fine_yuan = ["罚没款(元)"]
decision_date = ["决定日期"]
authority = ["执法单位"]
''', encoding="utf-8")
    pd.DataFrame({"社会信用代码": [code(1), code(2)], "文书号": ["宁罚1", "宁罚2"], "处罚种类": ["罚款", "警告"],
                  "罚没款（元）": ["8000", None], "决定日期": ["2025-01-02", "2025-02-03"],
                  "执法单位": ["南京市市场监督管理局"] * 2}).to_csv(tmp_path / "export.csv", index=False)
    summary = ingest(store=tmp_path / "store", subjects=subjects_csv, records=tmp_path / "export.csv",
                     ingested_at=INGESTED_AT, layouts_dir=layouts)
    f = summary.files[-1]
    assert (f.layout, f.accepted) == ("nanjing_penalty", 2)
    stored = read_latest(tmp_path / "store", "records").sort_values("source_row")
    assert stored["severity"].tolist() == ["general", "minor"] and stored["amount"].iloc[0] == 8000.0
    (layouts / "broken.toml").write_text('name = "Bad Name"\nfamily = "penalty"\n', encoding="utf-8")
    with pytest.raises(MalformedFileError, match=r"broken\.toml"):
        ingest(store=tmp_path / "store", records=tmp_path / "export.csv", ingested_at=INGESTED_AT,
               layouts_dir=layouts)


def test_every_packaged_layout_is_valid_and_maps_to_a_catalogue_kind():
    layouts = load_layouts()
    assert set(layouts) >= {"penalty_current", "license_current", "penalty_legacy", "license_legacy",
                            "list_abnormal_operation", "list_serious_dishonesty", "list_dishonest_debtor", "tax_credit"}
    assert all(spec.kind in default_policy().kinds for spec in layouts.values())


def test_the_committed_samples_ingest_in_one_batch_as_their_truth_says(tmp_path):
    """data_samples/national/ (scripts/make_national_samples.py): every layout × format, with no flag."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "data_samples"
    files = sorted(p for p in (root / "national").iterdir() if ".truth." not in p.name)
    assert len(files) == len(LAYOUTS) * len(FORMATS)
    summary = ingest(store=tmp_path / "store", subjects=root / "city" / "subjects.csv", records=files,
                     ingested_at=INGESTED_AT)
    for f in summary.files[1:]:
        layout = f.file.split(".")[0]
        truth = pd.read_csv(root / "national" / f"{layout}.truth.csv")
        assert f.layout == EXPECTED_LAYOUT.get(layout, layout)
        assert (f.read, f.accepted) == (len(truth), int((truth["expected"] == "accepted").sum())), f.file
        assert f.by_rule == truth.loc[truth["expected"] != "accepted", "expected"].value_counts().to_dict()


def test_the_committed_csv_samples_are_what_the_generator_writes(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    subprocess.run([sys.executable, str(root / "scripts" / "make_national_samples.py"), "--out", str(tmp_path),
                    "--city", str(root / "data_samples" / "city")], check=True, capture_output=True, cwd=root)
    for made in tmp_path.glob("*.csv"):
        assert made.read_bytes() == (root / "data_samples" / "national" / made.name).read_bytes(), made.name
