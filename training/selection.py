"""Honest choice among candidate models on any table with a binary target (`tiers fit --model auto`).

The rule (`one_se_choice`, `RULE`): the default candidate, the first one (in `table_candidates`
the GAM, our glass box), is kept unless another candidate beats it on the same folds by more than
one standard error of their paired per-fold AUC differences, with a mean Brier no higher than
the default's; of those that do, the highest mean AUC wins. The standard error is Nadeau and Bengio's corrected one, √((1/k + 1/(k − 1)) · v): the
k folds' training sets overlap, so the naive sd/√k is too small. v, the variance of one fold's
difference, is the larger of the k differences' variance and the mean over folds of DeLong's
paired variance on the fold's rows: with 3 folds the former has 2 degrees of freedom and is
often small by chance, while a fold's difference varies at least as much as its rows make it.

Measured on 10 outer folds each of the suite's health, HMDA and German credit sets (3 inner
folds of the outer training part; AUC / Brier of the delivered model minus the GAM's on the
outer test folds): the highest mean AUC of five candidates picks noise (the winner's curse),
−0.0021 / +0.00010 (health), −0.0018 / −0.00005 (HMDA), +0.0046 / −0.00029 (German); the rule
with the 3 differences' variance alone −0.0008 / +0.00005, +0.0005 / −0.00006, −0.0008 / +0.00077;
the rule as it is 0 / 0, 0 / 0, +0.0007 / −0.00005 (one switch in 30 folds).

The screen (`SCREEN_Z`, in `choose`) runs the inner folds one after another and stops fitting a
challenger once its margin so far, projected over the folds left with two standard errors of
their rows, cannot clear the bar; with no challenger left, the default is not refitted either.
On the suite's 80 outer folds (the screened and the unscreened choice read from the same inner
fits) it chose as the unscreened rule in every fold, German's one switch included, with 27–64 %
less inner-fit CPU
(BENCHMARKS.md, issue 19, session 16).

Brier enters twice. In the rule: AUC chooses (ranking is what a grade is for), but a challenger
must not deliver worse probabilities than the default (its mean Brier, after its own Platt map if
kept, at most the default's).

`choose` compares the candidates by cross-validation on the rows it is given only (in nested
cross-validation: the outer training part), each candidate's inner Brier as delivered (after
its Platt map, if kept). And in calibration: a Platt map of a candidate's log-odds is kept when its
per-row Brier, cross-fitted over the same inner folds (each fold's map fitted on the other
folds' out-of-fold log-odds), is lower by more than one standard error
(`models.calibration.clearly_lower`, the GAM's own rule for its maps). A candidate that
calibrates itself (a ``calibration`` setting, as `BoostedGAM` maps its log-odds out of bag) gets
no second map: on the suite's HMDA, Platt on top of the GAM raised its Brier. `AutoSelect` is
that choice as an estimator: choose, refit the winner on all rows, apply the calibration if
chosen. Platt is monotone increasing, so AUC, KS and the ranking of subjects are those of the
winner; only probabilities change.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold

from models.calibration import clearly_lower, cross_fitted_platt, fit_calibrator
from models.discrimination import paired_auc_variance

Maker = Callable[[], Any]
FitOne = Callable[[str, np.ndarray, str], Any]


RULE = ("the default candidate (the first: gam) unless another beats its AUC on the same folds by more than one "
        "standard error of the paired per-fold differences (Nadeau–Bengio corrected, √((1/k + 1/(k−1))·v), v "
        "the larger of the differences' variance and DeLong's paired variance on a fold's rows) with a mean "
        "Brier no higher than the default's; of those that do, the highest mean AUC. Platt on a "
        "candidate only if it does not calibrate itself and its cross-fitted Brier is lower by more than one "
        "standard error. Screen: the folds run one after another; a challenger whose mean margin so far is below "
        "the bar minus 2·√m·s/k (s: one fold's paired row standard error, DeLong; m folds left of k) is not "
        "fitted on the other folds; when none is left, the default is kept on the folds run")
# how many of the remaining folds' paired row standard errors a challenger's projected margin may
# fall short of the rule's bar and still go on to the next inner fold (`choose`, `RULE`)
SCREEN_Z = 2.0
# the same rule for a reader of Chinese (`tiers fit` prints both; one place for both wordings)
RULE_ZH = ("选用默认候选模型（第一个：gam），除非另一候选模型在相同各折上的 AUC 比它高出逐折配对差值的一个标准误以上"
           "（Nadeau–Bengio 校正，√((1/k + 1/(k−1))·v)，v 取各折差值方差与单折样本上 DeLong 配对方差中的较大者），"
           "且平均 Brier 分数不高于默认模型；符合条件者取平均 AUC 最高的一个。仅当候选模型自身不做校准、且交叉拟合后的 "
           "Brier 分数降低超过一个标准误时，才对其做 Platt 校准。筛选：各内层折依次进行；若某候选模型迄今的平均 AUC 差值低于门槛减去 2·√m·s/k（s 为单折样本配对标准误，DeLong；m 为 k 折中剩余的折数），"
           "则不再在其余各折上拟合；若无候选模型留下，则凭已完成的各折保留默认模型")


def table_candidates(seed: int) -> dict[str, Maker]:
    """The candidates `tiers fit` compares on a table of unknown meaning (no declared monotonicity);
    the first, the GAM, is the default that `one_se_choice` keeps unless clearly beaten."""
    from models import BoostedGAM, MonotoneGBM, ScorecardModel, default_blend

    return {
        "gam": lambda: BoostedGAM(random_state=seed),
        "scorecard": lambda: ScorecardModel(C=0.3),
        "gbm": lambda: MonotoneGBM(additive=True, n_estimators=400, learning_rate=0.03, min_child_samples=30,
                                   subsample=0.7, colsample_bytree=0.7, random_state=seed),
        "blend": lambda: default_blend(random_state=seed),
        "blend-shallow": lambda: default_blend(additive=False, random_state=seed),
    }


def one_se_choice(fold_auc: Mapping[str, Sequence[float]], default: str, *,
                  brier: Mapping[str, float] | None = None,
                  row_var: Mapping[str, float] | None = None) -> tuple[str, dict[str, dict]]:
    """The winner by `RULE` from each candidate's AUC on the same k folds (and its mean Brier over
    them, if given), and every other candidate's margin over ``default``: {auc: mean paired
    difference, se: its corrected standard error √((1/k + 1/(k − 1)) · v), brier: its Brier minus
    the default's (with ``brier``), beats_default: auc > se and brier ≤ 0}. v is the larger of the
    per-fold differences' variance and ``row_var[name]`` (the mean over folds of DeLong's paired
    variance on the fold's rows, `paired_row_variance`), if given. ValueError if ``default`` is
    not a candidate."""
    if default not in fold_auc:
        raise ValueError(f"default {default!r} is not one of the candidates {list(fold_auc)}")
    base = np.asarray(fold_auc[default], dtype=float)
    k = len(base)
    margins: dict[str, dict] = {}
    for name, aucs in fold_auc.items():
        if name == default:
            continue
        d = np.asarray(aucs, dtype=float) - base
        v = max(float(d.var(ddof=1)), (row_var or {}).get(name, 0.0))
        se = float(np.sqrt((1 / k + 1 / (k - 1)) * v)) if k > 1 else float("inf")
        margins[name] = {"auc": float(d.mean()), "se": se}
        if brier is not None:
            margins[name]["brier"] = float(brier[name] - brier[default])
        margins[name]["beats_default"] = bool(d.mean() > se and margins[name].get("brier", 0.0) <= 0)
    beating = [n for n, m in margins.items() if m["beats_default"]]
    winner = max(beating, key=lambda n: float(np.mean(fold_auc[n]))) if beating else default
    return winner, margins


def log_odds(model: Any, X) -> np.ndarray:
    """The model's log-odds of the adverse outcome, from its probabilities (any candidate)."""
    p = np.clip(model.predict_proba(X)[:, 1], 1e-12, 1 - 1e-12)
    return np.log(p / (1 - p))


