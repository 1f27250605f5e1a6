"""Boosted GA²M: a glass box of per-feature shapes and declared pairwise terms.

    log_odds(x) = intercept + Σ_f g_f(x_f) + Σ_{(a, b) ∈ pairs_} h_ab(x_a, x_b)

Fitted as InterpretML's EBM is, on LightGBM's histogram trees (C++, single thread):

1. **mains**: boosting where every tree splits one feature only (LightGBM
   ``interaction_constraints`` = one group per feature): stumps at random thresholds (LightGBM
   ``extra_trees``, which smooths the shapes as EBM's random "smoothing rounds" do) and early
   stopping on a stratified inner validation split;
2. **pair search**: FAST (Lou et al., KDD 2013) ranks every pair of features by the best
   four-quadrant fit of the mains' gradients on the pair's coarse histogram; the best
   ``interactions`` pairs become declared pairs;
3. **pair terms**: boosting from the mains' log-odds where every tree stays within one declared
   pair (one constraint group per pair), on coarser bins, with early stopping;
4. **bags**: steps 1 and 3 repeated on ``n_bags`` inner splits and averaged, as EBM's outer bags;
   each bag holds out rows it early-stops on and other rows it is scored on out of bag;
5. **calibration** (``calibration="auto"``): a map of the averaged log-odds fitted on out-of-bag
   log-odds (each row scored only by the bags that neither trained nor stopped on it), either Platt, a·(mains + pairs)
   + b, which keeps every ranking and so the AUC, or one slope for the mains and one for the
   pairs, a·mains + c·pairs + b (a, c > 0); chosen by Brier cross-fitted over folds of those
   rows (Platt only when clearly better than raw, the two slopes than raw and Platt). It is
   folded into the tables (read in two parts, the mains boosters' and the pair boosters', and
   weighed), so the score stays an exact sum of contributions and monotone shapes stay monotone.

The boosters are then read back into lookup tables, one per term: each main effect is exactly
the booster's TreeSHAP value of its one-feature trees, and each pair term is exact by the
anchored decomposition ``h(a, b) = f(a, b) − f(a, ·) − f(·, b) + f(·, ·)`` (the pair booster is
a sum of functions of declared pairs, so nothing is lost). Pair terms are then purified: their
means over each feature (under the training marginals) move into the main effects, so a pair
term holds only what neither feature explains alone, and main effects are centred on the
training population. A score is therefore an exact sum of per-feature and pairwise
contributions (`contributions`), found by table lookup: no TreeSHAP at grading time.

Monotone constraints (by name) hold for every tree, so the score is monotone in each constrained
feature, and so is each main effect on its own. Categorical columns are LightGBM categories;
a missing value and a category unseen in training take the "missing" entry of each table,
which is what the boosters do with them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from models.base import (
    BaseEstimator,
    Contributions,
    RiskModelMixin,
    check_is_fitted,
    encode_columns,
    encoded,
    lightgbm_params,
    sigmoid,
    start_fit,
)
from models.gbm import ShapeFunction


@dataclass(frozen=True)
class PairFunction:
    """h_ab of a declared pair on its coarse grid: ``values[u, v]`` for region u of a and v of b.

    Regions of a numeric feature are the intervals between ``edges`` (x ≤ edges[0], …, above the
    last), then one for missing; of a categorical one, its categories, then missing.
    """

    features: tuple[str, str]
    edges: tuple[np.ndarray, np.ndarray]
    categories: tuple[list[str] | None, list[str] | None]
    values: np.ndarray

    def frame(self) -> pd.DataFrame:
        """The table with readable row and column labels (log-odds)."""
        labels = [_region_labels(e, c) for e, c in zip(self.edges, self.categories, strict=True)]
        return pd.DataFrame(self.values, index=labels[0], columns=labels[1])


def _region_labels(edges: np.ndarray, categories: list[str] | None) -> list[str]:
    if categories is not None:
        return [*categories, "missing"]
    lo = [-np.inf, *edges.tolist()]
    hi = [*edges.tolist(), np.inf]
    return [f"({a:.6g}, {b:.6g}]" for a, b in zip(lo, hi, strict=True)] + ["missing"]


# -- reading LightGBM boosters ------------------------------------------------------------------


def _tree_splits(booster, n_iter: int) -> list[list[tuple[int, float | None]]]:
    """Per tree: (feature, numeric threshold or None for a categorical split) of every split."""
    trees: list[list[tuple[int, float | None]]] = []
    feats: list[int] = []
    for line in booster.model_to_string(num_iteration=n_iter).splitlines():
        if line.startswith("Tree="):
            feats = []
            trees.append([])
        elif line.startswith("split_feature="):
            feats = [int(v) for v in line[14:].split()]
        elif line.startswith("threshold="):
            thresholds = [float(v) for v in line[10:].split()]
        elif line.startswith("decision_type="):
            kinds = [int(v) for v in line[14:].split()]
            trees[-1] = [(f, None if k & 1 else t) for f, t, k in zip(feats, thresholds, kinds, strict=True)]
    return trees


# LightGBM's kZeroThreshold (1e-35 as a float): a value with |x| at most this is read as 0, and a
# cut between negative and positive values is made at ±this
_ZERO = float(np.float32(1e-35))


def _representatives(edges: np.ndarray, n_categories: int | None) -> np.ndarray:
    """One value inside every region of a feature (last: missing, NaN), where LightGBM reads it
    as inside too: a region (e', e] is represented by e, except at the zero cuts ±1e-35, which
    LightGBM reads as 0 (then the middle of the region below −1e-35, or 0 for the one holding 0)."""
    if n_categories is not None:
        return np.r_[np.arange(n_categories, dtype=float), np.nan]
    if len(edges) == 0:
        return np.array([0.0, np.nan])
    reps = np.array(edges, dtype=float)
    for i in np.flatnonzero(np.abs(reps) <= _ZERO):
        if edges[i] < 0:
            reps[i] = (edges[i - 1] + edges[i]) / 2 if i > 0 else edges[i] - 1.0
        else:
            reps[i] = 0.0
    above = edges[-1] + max(1.0, abs(edges[-1]))
    return np.r_[reps, above, np.nan]


def _regions(x: np.ndarray, edges: np.ndarray, n_categories: int | None) -> np.ndarray:
    """Region index of every encoded value (last region = missing), as LightGBM routes it."""
    nan = np.isnan(x)
    if n_categories is not None:
        idx = np.where(nan, n_categories, x).astype(np.int64)
        return idx
    idx = np.searchsorted(edges, np.where(np.abs(x) <= _ZERO, 0.0, x), side="left")
    if nan.any():
        idx[nan] = len(edges) + 1
    return idx


# -- FAST pair ranking --------------------------------------------------------------------------


def _coarse_codes(x: np.ndarray, categorical: bool, n_bins: int) -> tuple[np.ndarray, int]:
    """Codes 0..k-1 for ≤ n_bins quantile bins (or the most frequent categories), k = missing."""
    nan = np.isnan(x)
    values = x[~nan]
    if categorical:
        cats, counts = np.unique(values, return_counts=True)
        keep = cats[np.argsort(-counts, kind="stable")[: n_bins - 1]]
        lookup = {c: i for i, c in enumerate(np.sort(keep))}
        other = len(keep)
        codes = np.array([lookup.get(v, other) for v in values], dtype=np.int64) if len(values) else np.empty(0, int)
        k = other + 1
    else:
        edges = np.unique(np.quantile(values, np.linspace(0, 1, n_bins + 1)[1:-1])) if len(values) else np.empty(0)
        codes = np.searchsorted(edges, values, side="left")
        k = len(edges) + 1
    out = np.full(len(x), k, dtype=np.int64)
    out[~nan] = codes
    return out, k + 1


def rank_pairs(X: np.ndarray, categorical: Sequence[bool], grad: np.ndarray, hess: np.ndarray,
               candidates: Sequence[int], *, n_bins: int = 16, min_hessian: float = 1.0,
               reg_lambda: float = 1.0) -> list[tuple[float, int, int]]:
    """FAST: for every pair of candidate features, the gain of the best four-quadrant split of
    the gradients (one cut on each feature) over one leaf; sorted by gain, highest first.

    Categories (and the missing bin) are ordered by their mean gradient, so one cut can separate
    any two groups of bins in that order.
    """
    codes, sizes = {}, {}
    for j in candidates:
        c, k = _coarse_codes(X[:, j], categorical[j], n_bins)
        g = np.bincount(c, weights=grad, minlength=k)
        h = np.bincount(c, weights=hess, minlength=k)
        order = np.argsort(g / (h + reg_lambda), kind="stable") if categorical[j] else np.arange(k)
        rank = np.empty(k, dtype=np.int64)
        rank[order] = np.arange(k)
        codes[j], sizes[j] = rank[c], k
    g_all, h_all = grad.sum(), hess.sum()
    base = g_all ** 2 / (h_all + reg_lambda)
    out = []
    cand = list(candidates)
    for i, a in enumerate(cand):
        for b in cand[i + 1:]:
            ka, kb = sizes[a], sizes[b]
            cell = codes[a] * kb + codes[b]
            G = np.bincount(cell, weights=grad, minlength=ka * kb).reshape(ka, kb).cumsum(0).cumsum(1)
            H = np.bincount(cell, weights=hess, minlength=ka * kb).reshape(ka, kb).cumsum(0).cumsum(1)
            # quadrants of every cut (s, t): rows ≤ s / > s, columns ≤ t / > t
            quads = []
            for S in (G, H):
                q00 = S[:-1, :-1]
                q01 = S[:-1, -1:] - q00
                q10 = S[-1:, :-1] - q00
                q11 = S[-1, -1] - q00 - q01 - q10
                quads.append((q00, q01, q10, q11))
            gain = sum(gq ** 2 / (hq + reg_lambda) for gq, hq in zip(*quads, strict=True))
            ok = np.logical_and.reduce([hq >= min_hessian for hq in quads[1]])
            if ok.any():
                out.append((float(gain[ok].max() - base), a, b))
    out.sort(key=lambda t: -t[0])
    return out


# -- calibration with one slope for the mains, one for the pairs ---------------------------------


def _two_slopes(m: np.ndarray, q: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """(a, c, b) of p = σ(a·m + c·q + b), unpenalised; ValueError unless a > 0 and c > 0."""
    from models.calibration import logistic_coefficients

    a, c, b = (float(v) for v in logistic_coefficients(np.column_stack([m, q]), y))
    if not (a > 0 and c > 0):
        raise ValueError(f"slopes {a:.3g}, {c:.3g}: both must be > 0")
    return a, c, b


def _cross_fitted_two_slopes(m: np.ndarray, q: np.ndarray, y: np.ndarray, folds) -> np.ndarray:
    """Probabilities of two-slope maps cross-fitted over folds (a fold whose fit fails: σ(m + q))."""
    p = sigmoid(m + q)
    for tr, te in folds:
        try:
            a, c, b = _two_slopes(m[tr], q[tr], y[tr])
        except ValueError:
            continue
        p[te] = sigmoid(a * m[te] + c * q[te] + b)
    return p


# -- the estimator ------------------------------------------------------------------------------


class BoostedGAM(RiskModelMixin, BaseEstimator):
    """Glass-box boosted GA²M: per-feature shapes plus up to ``interactions`` declared pairs.

    monotone: feature → +1 / −1 / 0 (by name). categorical_features: columns treated as
    categories (default: non-numeric columns). main_effect_only: features never put in a pair
    (names that are not columns are ignored). interactions: how many pairs FAST may declare
    (0 = purely additive). learning_rate, num_leaves, min_child_samples, reg_lambda, max_bin:
    of the mains' trees; the pair trees use ``pair_num_leaves`` and ``pair_max_bin``;
    extra_trees: thresholds drawn at random (both stages). n_bags inner splits holding out
    ``validation_share`` each ("auto": 8 up to 2,500 rows, then 20,000 / rows, at least 3), half
    of it to stop on, half out of bag (`_bags`); early stopping after ``early_stopping_rounds``
    rounds without a better log-loss on the stop rows, at most ``max_rounds`` rounds per stage. calibration: "auto"
    (Platt or the two-slope map on out-of-bag log-odds, by their cross-fitted Brier: see
    `_calibrate`), "platt" (always Platt), None (never; also never when boosting from an
    ``init_score``, whose log-odds the model's own cannot rescale). ``calibration_`` holds the
    kept map (kind, mains and pairs slopes, intercept, rows, the cross-fitted Briers) or None;
    ``oob_log_odds_`` the out-of-bag log-odds of the mains and of the pairs (before the map).

    The defaults were chosen on the whole public suite of `benchmarks/model_suite.py` (greedy
    stumps at random thresholds beat cyclic boosting and 3-leaf trees there; 40 pairs beat 10
    and 25 on the mean and on the worst dataset), never on one table.
    """

    def __init__(
        self,
        *,
        monotone: Mapping[str, int] | None = None,
        categorical_features: Sequence[str] | None = None,
        main_effect_only: Sequence[str] | None = None,
        interactions: int = 40,
        learning_rate: float = 0.1,
        max_rounds: int = 2000,
        early_stopping_rounds: int = 50,
        n_bags: int | str = "auto",
        validation_share: float = 0.15,
        num_leaves: int = 2,
        min_child_samples: int = 4,
        reg_lambda: float = 0.0,
        max_bin: int = 255,
        pair_num_leaves: int = 4,
        pair_max_bin: int = 32,
        cat_smooth: float = 10.0,
        extra_trees: bool = True,
        calibration: str | None = "auto",
        random_state: int | None = 0,
        n_jobs: int = 1,
    ) -> None:
        self.monotone = monotone
        self.categorical_features = categorical_features
        self.main_effect_only = main_effect_only
        self.interactions = interactions
        self.learning_rate = learning_rate
        self.max_rounds = max_rounds
        self.early_stopping_rounds = early_stopping_rounds
        self.n_bags = n_bags
        self.validation_share = validation_share
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.reg_lambda = reg_lambda
        self.max_bin = max_bin
        self.pair_num_leaves = pair_num_leaves
        self.pair_max_bin = pair_max_bin
        self.cat_smooth = cat_smooth
        self.extra_trees = extra_trees
        self.calibration = calibration
        self.random_state = random_state
        self.n_jobs = n_jobs

    # ------------------------------------------------------------------- fitting
    def _check_params(self) -> None:
        checks = {
            "interactions": self.interactions >= 0, "learning_rate": self.learning_rate > 0,
            "max_rounds": self.max_rounds >= 1, "early_stopping_rounds": self.early_stopping_rounds >= 1,
            "n_bags": self.n_bags == "auto" or (isinstance(self.n_bags, int) and self.n_bags >= 1),
            "validation_share": 0 < self.validation_share < 1,
            "num_leaves": self.num_leaves >= 2, "pair_num_leaves": self.pair_num_leaves >= 2,
            "min_child_samples": self.min_child_samples >= 1, "reg_lambda": self.reg_lambda >= 0,
            "max_bin": self.max_bin >= 2, "pair_max_bin": self.pair_max_bin >= 2,
            "calibration": self.calibration in (None, "auto", "platt"),
        }
        bad = [k for k, ok in checks.items() if not ok]
        if bad:
            raise ValueError(f"BoostedGAM parameters out of range: {', '.join(f'{k}={getattr(self, k)!r}' for k in bad)}")

    def _params(self, *, leaves: int, max_bin: int, monotone: list[int], groups: list[list[int]],
                seed: int) -> dict:
        # A categorical of more than 4 levels is split many-vs-many: its categories sorted by
        # gradient, the split groups the first few of that order (from either end) against the
        # rest. LightGBM lets that group hold up to min(max_cat_threshold, (levels + 1) / 2)
        # categories (default threshold 32). Sorted by the very gradients the split is scored on,
        # a group of many small categories of a many-level feature (a name, a state) scores a
        # high gain on noise alone, and each round's tree takes the feature of highest gain: such
        # a feature is chosen too often and fitted to the training rows (EBM visits features in
        # turn, so it does not pay this as much). A group of at most 8 categories
        # changes only features of 16 levels or more, in both stages: ResumeNames AUC 0.6444 ->
        # 0.6528, churn (state, 51 levels) 0.9229 -> 0.9237, Brier lower on both; every other
        # suite set and the tests' frames are bit-identical (BENCHMARKS.md, issue 19, session 15).
        return {
            **lightgbm_params(self, seed=seed), "num_leaves": leaves, "max_bin": max_bin,
            "max_cat_to_onehot": 4, "max_cat_threshold": 8, "monotone_constraints": monotone,
            "interaction_constraints": groups, "feature_pre_filter": False, "extra_trees": self.extra_trees,
        }

    def _bags(self, y: np.ndarray) -> list[tuple[np.ndarray, np.ndarray | None, np.ndarray | None]]:
        """(fit rows, stop rows, out-of-bag rows) of each bag, pairwise disjoint: stratified,
        seeded. Each bag holds out ``validation_share`` of the rows and splits them in two
        stratified halves: early stopping reads one, the out-of-bag log-odds (and so the
        calibration) the other, so the rounds kept were never chosen on the rows that judge
        them. Too few rows of a class to split: the held-out rows only stop (no out-of-bag
        rows); too few to hold any out: no stop rows either (a fixed ``early_stopping_rounds``
        × 2 rounds)."""
        rng = np.random.default_rng(self.random_state)
        pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
        n_pos, n_neg = round(len(pos) * self.validation_share), round(len(neg) * self.validation_share)
        if min(n_pos, n_neg) < 1 or min(len(pos) - n_pos, len(neg) - n_neg) < 1:
            return [(np.arange(len(y)), None, None)]
        out = []
        # "auto": 8 bags up to 2,500 rows, fewer as rows grow (the variance bagging removes falls
        # with n, its cost grows with n), never fewer than 3
        n_bags = max(3, min(8, round(20_000 / len(y)))) if self.n_bags == "auto" else self.n_bags
        split = min(n_pos, n_neg) >= 2
        for _ in range(n_bags):
            held_pos, held_neg = rng.permutation(pos)[:n_pos], rng.permutation(neg)[:n_neg]
            held = np.sort(np.r_[held_pos, held_neg])
            tr = np.setdiff1d(np.arange(len(y)), held, assume_unique=True)
            if not split:
                out.append((tr, held, None))
                continue
            # the stop half takes the odd row of each class: stopping is the noisier of the two
            stop = np.sort(np.r_[held_pos[: (n_pos + 1) // 2], held_neg[: (n_neg + 1) // 2]])
            oob = np.sort(np.r_[held_pos[(n_pos + 1) // 2:], held_neg[(n_neg + 1) // 2:]])
            out.append((tr, stop, oob))
        return out

    def _boost(self, lgb, data, params: dict, rows, init: np.ndarray | None):
        """Train on bag rows with early stopping on its stop rows (never its out-of-bag rows);
        returns (booster, n_iter)."""
        tr, va, _oob = rows
        # a subset takes an init score only once constructed (before, LightGBM drops it silently)
        train = data.subset(tr).construct()
        if init is not None:
            train.set_init_score(init[tr])
        if va is None:
            booster = lgb.train(params, train, num_boost_round=min(self.max_rounds, 2 * self.early_stopping_rounds))
            return booster, booster.current_iteration()
        valid = data.subset(va).construct()
        if init is not None:
            valid.set_init_score(init[va])
        booster = lgb.train(params, train, num_boost_round=self.max_rounds, valid_sets=[valid],
                            callbacks=[lgb.early_stopping(self.early_stopping_rounds, verbose=False)])
        return booster, max(booster.best_iteration, 1)

    def fit(self, X, y, *, init_score: np.ndarray | None = None) -> BoostedGAM:
        """Boost mains, find and boost pairs, per bag; read every booster into lookup tables.

        init_score: log-odds to boost from (e.g. a general model's); the fitted model's output is
        then what it adds to them (see `models.ontop.OnTopModel`).
        """
        import lightgbm as lgb

        self._check_params()
        frame, y_arr, monotone, init_score = start_fit(self, X, y, init_score)
        Xe = encode_columns(frame, self.feature_names_in_, self.categories_)
        p = self.n_features_in_
        names = list(self.feature_names_in_)
        is_cat = [n in self.categories_ for n in names]
        cat_idx = [j for j in range(p) if is_cat[j]]
        mono = [int(monotone.get(n, 0)) for n in names]
        bags = self._bags(y_arr)
        seed = self.random_state or 0

        # 1. mains
        params1 = self._params(leaves=self.num_leaves, max_bin=self.max_bin, monotone=mono,
                               groups=[[j] for j in range(p)], seed=seed)
        data1 = lgb.Dataset(Xe, label=y_arr, categorical_feature=cat_idx, free_raw_data=False, params=params1)
        mains = [self._boost(lgb, data1, params1, rows, init_score) for rows in bags]
        offset = init_score if init_score is not None else 0.0
        f1_bags = [b.predict(Xe, raw_score=True, num_iteration=k) + offset for b, k in mains]

        # 2. pair search on the mains' residuals
        isolated = set(self.main_effect_only or ())
        candidates = [j for j in range(p) if names[j] not in isolated]
        pairs: list[tuple[int, int]] = []
        if self.interactions and len(candidates) >= 2:
            prob = sigmoid(np.mean(f1_bags, axis=0))
            ranked = rank_pairs(Xe, is_cat, prob - y_arr, prob * (1 - prob), candidates,
                                min_hessian=max(1.0, self.min_child_samples * 0.05))
            pairs = [(a, b) for gain, a, b in ranked[: self.interactions] if gain > 0]

        # 3. pair terms, boosted from the mains' log-odds of the same bag
        inter = []
        local = sorted({j for pr in pairs for j in pr})
        if pairs:
            pos = {j: i for i, j in enumerate(local)}
            params2 = self._params(leaves=self.pair_num_leaves, max_bin=self.pair_max_bin,
                                   monotone=[mono[j] for j in local], groups=[[pos[a], pos[b]] for a, b in pairs],
                                   seed=seed + 1)
            data2 = lgb.Dataset(Xe[:, local], label=y_arr, categorical_feature=[pos[j] for j in cat_idx if j in pos],
                                free_raw_data=False, params=params2)
            inter = [self._boost(lgb, data2, params2, rows, base) for rows, base in zip(bags, f1_bags, strict=True)]

        self._read_tables(Xe, mains, inter, pairs, local)
        self.oob_log_odds_ = self._out_of_bag(Xe, bags, f1_bags, inter, local)
        self.calibration_ = None
        if self.calibration is not None and init_score is None:
            self._calibrate(y_arr)
        del self._parts  # only the fit weighs the parts
        self.n_rounds_ = [(k, inter[i][1] if inter else 0) for i, (_, k) in enumerate(mains)]
        return self

    @staticmethod
    def _out_of_bag(Xe: np.ndarray, bags, f1_bags, inter, local: list[int]) -> np.ndarray:
        """Per row, the mains' and the pairs' log-odds (two columns) averaged over the bags whose
        out-of-bag rows hold it: bags that neither trained nor early-stopped on it (NaN for a
        row no bag kept out of both)."""
        total, count = np.zeros((len(Xe), 2)), np.zeros(len(Xe))
        for i, (_tr, _stop, va) in enumerate(bags):
            if va is None:
                continue
            total[va, 0] += f1_bags[i][va]
            if inter:
                booster, k = inter[i]
                total[va, 1] += booster.predict(Xe[va][:, local], raw_score=True, num_iteration=k)
            count[va] += 1
        with np.errstate(invalid="ignore", divide="ignore"):
            return total / count[:, None]

    def _calibrate(self, y: np.ndarray) -> None:
        """Choose and fold in a map of the averaged log-odds, fitted on out-of-bag rows only.

        Candidates: Platt, a·(mains + pairs) + b, which keeps every ranking; and, with pairs, one
        slope each, a·mains + c·pairs + b (a, c > 0, so monotone shapes stay monotone). "auto"
        compares per-row Brier losses cross-fitted over 5 folds of the out-of-bag rows: Platt is
        kept if its mean is clearly below the raw sigmoid's, the two slopes (which may cost AUC)
        if clearly below both (`clearly_lower`: out-of-bag rows are few, and each is scored by
        one bag, noisier than the average the map is applied to); "platt" always Platt. The map is folded into the tables
        (`_fold_map`): the score stays an exact sum of contributions.
        """
        from sklearn.model_selection import StratifiedKFold

        from models.calibration import clearly_lower, cross_fitted_platt, platt_coefficients

        parts = self.oob_log_odds_
        seen = np.flatnonzero(~np.isnan(parts[:, 0]))
        m, q, yo = parts[seen, 0], parts[seen, 1], y[seen]
        if min(yo.sum(), len(yo) - yo.sum()) < 5:
            return
        z = m + q
        briers: dict[str, float] = {}
        try:
            if self.calibration == "platt":
                kind, (a, b) = "platt", platt_coefficients(z, yo)
                coef = (a, a, b)
            else:
                folds = list(StratifiedKFold(5, shuffle=True, random_state=self.random_state).split(z[:, None], yo))
                loss = {"raw": (sigmoid(z) - yo) ** 2,
                        "platt": (cross_fitted_platt(z, yo, folds) - yo) ** 2}
                if self.pairs_ and q.std() > 0:
                    loss["two_slopes"] = (_cross_fitted_two_slopes(m, q, yo, folds) - yo) ** 2
                briers = {k: float(v.mean()) for k, v in loss.items()}
                # a map only when clearly better (one standard error, `clearly_lower`): Platt
                # than raw; two slopes, which may reorder subjects, than both
                kind = "platt" if clearly_lower(loss["platt"], loss["raw"]) else "raw"
                if "two_slopes" in loss and all(clearly_lower(loss["two_slopes"], loss[k]) for k in ("raw", "platt")):
                    kind = "two_slopes"
                if kind == "raw":
                    return
                if kind == "platt":
                    a, b = platt_coefficients(z, yo)
                    coef = (a, a, b)
                else:
                    coef = _two_slopes(m, q, yo)
        except ValueError:  # out-of-bag scores that do not rank: leave the model as fitted
            return
        self._fold_map(*coef)
        self.calibration_ = {"kind": kind, "mains": coef[0], "pairs": coef[1], "intercept": coef[2],
                             "rows": len(seen), "brier": briers}

    # ----------------------------------------------------------- reading boosters
    def _read_tables(self, Xe: np.ndarray, mains, inter, pairs: list[tuple[int, int]], local: list[int]) -> None:
        """Lookup tables of the mains boosters' mean plus the pair boosters' mean, kept in two
        parts (``_parts``: every step below is linear in each part) so that `_fold_map` can
        weigh them without reading the boosters again."""
        p = self.n_features_in_
        names = list(self.feature_names_in_)
        n_cat = [len(self.categories_[n]) if n in self.categories_ else None for n in names]
        fine: list[set[float]] = [set() for _ in range(p)]
        coarse: dict[tuple[int, int], tuple[set[float], set[float]]] = {pr: (set(), set()) for pr in pairs}
        for booster, k in mains:
            for tree in _tree_splits(booster, k):
                for f, t in tree:
                    if t is not None:
                        fine[f].add(t)
        for booster, k in inter:
            for tree in _tree_splits(booster, k):
                used = {local[f] for f, _ in tree}
                for f, t in tree:
                    if t is None:
                        continue
                    fine[local[f]].add(t)
                    for a, b in pairs:
                        if a in used and b in used and local[f] in (a, b):
                            coarse[(a, b)][0 if local[f] == a else 1].add(t)
        # a split at +inf only sends NaN one way: as an edge it would bound an empty region
        fine = [{t for t in s if t < np.inf} for s in fine]
        coarse = {pr: tuple({t for t in s if t < np.inf} for s in sides) for pr, sides in coarse.items()}
        self.edges_ = [np.array(sorted(s), dtype=float) for s in fine]
        reps = [_representatives(self.edges_[j], n_cat[j]) for j in range(p)]

        # mains of the one-feature boosters: their TreeSHAP values on a grid of representatives
        grid = np.empty((max(len(r) for r in reps), p))
        for j, r in enumerate(reps):
            grid[: len(r), j] = r
            grid[len(r):, j] = r[-1]
        tables = [np.zeros(len(r)) for r in reps]
        intercept = 0.0
        w = 1.0 / len(mains)
        for booster, k in mains:
            contrib = booster.predict(grid, pred_contrib=True, num_iteration=k)
            for j in range(p):
                tables[j] += w * contrib[: len(reps[j]), j]
            intercept += w * float(contrib[0, -1])

        pair_edges, pair_tables, pair_maps = [], [], []
        tables_q, intercept_q = [np.zeros(len(r)) for r in reps], 0.0  # the pair boosters' part
        if pairs:
            pos = {j: i for i, j in enumerate(local)}
            anchor = np.array([reps[j][0] for j in local])
            c_edges = {pr: tuple(np.array(sorted(s), dtype=float) for s in coarse[pr]) for pr in pairs}
            c_reps = {pr: tuple(_representatives(c_edges[pr][s], n_cat[pr[s]]) for s in (0, 1)) for pr in pairs}
            blocks = [anchor[None, :]]
            for j in local:  # one-feature part of the pair boosters, on the fine grid
                rows = np.repeat(anchor[None, :], len(reps[j]), axis=0)
                rows[:, pos[j]] = reps[j]
                blocks.append(rows)
            for a, b in pairs:
                ra, rb = c_reps[(a, b)]
                for axis, r in ((a, ra), (b, rb)):
                    rows = np.repeat(anchor[None, :], len(r), axis=0)
                    rows[:, pos[axis]] = r
                    blocks.append(rows)
                rows = np.repeat(anchor[None, :], len(ra) * len(rb), axis=0)
                rows[:, pos[a]] = np.repeat(ra, len(rb))
                rows[:, pos[b]] = np.tile(rb, len(ra))
                blocks.append(rows)
            queries = np.vstack(blocks)
            f2 = np.mean([b.predict(queries, raw_score=True, num_iteration=k) for b, k in inter], axis=0)
            at = 1
            f_anchor = f2[0]
            intercept_q += f_anchor
            for j in local:
                tables_q[j] += f2[at: at + len(reps[j])] - f_anchor
                at += len(reps[j])
            for a, b in pairs:
                ra, rb = c_reps[(a, b)]
                fa = f2[at: at + len(ra)]
                at += len(ra)
                fb = f2[at: at + len(rb)]
                at += len(rb)
                fab = f2[at: at + len(ra) * len(rb)].reshape(len(ra), len(rb))
                at += len(ra) * len(rb)
                pair_tables.append(fab - fa[:, None] - fb[None, :] + f_anchor)
                pair_edges.append(c_edges[(a, b)])
                # fine region → coarse region (coarse edges are a subset of the fine ones)
                pair_maps.append(tuple(
                    _regions(reps[j], c_edges[(a, b)][s], n_cat[j]) for s, j in enumerate((a, b))))

        # purify pairs (product of training marginals) into the mains, centre mains on training
        regions = [_regions(Xe[:, j], self.edges_[j], n_cat[j]) for j in range(p)]
        shares = [np.bincount(regions[j], minlength=len(reps[j])) / len(Xe) for j in range(p)]
        for (a, b), table, (ma, mb) in zip(pairs, pair_tables, pair_maps, strict=True):
            wa = np.bincount(ma, weights=shares[a], minlength=table.shape[0])
            wb = np.bincount(mb, weights=shares[b], minlength=table.shape[1])
            row = table @ wb
            col = wa @ table
            grand = float(wa @ row)
            table -= row[:, None] + col[None, :] - grand
            tables_q[a] += row[ma] - grand
            tables_q[b] += col[mb] - grand
            intercept_q += grand
        for j in range(p):
            mean, mean_q = float(shares[j] @ tables[j]), float(shares[j] @ tables_q[j])
            tables[j] -= mean
            tables_q[j] -= mean_q
            intercept += mean
            intercept_q += mean_q
        self._parts = (tables, float(intercept), tables_q, float(intercept_q), pair_tables)
        self._fold_map(1.0, 1.0, 0.0)
        self.pairs_ = list(pairs)
        self.pair_edges_ = pair_edges
        self.pair_maps_ = pair_maps

    def _fold_map(self, a: float, c: float, b: float) -> None:
        """Tables of a × mains part + c × pairs part + b (a = c: the Platt map a·s + b)."""
        tables, intercept, tables_q, intercept_q, pair_tables = self._parts
        self.main_tables_ = [a * t + c * tq for t, tq in zip(tables, tables_q, strict=True)]
        self.intercept_ = float(a * intercept + c * intercept_q + b)
        self.pair_tables_ = [c * t for t in pair_tables]

    # ---------------------------------------------------------------- prediction
    def _regions_of(self, X) -> np.ndarray:
        check_is_fitted(self, "main_tables_")
        Xe = encoded(self, X)
        out = np.empty(Xe.shape, dtype=np.int64)
        for j, name in enumerate(self.feature_names_in_):
            cats = self.categories_.get(name)
            out[:, j] = _regions(Xe[:, j], self.edges_[j], None if cats is None else len(cats))
        return out

    def contributions(self, X) -> Contributions:
        """Exact split of the log-odds: one column per feature, one per declared pair."""
        idx = self._regions_of(X)
        values = np.empty(idx.shape)
        for j, table in enumerate(self.main_tables_):
            values[:, j] = table[idx[:, j]]
        pair_values = np.empty((len(idx), len(self.pairs_)))
        for k, ((a, b), table, (ma, mb)) in enumerate(zip(self.pairs_, self.pair_tables_, self.pair_maps_, strict=True)):
            pair_values[:, k] = table[ma[idx[:, a]], mb[idx[:, b]]]
        names = list(self.feature_names_in_)
        return Contributions(values, self.intercept_, names, pair_values,
                             [(names[a], names[b]) for a, b in self.pairs_])

    def decision_function(self, X) -> np.ndarray:
        """Log-odds of the adverse outcome: intercept + main effects + pair terms (lookup)."""
        return self.contributions(X).total()

    # ------------------------------------------------------------------- reading
    def shape_functions(self) -> dict[str, ShapeFunction]:
        """Main effects as step functions (log-odds, centred on the training population)."""
        check_is_fitted(self, "main_tables_")
        out = {}
        for j, name in enumerate(self.feature_names_in_):
            table = self.main_tables_[j]
            cats = self.categories_.get(name)
            out[name] = ShapeFunction(name, cats is not None, np.empty(0) if cats is not None else self.edges_[j],
                                      table[:-1].copy(), float(table[-1]), None if cats is None else list(cats))
        return out

    def pair_functions(self) -> dict[tuple[str, str], PairFunction]:
        """Declared pair terms (purified: zero mean over each feature), by feature names."""
        check_is_fitted(self, "main_tables_")
        names = list(self.feature_names_in_)
        out = {}
        for (a, b), edges, table in zip(self.pairs_, self.pair_edges_, self.pair_tables_, strict=True):
            cats = (self.categories_.get(names[a]), self.categories_.get(names[b]))
            out[(names[a], names[b])] = PairFunction((names[a], names[b]), edges, cats, table.copy())
        return out
