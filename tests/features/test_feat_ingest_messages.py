"""What a credit office's clerk reads when a row or a file is refused: Chinese, naming the row, the field
in the clerk's words (not the contract's identifier) and the rule, and saying what is wrong with the value.

Each case is one an outside reviewer met with hand-made files (the field named ``uscc``, an inner space
reported as a wrong check character, ``0.3万元`` called "not a number", ``严重`` refused as a severity,
full-width ``ｓｅｒｉｏｕｓ`` refused, an empty file refused in English). Reading 严重 or ｓｅｒｉｏｕｓ as the
contract's value is not done here: the service's record schema must read them alike first (one rule).
"""

from __future__ import annotations

import re

import pandas as pd
import pytest
from feat_fixtures import INGESTED_AT, code, record, records_frame, subject, subjects_frame
from hypothesis import given
from hypothesis import strategies as st

from features.ingest import MalformedFileError, ingest
from features.schema import FIELD_LABELS_ZH, RECORD_COLUMNS, SUBJECT_COLUMNS
from uscc import why_invalid


def _ingest(tmp_path, rows):
    subjects_frame([subject(i) for i in range(1, 4)]).to_csv(tmp_path / "s.csv", index=False)
    records_frame(rows).to_csv(tmp_path / "r.csv", index=False)
    summary = ingest(store=tmp_path / "store", subjects=tmp_path / "s.csv", records=tmp_path / "r.csv",
                     ingested_at=INGESTED_AT)
    return summary, pd.read_csv(summary.quarantine_path, dtype=str, keep_default_na=False)


_IDENT = re.compile(r"(?<![A-Za-z0-9_])(" + "|".join(sorted(set(RECORD_COLUMNS) | set(SUBJECT_COLUMNS),
                                                              key=len, reverse=True)) + r")(?![A-Za-z0-9_])")


def _identifiers_outside_brackets(message: str) -> list[str]:
    """Contract identifiers a clerk would read: those not inside the （…）/(…) that quote them for support."""
    bare = re.sub(r"（[a-z_]+）|\([a-z_]+\)|规则 [a-z_]+", "", message)
    return _IDENT.findall(bare)


def test_every_field_of_the_contract_has_a_chinese_label():
    assert set(RECORD_COLUMNS) | set(SUBJECT_COLUMNS) <= set(FIELD_LABELS_ZH)
    assert all(re.search(r"[\u4e00-\u9fff]", label) for label in FIELD_LABELS_ZH.values())


def test_one_list_of_industry_sections_and_one_map_of_field_labels():
    """GB/T 4754 sections: named once (features.schema), and the simulator's codes are the same list
    (the two packages never import each other); the service reads both maps from features.schema."""
    import serving.i18n
    import serving.labels
    from features.schema import FIELD_LABELS, INDUSTRY_SECTION_NAMES, INDUSTRY_SECTIONS
    from simulation.city import INDUSTRY_SECTIONS as SIMULATED_SECTIONS

    assert SIMULATED_SECTIONS == INDUSTRY_SECTIONS == tuple(INDUSTRY_SECTION_NAMES)
    assert all(re.search(r"[\u4e00-\u9fff]", zh) and en.isascii() for zh, en in INDUSTRY_SECTION_NAMES.values())
    assert serving.labels.industry_name("C", "en") == "Manufacturing" and serving.labels.industry_name("C") == "制造业"
    assert not hasattr(serving.i18n, "FIELD_LABELS") and not hasattr(serving.labels, "INDUSTRY_SECTIONS_EN")
    assert all(FIELD_LABELS[name][0] == label for name, label in FIELD_LABELS_ZH.items())


def test_refused_rows_name_the_field_in_chinese_and_say_what_is_wrong(tmp_path):
    c = code(1)
    rows = [record("R1", "", "admin_penalty", "2025-01-01"),
            record("R2", c[:5] + " " + c[5:], "admin_penalty", "2025-01-01"),
            record("R3", c, "admin_penalty", "2025-01-01", amount="0.3万元"),
            record("R4", c, "admin_penalty", "2025-01-01", department=""),
            record("R5", c, "admin_penalty", "2025-13-01"),
            record("R6", c, "admin_penalty", "2025-01-01", amount="inf"),
            record("R7", c[:-1] + ("0" if c[-1] != "0" else "1"), "admin_penalty", "2025-01-01"),
            record("R8", c[:17], "admin_penalty", "2025-01-01")]
    _, q = _ingest(tmp_path, rows)
    by_key = dict(zip(q["key"], q["message"], strict=True))
    assert set(by_key) == {f"R{i}" for i in range(1, 9)}
    for key, message in by_key.items():
        assert _identifiers_outside_brackets(message) == [], (key, message)
        assert re.search(r"第 \d+ 行", message)
    assert "统一社会信用代码" in by_key["R1"] and "为空" in by_key["R1"]
    assert "空格" in by_key["R2"] and "校验" not in by_key["R2"]
    assert "万元" in by_key["R3"] and "元" in by_key["R3"] and "金额" in by_key["R3"]
    assert "部门" in by_key["R4"]
    assert "决定日期" in by_key["R5"]
    assert "金额" in by_key["R6"] and "有限" in by_key["R6"]
    assert "校验" in by_key["R7"]
    assert "17" in by_key["R8"] and "18" in by_key["R8"]


def test_an_unknown_severity_names_the_chinese_choices(tmp_path):
    _, q = _ingest(tmp_path, [record("R1", code(1), "admin_penalty", "2025-01-01", severity="很重")])
    assert "轻微" in q["message"].iloc[0] and "严重" in q["message"].iloc[0]


def test_a_file_with_a_header_and_no_rows_is_refused_in_chinese(tmp_path):
    (tmp_path / "r.csv").write_text(",".join(RECORD_COLUMNS) + "\n", encoding="utf-8")
    with pytest.raises(MalformedFileError, match="没有数据行"):
        ingest(store=tmp_path / "store", records=tmp_path / "r.csv", ingested_at=INGESTED_AT)


@given(st.text(alphabet="0123456789ABCDEFGHJKLMNPQRTUWXY abcIOZSV-", max_size=20))
def test_why_invalid_explains_every_invalid_code_and_nothing_valid(text):
    from uscc import is_valid_uscc
    reason = why_invalid(text)
    assert (reason is None) == is_valid_uscc(text)
    if reason is not None:
        assert re.search(r"[\u4e00-\u9fff]", reason[0]) and reason[1]