def paired_row_variance(y: Sequence[np.ndarray], score: Sequence[np.ndarray], default: Sequence[np.ndarray]) -> float:
    """Mean over folds (per fold: the outcomes, a candidate's and the default's scores of its
    scored rows) of DeLong's variance of the paired AUC difference on that fold's rows: how much
    one fold's difference varies from its rows alone (`one_se_choice`'s floor)."""
    return float(np.mean([paired_auc_variance(yf, a, b) for yf, a, b in zip(y, score, default, strict=True)]))


@dataclass
class Choice:
    """What the inner folds decided: the winner by `RULE`, and whether to Platt-calibrate it."""

    winner: str
    default: str
    inner_auc: dict[str, float]  # mean over the inner folds
    margins: dict[str, dict]  # every other candidate over the default (`one_se_choice`)
    brier_raw: float  # winner's out-of-fold Brier over the inner folds
    brier_calibrated: float  # the same with the cross-fitted Platt map
    calibrator: Any = field(default=None, repr=False)  # fitted on all out-of-fold log-odds, if chosen
    losses: dict[str, np.ndarray] = field(default_factory=dict, repr=False)  # per-row Brier: raw, calibrated

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
        return {"chosen": self.winner, "default": self.default, "rule": RULE, "inner_auc": self.inner_auc,
                "margins": self.margins, "calibrated": self.calibrated,
                "inner_brier": {"raw": self.brier_raw, "calibrated": self.brier_calibrated}}


