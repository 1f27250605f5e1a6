"""A weighted average of additive models in log-odds space — still additive, still exact.

`log_odds = Σ_k w_k · log_odds_k`, so contributions are the same weighted sums of each
model's contributions and the base values: the explanation stays exact.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.base import clone

from models.base import (
    BaseEstimator,
    Contributions,
    RiskModelMixin,
    check_is_fitted,
    frame_and_target,
    set_fitted_inputs,
)


class AdditiveBlend(RiskModelMixin, BaseEstimator):
    """Fit every estimator on the same data and average their log-odds with `weights`."""

    def __init__(self, *, estimators: Sequence[BaseEstimator] = (), weights: Sequence[float] | None = None) -> None:
        self.estimators = estimators
        self.weights = weights

    def fit(self, X, y) -> AdditiveBlend:
        if not self.estimators:
            raise ValueError("estimators is empty: pass at least one model")
        weights = np.ones(len(self.estimators)) if self.weights is None else np.asarray(self.weights, dtype=float)
        if weights.shape != (len(self.estimators),) or (weights < 0).any() or weights.sum() <= 0:
            raise ValueError(f"weights={self.weights!r} must be {len(self.estimators)} non-negative numbers with a positive sum")
        frame, y_arr = frame_and_target(X, y)
        self.weights_ = weights / weights.sum()
        self.estimators_ = [clone(e).fit(frame, y_arr) for e in self.estimators]
        set_fitted_inputs(self, frame)
        return self

    def decision_function(self, X) -> np.ndarray:
        check_is_fitted(self, "estimators_")
        return sum(w * e.decision_function(X) for w, e in zip(self.weights_, self.estimators_, strict=True))

    def contributions(self, X) -> Contributions:
        """Weighted sum of the members' exact contributions (same feature order)."""
        check_is_fitted(self, "estimators_")
        parts = [e.contributions(X) for e in self.estimators_]
        return Contributions.combine(parts, self.weights_, list(self.feature_names_in_))


def default_blend(*, monotone=None, categorical_features=None, additive: bool = True,
                  random_state: int = 0) -> AdditiveBlend:
    """The project's default model: a scorecard averaged with a monotone bagged LightGBM.

    additive=True (glass box, contributions by lookup — the bulk-grading choice):
    0.7 · scorecard + 0.3 · depth-1 GBM. additive=False: 0.5 · scorecard + 0.5 · GBM of
    3-leaf trees (pairwise interactions; contributions by TreeSHAP, slower but exact);
    it is the most accurate on the German credit benchmark (`benchmarks/external.py`).
    """
    from models.gbm import MonotoneGBM
    from models.scorecard import ScorecardModel

    scorecard = ScorecardModel(monotone=monotone, categorical_features=categorical_features, C=0.3)
    if additive:
        gbm = MonotoneGBM(monotone=monotone, categorical_features=categorical_features, additive=True,
                          n_estimators=400, learning_rate=0.03, min_child_samples=30, subsample=0.7,
                          colsample_bytree=0.7, random_state=random_state)
        return AdditiveBlend(estimators=[scorecard, gbm], weights=[0.7, 0.3])
    gbm = MonotoneGBM(monotone=monotone, categorical_features=categorical_features, additive=False,
                      num_leaves=3, n_estimators=400, learning_rate=0.03, min_child_samples=20,
                      subsample=0.7, colsample_bytree=0.7, random_state=random_state)
    return AdditiveBlend(estimators=[scorecard, gbm], weights=[0.5, 0.5])
