"""`tiers fit` on an analyst's own file: Chinese-first refusals, a target coded other than 0/1 named by
``--bad``, GBK/BOM/Excel/semicolon files read and said how, and warnings (Chinese, then English) for
what would otherwise be a silent wrong result: a column that leaks the target, amounts read as text."""

import json
import re
import warnings

import numpy as np
import pandas as pd
import pytest
from mod_fixtures import make_credit_frame
from test_mod_cli_fit import _invoke

CJK = re.compile("[\u4e00-\u9fff]")


@pytest.fixture(scope="module")
def frame():
    X, y = make_credit_frame(300, 50)
    return X.assign(bad=y)


def _fit(path, *extra, target="bad"):
    return _invoke(["fit", "--data", str(path), "--target", target, "--model", "scorecard", "--cv", "2",
                    "--json", *extra])


def _chinese_then_english(text: str, english: str) -> None:
    """A line with Chinese comes before the English line (Error: or Warning:) holding ``english``."""
    lines = text.splitlines()
    at = next(i for i, ln in enumerate(lines) if english in ln and ln.startswith(("Error:", "Warning:")))
    assert any(CJK.search(ln) for ln in lines[:at]), text


# -- 1. refusals in Chinese first --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("args", "english"),
    [
        (["--target", "nope"], "no such column"),
        (["--model", "forest"], "must be one of"),
        (["--cv", "1"], "must be ≥ 2"),
    ],
)
def test_a_refusal_says_it_in_chinese_then_in_english(frame, tmp_path, args, english):
    path = tmp_path / "t.csv"
    frame.to_csv(path, index=False)
    base = ["fit", "--data", str(path), "--target", "bad", "--model", "scorecard", "--cv", "2"]
    for k in range(0, len(args), 2):
        base[base.index(args[k]) + 1] = args[k + 1]
    result = _invoke(base)
    assert result.exit_code == 2
    assert result.stderr.splitlines()[0].startswith("错误：")
    _chinese_then_english(result.stderr, english)


def test_fail_without_chinese_prints_as_before(capsys):
    import typer

    from serving.cli.options import fail

    with pytest.raises(typer.Exit):
        fail("--x 1: must be 2")
    assert capsys.readouterr().err == "Error: --x 1: must be 2\n"
    with pytest.raises(typer.Exit):
        fail("--x 1: must be 2", zh="--x 1：必须是 2")
    assert capsys.readouterr().err == "错误：--x 1：必须是 2\nError: --x 1: must be 2\n"


# -- 2. a target coded other than 0/1: --bad names the adverse value -----------------------------------------
@pytest.mark.parametrize(("coding", "bad"), [({1: "yes", 0: "no"}, "yes"), ({1: "是", 0: "否"}, "是"),
                                             ({1: "bad", 0: "good"}, "bad"), ({1: 2, 0: 1}, "2"),
                                             ({1: 0, 0: 1}, "0")])
def test_bad_names_the_adverse_value_and_every_other_is_good(frame, tmp_path, coding, bad):
    path = tmp_path / "t.csv"
    frame.assign(bad=frame["bad"].map(coding)).to_csv(path, index=False)
    if bad != "0":  # a 0/1 target is read as 1 = bad unless --bad says otherwise
        refused = _fit(path)
        assert refused.exit_code == 2
        assert "--bad" in refused.stderr and "--bad" in refused.stderr.splitlines()[0]
        for value in coding.values():
            assert repr(str(value)) in refused.stderr  # the values found, every one
    result = _fit(path, "--bad", bad)
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["bad_rate"] == pytest.approx(frame["bad"].mean())
    assert out["bad_value"] == bad


def test_bad_value_not_in_the_target_is_refused_showing_the_values(frame, tmp_path):
    path = tmp_path / "t.csv"
    frame.assign(bad=frame["bad"].map({1: "yes", 0: "no"})).to_csv(path, index=False)
    result = _fit(path, "--bad", "Y")
    assert result.exit_code == 2
    assert "--bad" in result.stderr and "'Y'" in result.stderr and "'yes'" in result.stderr and "'no'" in result.stderr


