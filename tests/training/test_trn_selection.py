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

    choice = choose({"good": None, "blind": None}, X, y, inner_cv=4, seed=0, fit=fit)
    assert choice.winner == "good" and choice.inner_auc["good"] > 0.5 > choice.inner_auc["blind"]
    assert len(seen) == 8 and all(n == 1500 for n in seen)
