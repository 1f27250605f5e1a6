"""Explanations: exact contributions for every family, reason codes in Chinese with their records."""

import re

import numpy as np
import pytest
from mod_fixtures import METAS, fitted_models, make_credit_frame

from models import Evidence, Grader, OverrideRule, explain_bulk, reason_codes, top_k

CJK = re.compile(r"[\u4e00-\u9fff]")


@pytest.mark.parametrize("family", ["scorecard", "gbm", "gbm_deep", "blend", "calibrated", "gam"])
def test_contributions_plus_base_value_equal_the_model_output(family):
    model = fitted_models()[family]
    X, _ = make_credit_frame(300, 30)
    c = model.contributions(X)
    assert c.values.shape == (300, X.shape[1])
    assert np.allclose(c.total(), model.decision_function(X), atol=1e-9)


def test_scorecard_points_deviation_is_the_contribution_in_points():
    model = fitted_models()["scorecard"]
    X, _ = make_credit_frame(100, 31)
    best = model.contributions(X, reference="best")
    assert (best.values >= -1e-12).all()  # nobody beats the best bin
    assert np.allclose(best.total(), model.decision_function(X))
    lost = model.points_deviation(X, reference="best")
    # points lost against the best bins add up to the gap between the best possible score and the score
    best_score = sum(max(model.points_[n]) for n in model.bins_)
    assert np.allclose(lost.sum(axis=1), best_score - model.score_points(X))


def test_top_k_matches_a_full_sort():
    values = np.random.default_rng(0).normal(size=(500, 12))
    idx, vals = top_k(values, 5)
    for i in range(500):
        expected = [j for j in np.argsort(-values[i], kind="stable")[:5] if values[i, j] > 0]
        assert [j for j in idx[i] if j >= 0] == expected
        assert np.all(np.diff(vals[i]) <= 0)


@pytest.mark.parametrize("family", ["blend", "gam"])
def test_every_reason_code_has_chinese_text_and_names_its_records(family):
    model = fitted_models()[family]
    X, _ = make_credit_frame(200, 32)
    rule = OverrideRule("abnormal", "abnormal_listed", "truthy", min_grade="C",
                        reason_zh="列入经营异常名录，至少为C级", reason_en="on the abnormal-operation list: at least C")
    grader = Grader(overrides=[rule]).fit(model.predict_proba(X)[:, 1])
    bulk = explain_bulk(model, grader, X, k=5)
    contributions = model.contributions(X)
    penalty = Evidence("R000000000001", "admin_penalty", "2026-03-02", "市场监管局", "宁市监罚〔2026〕12号")
    listing = {"record_id": "R000000000002", "kind": "list_abnormal_operation", "decision_date": "2026-01-05",
               "department": "samr", "document_no": "宁市监异〔2026〕3号"}
    seen_override = False
    for i in range(len(X)):
        reasons = bulk.reasons(i, X.iloc[i].to_dict(), metas=METAS,
                               evidence={"penalties_12m": [penalty], "abnormal_listed": [listing]})
        if contributions.total()[i] > contributions.base_value:  # riskier than the reference subject
            assert reasons, "a subject riskier than the reference always gets a reason"
        for r in reasons:
            assert CJK.search(r.text_zh), r
            assert r.text_en
            if r.kind == "pair":  # a pair's reason names the records of both its features
                a, b = r.code.split("*")
                assert {e.record_id for e in r.evidence} == (
                    {"R000000000001"} if "penalties_12m" in (a, b) else set()) | (
                    {"R000000000002"} if "abnormal_listed" in (a, b) else set())
        if X.iloc[i]["abnormal_listed"]:
            assert reasons[0].kind == "override" and reasons[0].code == "abnormal"
            assert reasons[0].evidence[0].document_no == "宁市监异〔2026〕3号"
            seen_override = True
        features = [r for r in reasons if r.kind == "feature"]
        assert all(r.contribution > 0 for r in features)  # risk-raising only, largest first
        assert [r.contribution for r in features] == sorted((r.contribution for r in features), reverse=True)
        for r in features:
            if r.code == "penalties_12m":
                assert r.text_zh.startswith(f"近12个月有{int(r.value)}条")
                assert "宁市监罚〔2026〕12号" in r.evidence_zh()[0]
    assert seen_override


def test_bulk_grades_equal_model_plus_grader():
    model = fitted_models()["calibrated"]
    X, _ = make_credit_frame(300, 33)
    grader = Grader().fit(model.predict_proba(X)[:, 1])
    bulk = explain_bulk(model, grader, X)
    assert (bulk.grades.grades == grader.predict(model.predict_proba(X)[:, 1], X)).all()


def test_reason_for_a_single_subject_without_metas_still_has_chinese_text():
    reasons = reason_codes(np.array([0.5, -0.2, 0.1]), ["a", "b", "c"], {"a": 3.0, "b": None, "c": 1.5}, k=2)
    assert [r.code for r in reasons] == ["a", "c"]
    assert all(CJK.search(r.text_zh) for r in reasons)