def choose(makers: Mapping[str, Maker], X: pd.DataFrame, y: np.ndarray, *, inner_cv: int, seed: int,
           fit: FitOne | None = None, advance: Callable[[], None] | None = None, screen: bool = True) -> Choice:
    """Cross-validate every candidate on (X, y) alone; pick by `RULE` (the first candidate is the
    default); decide the calibration (module docstring).

    screen (`SCREEN_Z`): the folds are run one after the other, and after each but the last a
    challenger is dropped when it can no longer plausibly clear the rule's bar: when its mean
    margin over the default so far, d, is below bar − SCREEN_Z · √m · s / k (s: the paired row
    standard error of one fold, DeLong, mean over the folds seen; bar: the rule's smallest
    standard error, √(1/k + 1/(k − 1)) · s; m folds left of k), i.e. when even the other folds
    going as well as these, plus SCREEN_Z standard errors of their rows, would leave its k-fold
    mean below the bar. When no challenger is left, the default is kept without fitting it on the
    other folds, its figures (and Platt decision) from the folds run. Challengers dropped are
    reported with their margin so far (``screened_out``, ``folds``). screen=False: every
    candidate on every fold.

    fit(name, rows, what) fits candidate ``name`` on ``rows`` (default: ``makers[name]().fit``);
    ``what`` names the fold for error messages. advance() is called after every fit, and once for
    every fit the screen saves (so a progress count of candidates × folds ends at its total).
    """
    y = np.asarray(y)

    def default_fit(name: str, rows: np.ndarray, what: str) -> Any:
        return makers[name]().fit(X.iloc[rows], y[rows])

    fit = fit or default_fit
    folds = list(StratifiedKFold(inner_cv, shuffle=True, random_state=seed).split(X, y))
    k = len(folds)
    z = {name: np.full(len(y), np.nan) for name in makers}
    aucs: dict[str, list[float]] = {name: [] for name in makers}
    self_calibrated: dict[str, bool] = {}
    default = next(iter(makers))
    alive = list(makers)
    screened: dict[str, dict] = {}
    ran = 0  # folds run
    for i, (tr, te) in enumerate(folds):
        for name in alive:
            model = fit(name, tr, f"inner fold {i + 1}")
            self_calibrated[name] = getattr(model, "calibration", None) is not None
            z[name][te] = log_odds(model, X.iloc[te])
            aucs[name].append(float(roc_auc_score(y[te], z[name][te])))
            if advance:
                advance()
        ran = i + 1
        if not screen or ran == k:
            continue
        seen = [f for _tr, f in folds[:ran]]
        for name in alive[1:]:
            d = float(np.mean(aucs[name]) - np.mean(aucs[default]))
            s = float(np.sqrt(paired_row_variance([y[f] for f in seen], [z[name][f] for f in seen],
                                                  [z[default][f] for f in seen])))
            bar = float(np.sqrt(1 / k + 1 / (k - 1))) * s  # the rule's smallest standard error
            if d < bar - SCREEN_Z * np.sqrt(k - ran) * s / k:
                screened[name] = {"auc": d, "se": bar, "folds": ran}
        alive = [n for n in alive if n not in screened]
        if alive == [default] and len(makers) > 1:  # challengers were screened out: stop
            break
    if advance:
        for _ in range(len(makers) * k - sum(len(a) for a in aucs.values())):
            advance()
    full = [n for n in alive if len(aucs[n]) == k] if len(alive) > 1 else []
    # per candidate: the rows it was scored on, and the folds its Platt map is cross-fitted over
    # (the folds it was run on; one fold alone: three stratified parts of its rows)
    losses: dict[str, dict[str, np.ndarray]] = {}
    for name in makers:
        cv = folds[: len(aucs[name])]
        rows = np.sort(np.concatenate([te for _tr, te in cv]))
        if len(cv) == 1:
            few = int(min(y[rows].sum(), len(rows) - y[rows].sum()))
            cv = [] if few < 2 else [(rows[a], rows[b]) for a, b in StratifiedKFold(
                min(3, few), shuffle=True, random_state=seed).split(rows, y[rows])]
        else:
            cv = [(np.setdiff1d(rows, te), te) for _tr, te in cv]
        raw, cal = np.full(len(y), np.nan), np.full(len(y), np.nan)
        raw[rows] = (1.0 / (1.0 + np.exp(-z[name][rows])) - y[rows]) ** 2
        cal[rows] = (cross_fitted_platt(np.nan_to_num(z[name]), y, cv)[rows] - y[rows]) ** 2
        losses[name] = {"raw": raw, "calibrated": cal}
    platt = {name: not self_calibrated[name] and clearly_lower(*(loss[s][~np.isnan(loss[s])] for s in ("calibrated", "raw")))
             for name, loss in losses.items()}
    delivered = {name: loss["calibrated" if platt[name] else "raw"] for name, loss in losses.items()}
    if full:
        scored = [te for _tr, te in folds]
        row_var = {name: paired_row_variance([y[te] for te in scored], [z[name][te] for te in scored],
                                             [z[default][te] for te in scored]) for name in full if name != default}
        winner, margins = one_se_choice({n: aucs[n] for n in full}, default,
                                        brier={n: float(delivered[n].mean()) for n in full}, row_var=row_var)
    else:
        winner, margins = default, {}
    for name, m in screened.items():
        rows = ~np.isnan(delivered[name])
        brier = float(np.mean(delivered[name][rows] - delivered[default][rows]))
        margins[name] = {**m, "brier": brier, "beats_default": False, "screened_out": True}
    margins = {n: margins[n] for n in makers if n in margins}
    calibrator = None
    if platt[winner]:
        rows = ~np.isnan(z[winner])
        calibrator = fit_calibrator(z[winner][rows], y[rows], method="sigmoid")
    lw = {s: v[~np.isnan(v)] for s, v in losses[winner].items()}
    return Choice(winner, default, {name: float(np.mean(a)) for name, a in aucs.items()}, margins,
                  float(lw["raw"].mean()), float(lw["calibrated"].mean()), calibrator, lw)


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
