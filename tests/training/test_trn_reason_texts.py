"""Reason sentences of the real model features, as a subject reads them."""

from __future__ import annotations

import re

import numpy as np
import pytest

from features.specs import FEATURE_SPECS, specs_table
from models.explain import render_feature_reason
from training.pipeline import feature_metas_from_specs

METAS = {m.name: m for m in feature_metas_from_specs(specs_table())}
CJK = re.compile(r"[\u4e00-\u9fff]")


def _example_value(name: str) -> object:
    if name == "industry":
        return "C"
    if name.startswith("on_") or name == "thin_file":
        return 1
    return 2.0


@pytest.mark.parametrize("name", sorted(METAS))
@pytest.mark.parametrize("contribution", [0.4, -0.4])
def test_every_model_feature_has_a_plain_sentence_in_both_languages(name: str, contribution: float) -> None:
    zh, en = render_feature_reason(METAS[name], _example_value(name), contribution)
    for sentence in (zh, en):
        assert "{" not in sentence and "}" not in sentence  # every placeholder filled
        assert "_" not in name or name not in sentence  # no column names shown to a subject
        assert "decayed" not in sentence and "衰减" not in sentence  # weights are not a subject's words
    assert CJK.search(zh) and not CJK.search(en)
    raises = contribution > 0
    assert ("提高了信用风险" in zh) == raises and ("降低了信用风险" in zh) == (not raises)
    assert ("raises the credit risk" in en) == raises and ("lowers the credit risk" in en) == (not raises)


def test_counts_are_stated_and_flags_and_shares_are_worded() -> None:
    zh, en = render_feature_reason(METAS["n_penalty_36m"], 3.0, 0.5)
    assert "3次行政处罚" in zh and en.startswith("Administrative penalties") and ": 3;" in en
    zh, en = render_feature_reason(METAS["on_list_serious_dishonesty"], 0, -0.5)
    assert "：否" in zh and ": no;" in en
    zh, en = render_feature_reason(METAS["commitment_breach_rate"], 0.25, 0.5)
    assert "25%" in zh and "25%" in en


def test_a_missing_value_says_what_missing_means_instead_of_a_number() -> None:
    zh, en = render_feature_reason(METAS["commitment_breach_rate"], np.nan, 0.3)
    assert zh == "近36个月没有到期的信用承诺，提高了信用风险" and en.startswith("No commitment fell due")
    zh, en = render_feature_reason(METAS["days_since_last_negative"], None, -0.3)
    assert "没有计入评价的失信记录" in zh and "降低了信用风险" in zh
    zh, en = render_feature_reason(METAS["n_penalty_36m"], np.nan, 0.3)  # no missing sentence: generic
    assert "无数据" in zh and "no data" in en and en[0].isupper()


def test_amounts_are_grouped_and_shares_never_round_to_an_extreme() -> None:
    zh, _ = render_feature_reason(METAS["fines_36m"], 1250000.0, 0.2)
    assert "1,250,000元" in zh
    assert "<1%" in render_feature_reason(METAS["commitment_breach_rate"], 0.004, 0.2)[0]
    assert ">99%" in render_feature_reason(METAS["commitment_breach_rate"], 0.996, 0.2)[0]
    assert "100%" in render_feature_reason(METAS["commitment_breach_rate"], 1.0, 0.2)[0]


def test_report_only_columns_never_become_reasons() -> None:
    report_only = {s.name for s in FEATURE_SPECS if not s.model_input}
    assert report_only and not report_only & set(METAS)