def test_check_target_reads_bad_values_by_text_or_number():
    from serving.workflows.fit import _check_target

    frame = pd.DataFrame({"t": [1, 2, 2, 1, 2, 1]})
    assert _check_target(frame, "t", 2, bad="2.0").tolist() == [0, 1, 1, 0, 1, 0]
    frame = pd.DataFrame({"t": [" 是", "否", "是 ", "否"]})
    assert _check_target(frame, "t", 2, bad="是").tolist() == [1, 0, 1, 0]


# -- 3. encodings, Excel, delimiters -------------------------------------------------------------------------
def _chinese_frame(frame):
    return frame.rename(columns={"sector": "行业"}).assign(行业=frame["sector"].map(
        {"C": "制造业", "F": "批发和零售业", "G": "交通运输", "I": "信息技术", "K": "房地产业"}))


@pytest.mark.parametrize(("encoding", "reported"), [("gbk", "gb18030"), ("gb18030", "gb18030"),
                                                    ("utf-8-sig", "utf-8-sig"), ("utf-8", "utf-8")])
def test_a_gbk_or_bom_csv_is_read_and_the_encoding_said(frame, tmp_path, encoding, reported):
    path = tmp_path / "t.csv"
    _chinese_frame(frame).to_csv(path, index=False, encoding=encoding)
    result = _fit(path)
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["input"]["encoding"] == reported and out["input"]["format"] == "csv"
    table = _invoke(["fit", "--data", str(path), "--target", "bad", "--model", "scorecard", "--cv", "2"])
    assert table.exit_code == 0 and reported in table.stdout


def test_a_file_neither_utf8_nor_gb18030_is_refused_naming_the_rule(tmp_path):
    path = tmp_path / "t.csv"
    path.write_bytes(b"x,bad\n\xff\xfe\x80,1\n\x80\xff,0\n")
    result = _fit(path)
    assert result.exit_code == 2
    assert "UTF-8" in result.stderr and "GB18030" in result.stderr
    _chinese_then_english(result.stderr, "GB18030")


def test_an_xlsx_is_read_with_openpyxl(frame, tmp_path):
    path = tmp_path / "t.xlsx"
    _chinese_frame(frame).to_excel(path, index=False)
    result = _fit(path)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["input"]["format"] == "xlsx"
    assert json.loads(result.stdout)["warnings"] == []


def test_an_xlsx_of_several_sheets_says_which_was_read_and_garbage_is_refused(frame, tmp_path):
    path = tmp_path / "t.xlsx"
    with pd.ExcelWriter(path) as book:
        frame.to_excel(book, sheet_name="数据", index=False)
        frame.head(3).to_excel(book, sheet_name="说明", index=False)
    result = _fit(path)
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["input"]["sheet"] == "数据" and out["rows"] == len(frame)
    assert [(w["kind"], "说明" in w["en"]) for w in out["warnings"]] == [("other_sheets", True)]
    path.write_bytes(b"not a workbook")
    refused = _fit(path)
    assert refused.exit_code == 2 and "cannot be read as .xlsx" in refused.stderr


def test_an_xlsx_without_an_excel_reader_is_refused(frame, tmp_path, monkeypatch):
    import serving.workflows.fit as workflow

    path = tmp_path / "t.xlsx"
    frame.to_excel(path, index=False)
    monkeypatch.setattr(workflow, "_excel_reader_installed", lambda: False)
    result = _fit(path)
    assert result.exit_code == 2
    assert "Excel not supported: save as CSV" in result.stderr
    _chinese_then_english(result.stderr, "Excel not supported")


@pytest.mark.parametrize("sep", [";", "\t", "|"])
def test_a_semicolon_or_tab_file_is_split_on_its_delimiter(frame, tmp_path, sep):
    path = tmp_path / "t.csv"
    frame.to_csv(path, index=False, sep=sep)
    result = _fit(path)
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["input"]["delimiter"] == sep and out["rows"] == len(frame)


def test_a_header_read_as_one_column_says_what_it_holds():
    from serving.workflows import WorkflowError
    from serving.workflows.fit import _check_target

    with pytest.raises(WorkflowError) as caught:
        _check_target(pd.DataFrame({"x;bad": ["1;0", "2;1"]}), "bad", 2)
    assert "one column" in caught.value.message and "';'" in caught.value.message
    assert "';'" in caught.value.zh


