"""The truth: p_adverse_12m is calibrated, adverse_12m is what the records say, past records predict."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm
from sim_helpers import read
from sklearn.metrics import roc_auc_score

# the session's 5,000-subject city (shared with test_sim_records.py) is generated once on one worker, not on both
pytestmark = pytest.mark.xdist_group("sim_large_city")

ADVERSE_KINDS = ("list_serious_dishonesty", "list_abnormal_operation")
# complaints and utility arrears are left out: they are the section-H driver and noise elsewhere
NEGATIVE_KINDS = ("admin_penalty", "commitment_broken", "admin_enforcement", "list_key_attention",
                  "list_dishonest_debtor")


def _adverse(records: pd.DataFrame) -> pd.DataFrame:
    r = records
    mask = (
        ((r.kind == "inspection") & r.subkind.isin(["corrected", "case_opened"]))
        | ((r.kind == "admin_penalty") & (r.severity == "serious"))
        | r.kind.isin(ADVERSE_KINDS)
    )
    return r.loc[mask, ["uscc", "decision_date"]]


@pytest.fixture(scope="module")
def truth(large_clean_city) -> pd.DataFrame:
    t = pd.read_parquet(large_clean_city / "truth" / "true_risk.parquet")
    t["as_of"] = pd.to_datetime(t["as_of"])
    return t


@pytest.fixture(scope="module")
def records(large_clean_city) -> pd.DataFrame:
    r = read(large_clean_city, "records")
    r["decision_date"] = pd.to_datetime(r["decision_date"])
    return r


def test_truth_has_the_contract_columns_and_quarter_ends(truth):
    assert list(truth.columns) == ["uscc", "as_of", "p_adverse_12m", "p_problem_if_inspected", "adverse_12m"]
    assert truth.as_of.dt.is_quarter_end.all()
    assert truth.p_adverse_12m.between(0, 1).all() and truth.p_problem_if_inspected.between(0, 1).all()
    assert not truth.duplicated(["uscc", "as_of"]).any()
    # the label is known exactly when the whole 12-month window lies inside the span
    observed = truth.as_of + pd.DateOffset(months=12) <= pd.Timestamp("2026-10-31")
    assert (truth.adverse_12m.notna() == observed).all()


def test_adverse_label_recomputed_from_records(truth, records):
    adverse = _adverse(records)
    labelled = truth[truth.adverse_12m.notna()]
    joined = labelled[["uscc", "as_of"]].merge(adverse, on="uscc")
    window = (joined.decision_date > joined.as_of) & (joined.decision_date <= joined.as_of + pd.DateOffset(months=12))
    hits = joined[window].groupby(["uscc", "as_of"]).size()
    recomputed = labelled.set_index(["uscc", "as_of"]).index.isin(hits.index).astype(int)
    assert (recomputed == labelled.adverse_12m.to_numpy()).all()


def test_p_adverse_is_calibrated_by_decile(truth):
    # disjoint windows; each p conditions only on the state at its own as-of date (labels of one subject in
    # different years are then only weakly dependent, through the slow drift)
    as_ofs = pd.to_datetime(["2021-12-31", "2022-12-31", "2023-12-31", "2024-12-31"])
    t = truth[truth.as_of.isin(as_ofs)]
    deciles = pd.qcut(t.p_adverse_12m, 10, labels=False)
    tol = norm.ppf(1 - 0.001 / 20)  # two-sided, Bonferroni over 10 deciles at family level 0.1 %
    for _, g in t.groupby(deciles):
        sd = np.sqrt((g.p_adverse_12m * (1 - g.p_adverse_12m)).sum()) / len(g)
        assert abs(g.adverse_12m.mean() - g.p_adverse_12m.mean()) <= tol * sd + 1e-9
    # Brier decomposition: the truth is sharper than the base rate
    brier = np.mean((t.p_adverse_12m - t.adverse_12m) ** 2)
    base = t.adverse_12m.mean()
    assert brier < base * (1 - base)


def test_oracle_auc_and_adverse_rate_in_the_intended_range(truth, large_clean_city):
    t = truth[truth.adverse_12m.notna()]
    auc = roc_auc_score(t.adverse_12m, t.p_adverse_12m)
    assert 0.72 < auc < 0.88
    assert 0.07 < t.adverse_12m.mean() < 0.16
    manifest = json.loads((large_clean_city / "manifest.json").read_text())
    assert manifest["truth"]["oracle_auc"] == pytest.approx(auc, abs=1e-5)


def _past_counts(truth: pd.DataFrame, records: pd.DataFrame, mask: pd.Series, months: int = 24) -> np.ndarray:
    joined = truth[["uscc", "as_of"]].merge(records.loc[mask, ["uscc", "decision_date"]], on="uscc")
    window = (joined.decision_date <= joined.as_of) & (joined.decision_date > joined.as_of - pd.DateOffset(months=months))
    counts = joined[window].groupby(["uscc", "as_of"]).size()
    return counts.reindex(pd.MultiIndex.from_frame(truth[["uscc", "as_of"]]), fill_value=0).to_numpy()


def test_past_negative_records_predict_adverse_outcomes(truth, records):
    t = truth[truth.as_of == pd.Timestamp("2024-06-30")].reset_index(drop=True)
    negative = records.kind.isin(NEGATIVE_KINDS) | (
        (records.kind == "arrears") & records.subkind.isin(["tax", "social_insurance"])
    )
    past_bad = _past_counts(t, records, negative | records.index.isin(_adverse(records).index))
    assert roc_auc_score(t.adverse_12m, past_bad) > 0.6
    past_good = _past_counts(t, records, records.kind == "admin_reward")
    assert roc_auc_score(t.adverse_12m, past_good) < 0.5


def test_complaints_and_utility_arrears_drive_risk_only_in_section_h(truth, records, large_clean_city):
    subjects = read(large_clean_city, "subjects").set_index("uscc")
    t = truth[truth.as_of.isin(pd.to_datetime(["2023-12-31", "2024-06-30", "2024-12-31"]))].reset_index(drop=True)
    hygiene = (records.kind == "complaint") | ((records.kind == "arrears") & records.subkind.isin(["water", "power", "gas"]))
    counts = _past_counts(t, records, hygiene)
    in_h = t.uscc.map(subjects.industry).eq("H").to_numpy()
    auc_h = roc_auc_score(t.adverse_12m[in_h], counts[in_h])
    auc_other = roc_auc_score(t.adverse_12m[~in_h], counts[~in_h])
    assert auc_h > auc_other + 0.08


def test_p_problem_if_inspected_separates_inspection_results(truth, records):
    insp = records[records.kind == "inspection"].copy()
    insp["as_of"] = insp.decision_date - pd.offsets.QuarterEnd(1)
    joined = insp.merge(truth[["uscc", "as_of", "p_problem_if_inspected"]], on=["uscc", "as_of"])
    found = joined.subkind != "no_problem"
    assert roc_auc_score(found, joined.p_problem_if_inspected) > 0.65
    assert abs(found.mean() - joined.p_problem_if_inspected.mean()) < 0.08
