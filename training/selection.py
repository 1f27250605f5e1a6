"""Honest choice among candidate models on any table with a binary target (`tiers fit --model auto`).

`choose` compares the candidates by cross-validation on the rows it is given only (in nested
cross-validation: the outer training part) and decides there whether Platt calibration of the
winner's log-odds lowers the Brier score: the calibration map is cross-fitted over the same
inner folds (fitted on the other folds' out-of-fold log-odds, scored on this fold's), so the
decision never sees a row it is judged on. `AutoSelect` is that choice as an estimator: choose,
refit the winner on all rows, apply the calibration if chosen. Platt is monotone increasing, so
AUC, KS and the ranking of subjects are those of the winner; only probabilities change.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold

from models.calibration import cross_fitted_platt_brier, fit_calibrator

Maker = Callable[[], Any]
FitOne = Callable[[str, np.ndarray, str], Any]


def table_candidates(seed: int) -> dict[str, Maker]:
    """The candidates `tiers fit` compares on a table of unknown meaning (no declared monotonicity)."""
    from models import BoostedGAM, MonotoneGBM, ScorecardModel, default_blend

    return {
        "scorecard": lambda: ScorecardModel(C=0.3),
        "gbm": lambda: MonotoneGBM(additive=True, n_estimators=400, learning_rate=0.03, min_child_samples=30,
                                   subsample=0.7, colsample_bytree=0.7, random_state=seed),
        "blend": lambda: default_blend(random_state=seed),
        "blend-shallow": lambda: default_blend(additive=False, random_state=seed),
        "gam": lambda: BoostedGAM(random_state=seed),
    }


def log_odds(model: Any, X) -> np.ndarray:
    """The model's log-odds of the adverse outcome, from its probabilities (any candidate)."""
    p = np.clip(model.predict_proba(X)[:, 1], 1e-12, 1 - 1e-12)
    return np.log(p / (1 - p))


@dataclass
class Choice:
    """What the inner folds decided: the winner by mean AUC, and whether to Platt-calibrate it."""

    winner: str
    inner_auc: dict[str, float]
    brier_raw: float  # winner's out-of-fold Brier over the inner folds
    brier_calibrated: float  # the same with the cross-fitted Platt map
    calibrator: Any = field(default=None, repr=False)  # fitted on all out-of-fold log-odds, if chosen

    @property
    def calibrated(self) -> bool:
        return self.calibrator is not None

    def apply(self, p: np.ndarray) -> np.ndarray:
        """The winner's probabilities mapped by the calibration, if one was chosen."""
        if self.calibrator is None:
            return np.asarray(p, dtype=float)
        p = np.clip(np.asarray(p, dtype=float), 1e-12, 1 - 1e-12)
        return self.calibrator.predict_proba_1(np.log(p / (1 - p)))

    def as_dict(self) -> dict:
        return {"chosen": self.winner, "inner_auc": self.inner_auc, "calibrated": self.calibrated,
                "inner_brier": {"raw": self.brier_raw, "calibrated": self.brier_calibrated}}


def choose(makers: Mapping[str, Maker], X: pd.DataFrame, y: np.ndarray, *, inner_cv: int, seed: int,
           fit: FitOne | None = None, advance: Callable[[], None] | None = None) -> Choice:
    """Cross-validate every candidate on (X, y) alone; pick by mean AUC; decide the calibration.

    fit(name, rows, what) fits candidate ``name`` on ``rows`` (default: ``makers[name]().fit``);
    ``what`` names the fold for error messages. advance() is called after every fit.
    """
    y = np.asarray(y)

    def default_fit(name: str, rows: np.ndarray, what: str) -> Any:
        return makers[name]().fit(X.iloc[rows], y[rows])

    fit = fit or default_fit
    folds = list(StratifiedKFold(inner_cv, shuffle=True, random_state=seed).split(X, y))
    z = {name: np.empty(len(y)) for name in makers}
    aucs: dict[str, list[float]] = {name: [] for name in makers}
    for name in makers:
        for i, (tr, te) in enumerate(folds, start=1):
            z[name][te] = log_odds(fit(name, tr, f"inner fold {i}"), X.iloc[te])
            aucs[name].append(float(roc_auc_score(y[te], z[name][te])))
            if advance:
                advance()
    inner_auc = {name: float(np.mean(a)) for name, a in aucs.items()}
    winner = max(inner_auc, key=inner_auc.get)
    zw = z[winner]
    raw, cal = cross_fitted_platt_brier(zw, y, folds)
    calibrator = fit_calibrator(zw, y, method="sigmoid") if cal < raw else None
    return Choice(winner, inner_auc, raw, cal, calibrator)


class AutoSelect:
    """`choose` then refit the winner on all rows: what ``tiers fit --model auto`` delivers.

    fit(X, y) / predict_proba(X); ``choice_`` and ``model_`` after fitting.
    """

    def __init__(self, makers: Mapping[str, Maker], *, inner_cv: int = 3, seed: int = 0) -> None:
        self.makers = makers
        self.inner_cv = inner_cv
        self.seed = seed

    def fit(self, X: pd.DataFrame, y) -> AutoSelect:
        y = np.asarray(y)
        self.choice_ = choose(self.makers, X, y, inner_cv=self.inner_cv, seed=self.seed)
        self.model_ = self.makers[self.choice_.winner]().fit(X, y)
        return self

    def predict_proba(self, X) -> np.ndarray:
        p = self.choice_.apply(self.model_.predict_proba(X)[:, 1])
        return np.column_stack([1.0 - p, p])
