"""`training.selection`: the nested choice and the calibration decided on inner folds only."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from models.calibration import brier_score
from training.selection import AutoSelect, choose


class _Scaled:
    """Logistic regression whose log-odds are multiplied by ``k`` (k > 1: over-confident)."""

    def __init__(self, k: float) -> None:
        self.k = k

    def fit(self, X, y):
        self.lr_ = LogisticRegression().fit(X, y)
        return self

    def predict_proba(self, X):
        p = 1 / (1 + np.exp(-self.k * self.lr_.decision_function(X)))
        return np.column_stack([1 - p, p])


def _table(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n), "noise": rng.normal(size=n)})
    y = (rng.random(n) < 1 / (1 + np.exp(-(-1.5 + X.a - 0.7 * X.b)))).astype(int)
    return X, y


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_an_over_confident_winner_is_calibrated_and_its_brier_falls(seed):
    X, y = _table(3000, seed)
    makers = {"sharp": lambda: _Scaled(3.0)}
    choice = choose(makers, X, y, inner_cv=3, seed=seed)
    assert choice.winner == "sharp" and choice.calibrated
    assert choice.brier_calibrated < choice.brier_raw
    Xt, yt = _table(3000, seed + 100)
    auto = AutoSelect(makers, inner_cv=3, seed=seed).fit(X, y)
    raw = auto.model_.predict_proba(Xt)[:, 1]
    assert brier_score(yt, auto.predict_proba(Xt)[:, 1]) < brier_score(yt, raw)
    # Platt is increasing: the ranking (hence AUC) is the winner's
    assert np.array_equal(np.argsort(auto.predict_proba(Xt)[:, 1], kind="stable"), np.argsort(raw, kind="stable"))


def test_the_winner_is_the_best_inner_auc_and_never_sees_the_scored_rows():
    X, y = _table(2000, 5)
    seen: list[int] = []

    def fit(name, rows, what):
        seen.append(len(rows))
        return {"good": lambda: _Scaled(1.0), "blind": lambda: _Scaled(-1.0)}[name]().fit(X.iloc[rows], y[rows])

    choice = choose({"good": None, "blind": None}, X, y, inner_cv=4, seed=0, fit=fit, screen=False)
    assert choice.winner == "good" and choice.inner_auc["good"] > 0.5 > choice.inner_auc["blind"]
    assert len(seen) == 8 and all(n == 1500 for n in seen)


def test_the_default_is_kept_unless_beaten_by_more_than_one_corrected_standard_error():
    """The one-standard-error rule over the same k folds: the default (the first candidate) stays
    unless another beats it by more than sd · √(1/k + 1/(k − 1)) of their paired per-fold AUC
    differences (Nadeau–Bengio: k-fold training sets overlap, so the naive sd/√k is too small)."""
    from training.selection import one_se_choice

    gam = [0.700, 0.720, 0.710]
    # mean gain +0.0067, sd 0.0092: beyond the naive sd/√3 (0.0053), within the corrected 0.0084
    noisy = [0.712, 0.716, 0.722]
    winner, margins = one_se_choice({"gam": gam, "gbm": noisy}, "gam")
    assert winner == "gam"
    assert margins["gbm"]["auc"] == pytest.approx(0.02 / 3)
    assert margins["gbm"]["se"] == pytest.approx(np.std([0.012, -0.004, 0.012], ddof=1) * np.sqrt(1 / 3 + 1 / 2))
    assert not margins["gbm"]["beats_default"]
    clear = [0.720, 0.738, 0.732]  # +0.020, sd 0.002
    winner, margins = one_se_choice({"gam": gam, "gbm": noisy, "blend": clear}, "gam")
    assert winner == "blend" and margins["blend"]["beats_default"] and set(margins) == {"gbm", "blend"}
    clearer = [0.730, 0.748, 0.742]  # both beat the default: the higher mean AUC wins
    assert one_se_choice({"gam": gam, "blend": clear, "scorecard": clearer}, "gam")[0] == "scorecard"
    assert one_se_choice({"gam": gam}, "gam") == ("gam", {})
    with pytest.raises(ValueError, match="default"):
        one_se_choice({"gam": gam}, "gbm")


def test_choose_applies_the_rule_to_its_inner_folds_and_reports_the_margins():
    X, y = _table(2000, 5)
    def fit(name, rows, what):
        return {"default": lambda: _Scaled(1.0), "blind": lambda: _Scaled(-1.0),
                 "same": lambda: _Scaled(1.0)}[name]().fit(X.iloc[rows], y[rows])

    choice = choose({"default": None, "blind": None, "same": None}, X, y, inner_cv=3, seed=0, fit=fit)
    report = choice.as_dict()
    assert choice.winner == report["chosen"] == report["default"] == "default"
    assert set(report["margins"]) == {"blind", "same"}
    assert report["margins"]["same"]["auc"] == 0 and not report["margins"]["same"]["beats_default"]
    assert report["margins"]["blind"]["auc"] < 0
    assert "standard error" in report["rule"]


class _SelfCalibrated(_Scaled):
    """An over-confident model that says it calibrates itself (as `BoostedGAM(calibration=...)` does)."""

    calibration = "auto"


def test_no_second_map_on_a_candidate_that_calibrates_itself():
    """The GAM maps its own log-odds out of bag (`BoostedGAM(calibration="auto")`); a Platt map on
    top, fitted on the inner folds, would second-guess it (on the suite's HMDA it raised the GAM's
    Brier): a candidate with a ``calibration`` setting is delivered as it is."""
    X, y = _table(3000, 0)
    choice = choose({"gam": lambda: _SelfCalibrated(3.0)}, X, y, inner_cv=3, seed=0)
    assert not choice.calibrated and choice.brier_calibrated < choice.brier_raw


def test_platt_is_kept_only_when_it_clearly_lowers_the_inner_brier():
    """The same rule as the GAM's own maps (`models.calibration.clearly_lower`): the cross-fitted
    per-row Brier must fall by more than one standard error."""
    from models.calibration import clearly_lower

    assert clearly_lower(np.array([0.1, 0.1, 0.1, 0.1]) - 0.01 * np.array([1, 2, 1, 2]), np.full(4, 0.1))
    assert not clearly_lower(np.array([0.09, 0.11, 0.09, 0.105]), np.full(4, 0.1))
    for seed in range(3):
        X, y = _table(2000, seed)
        choice = choose({"lr": lambda: _Scaled(1.05)}, X, y, inner_cv=3, seed=seed)
        assert choice.as_dict()["calibrated"] == choice.calibrated
        assert choice.calibrated == clearly_lower(choice.losses["calibrated"], choice.losses["raw"])


def test_a_challenger_with_a_higher_brier_does_not_displace_the_default():
    """AUC chooses, but a challenger must also deliver probabilities no worse than the default's
    (its mean Brier, after its own calibration if kept, at most the default's)."""
    from training.selection import one_se_choice

    aucs = {"gam": [0.700, 0.720, 0.710], "blend": [0.720, 0.738, 0.732]}  # +0.020, clearly
    winner, margins = one_se_choice(aucs, "gam", brier={"gam": 0.1000, "blend": 0.1004})
    assert winner == "gam" and not margins["blend"]["beats_default"]
    assert margins["blend"]["brier"] == pytest.approx(0.0004)
    assert one_se_choice(aucs, "gam", brier={"gam": 0.1000, "blend": 0.0999})[0] == "blend"


def test_choose_passes_every_candidates_delivered_inner_brier_to_the_rule():
    X, y = _table(3000, 1)
    # the same ranking as the default, over-confident: Platt mends it, so its delivered Brier is the mended one
    choice = choose({"default": lambda: _Scaled(1.0), "sharp": lambda: _Scaled(3.0)}, X, y, inner_cv=3, seed=1)
    margin = choice.margins["sharp"]
    assert margin["auc"] == pytest.approx(0, abs=1e-12)
    assert abs(margin["brier"]) < 0.002  # the raw over-confident Brier is ≫ 0.002 higher


def test_paired_auc_variance_is_delongs_and_matches_a_bootstrap():
    """DeLong's variance of AUC(a) − AUC(b) on the same rows: equal scores give 0; it agrees
    with a bootstrap over rows within sampling error."""
    from sklearn.metrics import roc_auc_score

    from models.discrimination import paired_auc_variance

    rng = np.random.default_rng(0)
    y = (rng.random(1500) < 0.2).astype(int)
    a = y + rng.normal(0, 1.5, 1500)
    b = a + rng.normal(0, 0.8, 1500)
    assert paired_auc_variance(y, a, a) == pytest.approx(0, abs=1e-15)
    boot = []
    for _ in range(400):
        i = rng.integers(0, 1500, 1500)
        boot.append(roc_auc_score(y[i], a[i]) - roc_auc_score(y[i], b[i]))
    assert paired_auc_variance(y, a, b) == pytest.approx(np.var(boot), rel=0.2)


def test_the_rows_set_a_floor_under_a_fold_variance_that_two_degrees_of_freedom_make_small_by_chance():
    """Three per-fold differences that happen to agree (sd 0.001) understate how much one fold's
    AUC difference varies: its rows alone (DeLong's paired variance, mean over folds) vary more,
    and the larger of the two is the corrected standard error's single-fold variance."""
    from training.selection import one_se_choice

    aucs = {"gam": [0.700, 0.720, 0.710], "gbm": [0.705, 0.726, 0.714]}  # +0.005, sd 0.001
    assert one_se_choice(aucs, "gam")[0] == "gbm"
    winner, margins = one_se_choice(aucs, "gam", row_var={"gbm": 0.006**2})
    assert winner == "gam" and margins["gbm"]["se"] == pytest.approx(0.006 * np.sqrt(1 / 3 + 1 / 2))
    small = one_se_choice(aucs, "gam", row_var={"gbm": 1e-8})[1]["gbm"]["se"]
    assert small == pytest.approx(np.std([0.005, 0.006, 0.004], ddof=1) * np.sqrt(1 / 3 + 1 / 2))


def test_choose_floors_the_standard_error_with_the_inner_rows_paired_variance():
    X, y = _table(2000, 3)
    choice = choose({"default": lambda: _Scaled(1.0), "sharp": lambda: _Scaled(3.0)}, X, y, inner_cv=3, seed=3)
    # the same ranking: every fold's paired difference is 0, and so is DeLong's variance
    assert choice.margins["sharp"]["se"] == pytest.approx(0, abs=1e-12) and choice.winner == "default"
    assert "rows" in choice.as_dict()["rule"]


def _counting(X, y, kinds):
    seen: list[tuple[str, int]] = []

    def fit(name, rows, what):
        seen.append((name, len(rows)))
        return kinds[name]().fit(X.iloc[rows], y[rows])

    return seen, fit


def test_a_challenger_far_below_the_bar_on_the_first_fold_is_not_fitted_on_the_others():
    """The screen (`training.selection.SCREEN_Z`): a challenger whose margin on the folds run so far
    leaves it no plausible way to clear the rule's bar over all k folds is not fitted on the rest;
    it is reported with that margin, and with no challenger left the default is not refitted either."""
    X, y = _table(2000, 5)
    seen, fit = _counting(X, y, {"default": lambda: _Scaled(1.0), "blind": lambda: _Scaled(-1.0)})
    ticks = []
    choice = choose({"default": None, "blind": None}, X, y, inner_cv=3, seed=0, fit=fit,
                    advance=lambda: ticks.append(1))
    assert choice.winner == "default"
    assert [n for n, _ in seen] == ["default", "blind"]  # the first fold only
    assert len(ticks) == 2 * 3  # progress still counts every candidate × fold
    margin = choice.as_dict()["margins"]["blind"]
    assert margin["screened_out"] and not margin["beats_default"] and margin["auc"] < -0.5
    assert np.isfinite(choice.brier_raw) and len(choice.losses["raw"]) == pytest.approx(len(y) / 3, abs=1)
    assert "Screen" in choice.as_dict()["rule"]


class _Columns:
    """Logistic regression on some columns only."""

    def __init__(self, cols: list[str]) -> None:
        self.cols = cols

    def fit(self, X, y):
        self.lr_ = LogisticRegression().fit(X[self.cols], y)
        return self

    def predict_proba(self, X):
        return self.lr_.predict_proba(X[self.cols])


def test_a_challenger_that_could_win_goes_through_every_fold_and_the_choice_is_the_unscreened_one():
    X, y = _table(2000, 7)
    kinds = {"default": lambda: _Columns(["a", "noise"]),  # misses b: clearly beaten
             "blind": lambda: _Scaled(-1.0),
             "same": lambda: _Columns(["a"]),  # about the default's ranking
             "better": lambda: _Columns(["a", "b"])}
    seen, fit = _counting(X, y, kinds)
    screened = choose(dict.fromkeys(kinds), X, y, inner_cv=3, seed=0, fit=fit)
    counts = {n: sum(1 for m, _ in seen if m == n) for n in kinds}
    assert screened.winner == "better"
    assert counts["default"] == counts["better"] == 3 and counts["blind"] == 1 and counts["same"] in (1, 2, 3)
    assert screened.margins["blind"]["screened_out"] and "screened_out" not in screened.margins["better"]
    seen.clear()
    full = choose(dict.fromkeys(kinds), X, y, inner_cv=3, seed=0, fit=fit, screen=False)
    assert full.winner == screened.winner and len(seen) == 4 * 3
    assert full.margins["better"] == screened.margins["better"]
    assert full.brier_raw == screened.brier_raw and full.inner_auc["better"] == screened.inner_auc["better"]


def test_a_single_candidate_is_still_run_on_every_fold():
    """Nothing to screen: a lone candidate's Platt decision reads all inner folds, as before."""
    X, y = _table(1500, 2)
    seen, fit = _counting(X, y, {"lr": lambda: _Scaled(1.05)})
    choice = choose({"lr": None}, X, y, inner_cv=3, seed=2, fit=fit)
    assert len(seen) == 3 and len(choice.losses["raw"]) == len(y)
