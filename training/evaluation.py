"""Validation figures used by the report and the promotion gate: discrimination with bootstrap
intervals and grade tables (stability, the PSI, is ``stability.psi``, shared with monitoring).

Every function takes plain arrays and returns plain numbers or frames: no I/O, no global state.
Bootstrap intervals take an explicit ``seed`` so that a rerun gives the same report.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

# Calibration figures (Brier, reliability, ECE) and the Wilson interval live in models.calibration.
from models.calibration import wilson_interval
from models.discrimination import ks_statistic
from models.meta import GRADES


@dataclass(frozen=True)
class Interval:
    """A point estimate with a two-sided confidence interval."""

    value: float
    low: float
    high: float

    def as_dict(self) -> dict[str, float]:
        return {"value": self.value, "low": self.low, "high": self.high}


def _as_arrays(y_true: Sequence[int] | np.ndarray, p: Sequence[float] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true, dtype=int)
    score = np.asarray(p, dtype=float)
    if y.shape != score.shape:
        raise ValueError(f"y_true has shape {y.shape} but scores have shape {score.shape}; they must match")
    return y, score


def auc(y_true: Sequence[int] | np.ndarray, p: Sequence[float] | np.ndarray) -> float:
    """ROC AUC; NaN when only one class is present (an AUC is then undefined, not 0.5)."""
    y, score = _as_arrays(y_true, p)
    if y.min(initial=0) == y.max(initial=0):
        return float("nan")
    return float(roc_auc_score(y, score))


def ks(y_true: Sequence[int] | np.ndarray, p: Sequence[float] | np.ndarray) -> float:
    """Kolmogorov–Smirnov statistic: max distance between the score CDFs of bads and goods."""
    return ks_statistic(*_as_arrays(y_true, p))


def _fast_auc(y: np.ndarray, score: np.ndarray) -> float:
    """Mann–Whitney AUC with average ranks for ties (same value as sklearn, ~20× faster)."""
    from scipy.stats import rankdata

    n_pos = int(y.sum())
    n_neg = len(y) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(score)
    return float((ranks[y == 1].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


_STATISTICS = {
    "auc": _fast_auc,
    "ks": ks_statistic,
    "gini": lambda a, b: 2 * _fast_auc(a, b) - 1,
}


def _interval(point: float, draws: list[float], level: float) -> Interval:
    if not draws:
        return Interval(point, float("nan"), float("nan"))
    alpha = (1 - level) / 2
    return Interval(point, float(np.quantile(draws, alpha)), float(np.quantile(draws, 1 - alpha)))


def bootstrap_interval(
    y_true: Sequence[int] | np.ndarray,
    p: Sequence[float] | np.ndarray,
    statistic: str = "auc",
    *,
    n_boot: int = 200,
    level: float = 0.95,
    seed: int = 0,
) -> Interval:
    """Percentile bootstrap interval of ``auc``, ``ks`` or ``gini`` (resampling subjects)."""
    y, score = _as_arrays(y_true, p)
    if statistic not in _STATISTICS:
        raise ValueError(f"statistic {statistic!r} is not one of {sorted(_STATISTICS)}")
    fn = _STATISTICS[statistic]
    point = fn(y, score)
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(n_boot):
        idx = rng.integers(0, len(y), len(y))
        value = fn(y[idx], score[idx])
        if not np.isnan(value):
            draws.append(value)
    return _interval(point, draws, level)


def paired_auc_difference(
    y_true: Sequence[int] | np.ndarray,
    p_new: Sequence[float] | np.ndarray,
    p_old: Sequence[float] | np.ndarray,
    *,
    n_boot: int = 200,
    level: float = 0.95,
    seed: int = 0,
) -> Interval:
    """AUC(new) − AUC(old) on the same subjects, with a paired bootstrap interval."""
    y, new = _as_arrays(y_true, p_new)
    _, old = _as_arrays(y_true, p_old)
    point = _fast_auc(y, new) - _fast_auc(y, old)
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(n_boot):
        idx = rng.integers(0, len(y), len(y))
        value = _fast_auc(y[idx], new[idx]) - _fast_auc(y[idx], old[idx])
        if not np.isnan(value):
            draws.append(value)
    return _interval(point, draws, level)


def grade_table(y_true: Sequence[int] | np.ndarray, grades: Sequence[str] | np.ndarray) -> pd.DataFrame:
    """Count, share, bad rate and its 95 % Wilson interval per grade A–D (empty grades kept)."""
    y = np.asarray(y_true, dtype=int)
    g = np.asarray(grades, dtype=object)
    total = len(y)
    rows = []
    for grade in GRADES:
        mask = g == grade
        n = int(mask.sum())
        bads = int(y[mask].sum())
        low, high = wilson_interval(bads, n)
        rows.append(
            {
                "grade": grade,
                "count": n,
                "share": n / total if total else float("nan"),
                "bads": bads,
                "bad_rate": bads / n if n else float("nan"),
                "bad_rate_low": low,
                "bad_rate_high": high,
            }
        )
    return pd.DataFrame(rows)


def grades_monotone(table: pd.DataFrame, *, strict: bool = False) -> bool:
    """Whether observed bad rates rise from A to D over the non-empty grades."""
    rates = table.loc[table["count"] > 0, "bad_rate"].to_numpy()
    steps = np.diff(rates)
    return bool(np.all(steps > 0) if strict else np.all(steps >= 0))


def grades_separated(table: pd.DataFrame) -> bool:
    """Whether the 95 % intervals of neighbouring non-empty grades do not overlap."""
    present = table.loc[table["count"] > 0]
    highs = present["bad_rate_high"].to_numpy()[:-1]
    lows = present["bad_rate_low"].to_numpy()[1:]
    return bool(np.all(highs < lows))