# -- 4. warnings for silent wrong results ------------------------------------------------------------------
def _warnings(result):
    out = json.loads(result.stdout)
    return out["warnings"]


def test_a_clean_table_has_no_warning(frame, tmp_path):
    path = tmp_path / "t.csv"
    frame.to_csv(path, index=False)
    result = _fit(path)
    assert result.exit_code == 0 and _warnings(result) == []
    assert "Warning" not in result.stderr


@pytest.mark.parametrize("leak", ["copy", "id_sorted", "label_text"])
def test_a_column_that_leaks_the_target_is_named(frame, tmp_path, leak):
    order = np.argsort(frame["bad"].to_numpy(), kind="stable")
    ids = np.empty(len(frame), dtype=int)
    ids[order] = np.arange(len(frame)) + 1000  # numbered after sorting by the outcome
    columns = {"copy": frame["bad"], "id_sorted": ids, "label_text": frame["bad"].map({1: "违约", 0: "正常"})}
    path = tmp_path / "t.csv"
    frame.assign(**{leak: columns[leak]}).to_csv(path, index=False)
    result = _fit(path)
    assert result.exit_code == 0, result.output
    found = _warnings(result)
    assert [w["column"] for w in found] == [leak] and found[0]["kind"] == "leakage"
    assert CJK.search(found[0]["zh"]) and "leakage" in found[0]["en"]
    _chinese_then_english(result.stderr, "leakage")


def test_amounts_with_thousands_separators_are_named_as_read_as_text(frame, tmp_path):
    path = tmp_path / "t.csv"
    amounts = (frame["arrears_amount"].fillna(0) * 10).round().astype(int).map("{:,}".format)
    frame.assign(arrears_amount=amounts).to_csv(path, index=False)
    result = _fit(path)
    assert result.exit_code == 0, result.output
    found = _warnings(result)
    assert [(w["kind"], w["column"]) for w in found] == [("read_as_text", "arrears_amount")]
    assert "read as text" in found[0]["en"] and "文本" in found[0]["zh"]
    _chinese_then_english(result.stderr, "read as text")


# -- 5. the logistic without overflow warnings ------------------------------------------------------------------
def test_sigmoid_is_quiet_on_extreme_log_odds_and_unchanged_on_normal_ones():
    from models.base import sigmoid

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert sigmoid(np.array([-1e4, -800.0, 0.0, 800.0, 1e4])).tolist() == [0.0, 0.0, 0.5, 1.0, 1.0]
    z = np.random.default_rng(0).normal(0, 8, 100_000)
    assert np.array_equal(sigmoid(z), 1.0 / (1.0 + np.exp(-z)))  # bit for bit what it was


def test_cross_fitted_platt_is_quiet_on_extreme_log_odds():
    from models.calibration import cross_fitted_platt, cross_fitted_platt_brier

    z = np.array([-1000.0, -5, 0, 5, 1000] * 4)
    y = np.array([0, 0, 1, 1, 1] * 4)
    folds = [(np.arange(10), np.arange(10, 20)), (np.arange(10, 20), np.arange(10))]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        p = cross_fitted_platt(z, y, folds)
        cross_fitted_platt_brier(z, y, folds)
    assert np.isfinite(p).all() and ((p >= 0) & (p <= 1)).all()
    normal = np.random.default_rng(1).normal(0, 3, 200)
    ny = (np.random.default_rng(2).random(200) < 1 / (1 + np.exp(-normal))).astype(int)
    nf = [(np.arange(100), np.arange(100, 200)), (np.arange(100, 200), np.arange(100))]
    from models.calibration import platt_coefficients

    expected = np.empty(200)
    for tr, te in nf:
        a, b = platt_coefficients(normal[tr], ny[tr])
        expected[te] = 1.0 / (1.0 + np.exp(-(a * normal[te] + b)))
    assert np.array_equal(cross_fitted_platt(normal, ny, nf), expected)  # bit for bit what it was
