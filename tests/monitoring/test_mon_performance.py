"""Performance with late labels: DeLong AUC, KS, calibration, hit rates, the provisional flag."""

from datetime import date

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from monitoring.performance import cohort_performance, delong_auc, label_maturity


def _cohort(n=3000, seed=0):
    rng = np.random.default_rng(seed)
    p = 1 / (1 + np.exp(-(rng.normal(size=n) * 1.2 - 2.5)))
    cohort = pd.DataFrame({"uscc": [f"S{i}" for i in range(n)], "p_adverse_12m": p, "score": 700 - 300 * p})
    cohort["grade"] = np.select([p < 0.05, p < 0.1, p < 0.25], ["A", "B", "C"], "D")
    adverse = rng.random(n) < p
    # outcomes spread over the 12 months after 2025-06-30
    days = rng.integers(1, 366, size=n)
    outcomes = pd.DataFrame(
        {"uscc": cohort["uscc"][adverse], "decision_date": pd.Timestamp("2025-06-30") + pd.to_timedelta(days[adverse], "D")}
    )
    return cohort, outcomes


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_delong_auc_equals_sklearn_and_interval_covers_it(seed):
    rng = np.random.default_rng(seed)
    y = rng.random(800) < 0.2
    risk = rng.normal(size=800) + y * 0.8
    risk[:100] = np.round(risk[:100])  # ties
    result = delong_auc(y, risk)
    assert result.auc == pytest.approx(roc_auc_score(y, risk))
    assert result.lower < result.auc < result.upper
    assert result.std_error > 0


def test_delong_interval_narrows_with_more_data():
    rng = np.random.default_rng(5)
    widths = []
    for n in (500, 5000):
        y = rng.random(n) < 0.2
        risk = rng.normal(size=n) + y
        r = delong_auc(y, risk)
        widths.append(r.upper - r.lower)
    assert widths[1] < widths[0] / 2


def test_labels_are_provisional_until_the_horizon_elapses():
    cohort, outcomes = _cohort()
    early = cohort_performance(cohort, outcomes, reference_as_of=date(2025, 6, 30), observed_until=date(2025, 12, 31))
    late = cohort_performance(cohort, outcomes, reference_as_of=date(2025, 6, 30), observed_until=date(2026, 6, 30))
    assert early.provisional and 0.45 < early.maturity < 0.55
    assert not late.provisional and late.maturity == 1.0
    assert early.n_adverse < late.n_adverse  # outcomes decided after observed_until are not known yet
    assert late.n_adverse == outcomes["uscc"].nunique()


def test_metrics_of_a_calibrated_cohort():
    cohort, outcomes = _cohort(seed=3)
    perf = cohort_performance(cohort, outcomes, reference_as_of=date(2025, 6, 30), observed_until=date(2026, 7, 31))
    assert perf.auc is not None and perf.auc.auc > 0.6
    assert 0 < perf.ks < 1
    # the truth-generating p is calibrated: its Brier beats the constant base-rate forecast
    base_rate = perf.n_adverse / perf.n
    assert perf.brier < base_rate * (1 - base_rate)
    assert sum(b.n for b in perf.reliability) == perf.n
    rates = [h.hit_rate for h in perf.hit_rate_by_grade]
    assert rates == sorted(rates)  # riskier grades are hit more often
    # score-based ranking (higher score = safer) gives the same AUC as p_adverse here
    by_score = cohort_performance(cohort.drop(columns="p_adverse_12m"), outcomes, reference_as_of=date(2025, 6, 30),
                                  observed_until=date(2026, 7, 31))
    assert by_score.auc.auc == pytest.approx(perf.auc.auc)
    assert by_score.brier is None and by_score.reliability == []


def test_no_auc_before_any_outcome():
    cohort, outcomes = _cohort()
    perf = cohort_performance(cohort, outcomes, reference_as_of=date(2025, 6, 30), observed_until=date(2025, 6, 30))
    assert perf.maturity == 0.0 and perf.n_adverse == 0 and perf.auc is None


def test_maturity_is_monotone_and_capped():
    days = [label_maturity(date(2025, 1, 31), d) for d in pd.date_range("2025-01-31", "2026-06-30", freq="ME").date]
    assert days == sorted(days) and days[0] == 0.0 and days[-1] == 1.0
