"""Points scorecard: optimal monotone binning (optbinning) + logistic regression on WoE.

The points are computed here from WoE × coefficient, not with optbinning's `Scorecard.score()`
(optbinning issue #412: wrong with custom transforms). Scaling: with `factor = pdo / ln 2` and
`offset = base_score − factor · ln(base_odds)`,

    score = offset − factor · log_odds(bad)        (higher score = lower risk)

so at `base_score` the good:bad odds are `base_odds`, and every `pdo` points double them.
Each feature's points per bin are `−factor · (coef · WoE + intercept / p) + offset / p`, so the
points of a subject's bins add up to its score exactly.

Missing values and special codes are never dropped: each feature has a `Special` and a
`Missing` bin (and `Unknown` for categories unseen in training). A bin that is empty in
training gets WoE 0, the population average, on purpose: no evidence either way.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

from models.base import (
    BaseEstimator,
    Contributions,
    RiskModelMixin,
    check_is_fitted,
    fitted_frame,
    frame_and_target,
)

# The score scale of every model kind: 600 points at good:bad odds 50:1, 20 points to double the
# odds. The scorecard's defaults; training.bundle scores every kind on it, serving.charts draws in it.
SCORE_BASE = 600.0
SCORE_BASE_ODDS = 50.0
SCORE_PDO = 20.0

_TRENDS = {1: "ascending", -1: "descending"}


@dataclass(frozen=True)
class FeatureBins:
    """Fitted bins of one feature: numeric `splits` ([a, b) intervals) or category groups."""

    name: str
    categorical: bool
    splits: np.ndarray | None
    groups: list[list[str]] | None
    special_codes: tuple
    labels: list[str]

    @property
    def n_regular(self) -> int:
        return len(self.labels) - (3 if self.categorical else 2)

    def index(self, values: pd.Series) -> np.ndarray:
        """Bin index of every value: regular bins, then Special, Missing (, Unknown)."""
        k = self.n_regular
        missing = values.isna().to_numpy()
        if self.categorical:
            lookup = {cat: b for b, group in enumerate(self.groups) for cat in group}
            found = values.astype(str).map(lookup).to_numpy(dtype=float)
            idx = np.where(np.isnan(found), k + 2, found).astype(np.int64)  # unseen category → Unknown
            idx[missing] = k + 1
            if self.special_codes:
                idx[values.isin(self.special_codes).to_numpy()] = k
            return idx
        x = pd.to_numeric(values, errors="raise").to_numpy(dtype=float)
        idx = np.searchsorted(self.splits, x, side="right").astype(np.int64)
        if self.special_codes:
            idx[np.isin(x, np.asarray(self.special_codes, dtype=float))] = k
        idx[missing] = k + 1
        return idx


def _numeric_labels(splits: np.ndarray) -> list[str]:
    edges = [-math.inf, *splits.tolist(), math.inf]
    return [
        ("(-inf, " if i == 0 else f"[{edges[i]:.6g}, ") + ("inf)" if i == len(edges) - 2 else f"{edges[i + 1]:.6g})")
        for i in range(len(edges) - 1)
    ]


class ScorecardModel(RiskModelMixin, BaseEstimator):
    """Monotone-binned logistic scorecard scaled to points.

    Parameters (all keyword-only, stored as given):
    monotone: feature → +1 (risk rises with the value), -1, or 0 (`default_trend`).
    categorical_features: columns binned as categories (default: non-numeric columns).
    special_codes: feature → values that are codes, not quantities (e.g. -1 = "not reported").
    min_bin_size, max_n_bins, max_n_prebins: optbinning constraints per feature.
    C: inverse L2 strength of the logistic regression on WoE.
    base_score, base_odds, pdo: points scaling (base_odds = good:bad odds at base_score).
    drop_wrong_sign: refit without features whose coefficient contradicts their WoE, which
    would otherwise reverse a declared monotone direction.
    """

    def __init__(
        self,
        *,
        monotone: Mapping[str, int] | None = None,
        categorical_features: Sequence[str] | None = None,
        special_codes: Mapping[str, Sequence] | None = None,
        min_bin_size: float = 0.05,
        max_n_bins: int | None = None,
        max_n_prebins: int = 20,
        default_trend: str = "auto",
        C: float = 1.0,
        base_score: float = SCORE_BASE,
        base_odds: float = SCORE_BASE_ODDS,
        pdo: float = SCORE_PDO,
        drop_wrong_sign: bool = True,
    ) -> None:
        self.monotone = monotone
        self.categorical_features = categorical_features
        self.special_codes = special_codes
        self.min_bin_size = min_bin_size
        self.max_n_bins = max_n_bins
        self.max_n_prebins = max_n_prebins
        self.default_trend = default_trend
        self.C = C
        self.base_score = base_score
        self.base_odds = base_odds
        self.pdo = pdo
        self.drop_wrong_sign = drop_wrong_sign

    # ------------------------------------------------------------------ fitting
    def fit(self, X, y) -> ScorecardModel:
        """Bin every feature, compute WoE, fit the logistic regression, derive points."""
        from optbinning import OptimalBinning  # heavy import (cvxpy, ortools)

        frame, y_arr = frame_and_target(X, y)
        if self.pdo <= 0 or self.base_odds <= 0:
            raise ValueError(f"pdo={self.pdo} and base_odds={self.base_odds} must both be > 0")
        monotone = dict(self.monotone or {})
        unknown = sorted(set(monotone) - set(frame.columns))
        if unknown:
            raise ValueError(f"monotone names features {unknown} that are not columns of X")
        categorical = set(self.categorical_features or [])
        categorical |= {c for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])
                        or pd.api.types.is_bool_dtype(frame[c])}
        specials = dict(self.special_codes or {})

        self.feature_names_in_ = np.asarray(frame.columns, dtype=object)
        self.n_features_in_ = frame.shape[1]
        self.classes_ = np.array([0, 1])
        self.bins_: dict[str, FeatureBins] = {}
        self.bin_counts_: dict[str, np.ndarray] = {}
        self.woe_: dict[str, np.ndarray] = {}
        n_event, n_nonevent = y_arr.sum(), len(y_arr) - y_arr.sum()
        woe_cols = []
        for name in frame.columns:
            col = frame[name]
            is_cat = name in categorical
            direction = monotone.get(name, 0)
            if is_cat and direction:
                raise ValueError(f"feature {name!r} is categorical; monotone={direction} needs an ordered feature")
            codes = tuple(specials.get(name, ()))
            values = col.astype(str).where(col.notna(), np.nan).to_numpy(dtype=object) if is_cat \
                else pd.to_numeric(col, errors="raise").to_numpy(dtype=float)
            optb = OptimalBinning(
                name=str(name), dtype="categorical" if is_cat else "numerical",
                monotonic_trend=None if is_cat else _TRENDS.get(direction, self.default_trend),
                min_bin_size=self.min_bin_size, max_n_bins=self.max_n_bins,
                max_n_prebins=self.max_n_prebins, special_codes=list(codes) or None,
            )
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                optb.fit(values, y_arr)
            if is_cat:
                groups = [[str(v) for v in g] for g in optb.splits]
                # optbinning may leave rare categories out of any group: give them their own bin.
                seen = {v for g in groups for v in g}
                groups += [[str(v)] for v in pd.unique(col.dropna().astype(str)) if v not in seen]
                labels = [", ".join(g) for g in groups] + ["Special", "Missing", "Unknown"]
                fb = FeatureBins(str(name), True, None, groups, codes, labels)
            else:
                splits = np.asarray(optb.splits, dtype=float)
                fb = FeatureBins(str(name), False, splits, None, codes, [*_numeric_labels(splits), "Special", "Missing"])
            idx = fb.index(col)
            n_bins = len(fb.labels)
            events = np.bincount(idx, weights=y_arr, minlength=n_bins)
            totals = np.bincount(idx, minlength=n_bins).astype(float)
            nonevents = totals - events
            # WoE = ln(%non-event / %event), 0.5 smoothing keeps pure bins finite; empty bins → 0.
            woe = np.log(((nonevents + 0.5) / (n_nonevent + 0.5)) / ((events + 0.5) / (n_event + 0.5)))
            woe[totals == 0] = 0.0
            self.bins_[str(name)] = fb
            self.bin_counts_[str(name)] = np.column_stack([totals, events])
            self.woe_[str(name)] = woe
            woe_cols.append(woe[idx])
        W = np.column_stack(woe_cols)

        # A feature whose training rows all share one WoE carries no information: leave it out.
        active = np.ptp(W, axis=0) > 0
        coef = np.zeros(W.shape[1])
        # No informative feature left: the scorecard is the base rate (every subject alike).
        intercept = float(np.log((n_event + 0.5) / (n_nonevent + 0.5)))
        while active.any():
            lr = LogisticRegression(C=self.C, max_iter=2000)
            lr.fit(W[:, active], y_arr)
            coef = np.zeros(W.shape[1])
            coef[active] = lr.coef_[0]
            intercept = float(lr.intercept_[0])
            # WoE is high for low-risk bins, so a sound coefficient is negative; a positive one
            # would reverse the feature's bins (and its declared direction): drop the worst, refit.
            wrong = active & (coef > 0)
            if not self.drop_wrong_sign or not wrong.any():
                break
            active[np.argmax(np.where(wrong, coef, -np.inf))] = False
            if not active.any():
                coef = np.zeros(W.shape[1])
                intercept = float(np.log((n_event + 0.5) / (n_nonevent + 0.5)))
        self.coef_ = coef
        self.intercept_ = intercept
        self.selected_features_ = [str(n) for n, c in zip(frame.columns, coef, strict=True) if c != 0]
        self.factor_ = self.pdo / math.log(2.0)
        self.offset_ = self.base_score - self.factor_ * math.log(self.base_odds)
        p = W.shape[1]
        self.points_ = {
            name: -self.factor_ * (coef[j] * self.woe_[name] + intercept / p) + self.offset_ / p
            for j, name in enumerate(self.bins_)
        }
        # Mean term per feature over the training subjects: the reference of `contributions`.
        self.mean_terms_ = np.array([coef[j] * W[:, j].mean() for j in range(p)])
        return self

    # --------------------------------------------------------------- prediction
    def _bin_indices(self, X) -> np.ndarray:
        check_is_fitted(self, "coef_")
        frame = fitted_frame(self, X)
        return np.column_stack([self.bins_[str(n)].index(frame.iloc[:, j]) for j, n in enumerate(self.feature_names_in_)])

    def _terms(self, X) -> np.ndarray:
        idx = self._bin_indices(X)
        return np.column_stack([self.coef_[j] * self.woe_[n][idx[:, j]] for j, n in enumerate(self.bins_)])

    def decision_function(self, X) -> np.ndarray:
        """Log-odds of the adverse outcome."""
        terms = self._terms(X)
        return self.intercept_ + terms.sum(axis=1)

    def points(self, X) -> pd.DataFrame:
        """Points of every feature for every subject (columns = features)."""
        idx = self._bin_indices(X)
        return pd.DataFrame({n: self.points_[n][idx[:, j]] for j, n in enumerate(self.bins_)},
                            index=X.index if isinstance(X, pd.DataFrame) else None)

    def score(self, X, y=None):  # type: ignore[override]
        """With y: accuracy (sklearn contract); without: the points score of every subject."""
        if y is not None:
            return super().score(X, y)
        return self.points(X).to_numpy().sum(axis=1)

    def score_points(self, X) -> np.ndarray:
        """Total points per subject (= offset − factor · log-odds)."""
        return self.points(X).to_numpy().sum(axis=1)

    def contributions(self, X, *, reference: str = "mean") -> Contributions:
        """Exact log-odds contributions: coef·WoE minus a per-feature reference.

        reference="mean": the training-population mean (positive = riskier than average);
        reference="best": the lowest-risk bin (every contribution ≥ 0, = points lost × 1/factor).
        """
        terms = self._terms(X)
        if reference == "mean":
            ref = self.mean_terms_
        elif reference == "best":
            ref = np.array([min(self.coef_[j] * self.woe_[n]) for j, n in enumerate(self.bins_)])
        else:
            raise ValueError(f"reference={reference!r} must be 'mean' or 'best'")
        return Contributions(terms - ref, float(self.intercept_ + ref.sum()), list(self.bins_))

    def points_deviation(self, X, *, reference: str = "best") -> pd.DataFrame:
        """Points lost per feature against the reference (best bin or population mean)."""
        c = self.contributions(X, reference=reference)
        return pd.DataFrame(self.factor_ * c.values, columns=c.feature_names)

    # ------------------------------------------------------------------ reading
    def points_table(self) -> pd.DataFrame:
        """One row per feature and bin: count, event rate, WoE, coefficient, points."""
        check_is_fitted(self, "coef_")
        rows = []
        for j, (name, fb) in enumerate(self.bins_.items()):
            counts = self.bin_counts_[name]
            for b, label in enumerate(fb.labels):
                total, events = counts[b]
                rows.append({
                    "feature": name, "bin": label, "count": int(total),
                    "event_rate": events / total if total else np.nan,
                    "woe": self.woe_[name][b], "coef": self.coef_[j], "points": self.points_[name][b],
                })
        return pd.DataFrame(rows)

    def points_table_text(self, *, digits: int = 1) -> str:
        """Plain-text points table (for logs and reports)."""
        t = self.points_table()
        t = t[t["coef"] != 0]
        return t.to_string(index=False, float_format=lambda v: f"{v:.{digits + 2}f}" if abs(v) < 1 else f"{v:.{digits}f}")

    def rich_table(self, *, title: str = "Scorecard points"):
        """The points table as a `rich.table.Table` for the terminal."""
        from rich.table import Table

        table = Table(title=title)
        for col in ("feature", "bin", "count", "event rate", "WoE", "points"):
            table.add_column(col, justify="left" if col in ("feature", "bin") else "right")
        t = self.points_table()
        for feature, block in t[t["coef"] != 0].groupby("feature", sort=False):
            for i, r in enumerate(block.itertuples()):
                er = "" if np.isnan(r.event_rate) else f"{r.event_rate:.1%}"
                table.add_row(str(feature) if i == 0 else "", r.bin, str(r.count), er, f"{r.woe:.3f}", f"{r.points:.1f}")
        return table
