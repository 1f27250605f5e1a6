"""Calibration lowers the Brier score of a miscalibrated model; the reliability table is sound."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from mod_fixtures import make_credit_frame
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression

from models import CalibratedModel, brier_score, expected_calibration_error, reliability_table
from models.calibration import logistic_coefficients, platt_coefficients, wilson_interval


class Overconfident(ClassifierMixin, BaseEstimator):
    """A logistic model whose log-odds are inflated ×4 and shifted: ranks well, calibrates badly."""

    def __init__(self, *, scale: float = 4.0, shift: float = 1.0):
        self.scale = scale
        self.shift = shift

    def fit(self, X, y):
        self.lr_ = LogisticRegression(max_iter=1000).fit(X[["penalties_12m", "years_registered", "abnormal_listed"]], y)
        self.classes_ = np.array([0, 1])
        self.n_features_in_ = X.shape[1]
        return self

    def decision_function(self, X):
        z = self.lr_.decision_function(X[["penalties_12m", "years_registered", "abnormal_listed"]])
        return self.scale * z + self.shift


@pytest.mark.parametrize("method", ["isotonic", "sigmoid"])
def test_calibration_lowers_brier_and_ece_on_held_out_data(method):
    X, y = make_credit_frame(3000, 20)
    X_test, y_test = make_credit_frame(3000, 21)
    raw = Overconfident().fit(X, y)
    p_raw = 1 / (1 + np.exp(-raw.decision_function(X_test)))
    calibrated = CalibratedModel(estimator=Overconfident(), method=method, cv=3).fit(X, y)
    p_cal = calibrated.predict_proba(X_test)[:, 1]
    assert brier_score(y_test, p_cal) < brier_score(y_test, p_raw)
    assert expected_calibration_error(y_test, p_cal) < expected_calibration_error(y_test, p_raw)
    # a calibration map is non-decreasing: it never reorders subjects
    z = calibrated.decision_function(X_test)
    order = np.argsort(z)
    assert np.all(np.diff(p_cal[order]) >= -1e-12)


def test_a_passed_calibration_set_is_used_instead_of_cv():
    X, y = make_credit_frame(1500, 22)
    X_cal, y_cal = make_credit_frame(1500, 23)
    model = CalibratedModel(estimator=Overconfident(), method="sigmoid").fit(X, y, X_cal=X_cal, y_cal=y_cal)
    p = model.predict_proba(X_cal)[:, 1]
    assert abs(p.mean() - y_cal.mean()) < 0.01  # Platt fitted on that very set matches its base rate


def test_reliability_table_counts_and_intervals():
    rng = np.random.default_rng(3)
    p = rng.uniform(0, 1, 5000)
    y = (rng.random(5000) < p).astype(int)
    table = reliability_table(y, p, n_bins=10)
    assert table["count"].sum() == 5000
    assert list(table.columns) == ["bin_low", "bin_high", "count", "mean_predicted", "observed_rate", "ci_low", "ci_high"]
    assert (table["ci_low"] <= table["observed_rate"]).all() and (table["observed_rate"] <= table["ci_high"]).all()
    # a calibrated source: most 95 % intervals cover the mean prediction
    covered = (table["ci_low"] <= table["mean_predicted"]) & (table["mean_predicted"] <= table["ci_high"])
    assert covered.mean() >= 0.8
    assert expected_calibration_error(y, p) < expected_calibration_error(y, np.clip(p * 1.5, 0, 1))
    with pytest.raises(ValueError, match="strategy"):
        reliability_table(y, p, strategy="nope")


@given(st.integers(0, 200), st.integers(1, 200))
def test_wilson_interval_contains_the_rate_and_stays_in_unit_range(bads: int, n: int) -> None:
    bads = min(bads, n)
    low, high = wilson_interval(bads, n)
    assert 0.0 <= low <= bads / n <= high <= 1.0


def test_wilson_interval_narrows_with_more_subjects() -> None:
    small = wilson_interval(10, 100)
    large = wilson_interval(100, 1000)
    assert large[1] - large[0] < small[1] - small[0]


def test_wilson_interval_is_elementwise_and_nan_for_empty_groups() -> None:
    low, high = wilson_interval(np.array([0, 5, 0]), np.array([10, 10, 0]))
    assert low[0] == 0.0 and high[0] > 0.0
    assert low[1] < 0.5 < high[1]
    assert np.isnan(low[2]) and np.isnan(high[2])


def test_calibration_figures_reward_calibrated_probabilities() -> None:
    rng = np.random.default_rng(2)
    p = rng.uniform(0.01, 0.5, 5000)
    y = (rng.random(5000) < p).astype(int)
    assert expected_calibration_error(y, p) < expected_calibration_error(y, np.clip(p * 1.8, 0, 1))
    assert brier_score(y, p) < brier_score(y, np.clip(p * 1.8, 0, 1))


def test_a_constant_or_empty_prediction_still_gets_a_table_and_an_ece() -> None:
    y = np.array([0, 1, 0, 0, 1])
    table = reliability_table(y, np.full(5, 0.3))
    assert table["count"].tolist() == [5] and table["observed_rate"].item() == pytest.approx(0.4)
    assert expected_calibration_error(y, np.full(5, 0.3)) == pytest.approx(0.1)
    assert np.isnan(expected_calibration_error([], []))


def test_the_newton_logistic_fit_agrees_with_scikit_learn_and_platt_needs_a_positive_slope():
    rng = np.random.default_rng(3)
    F = rng.normal(size=(3000, 2)) * [1.0, 0.3]
    y = (rng.random(3000) < 1 / (1 + np.exp(-(F @ [1.2, 2.5] - 1)))).astype(int)
    lr = LogisticRegression(C=1e8, tol=1e-10, max_iter=5000).fit(F, y)
    assert np.allclose(logistic_coefficients(F, y), [*lr.coef_[0], lr.intercept_[0]], atol=1e-4)
    assert platt_coefficients(F[:, 0], y)[0] > 0
    with pytest.raises(ValueError, match="slope"):
        platt_coefficients(-F[:, 0], y)
