"""How well a score separates bads from goods: the Kolmogorov–Smirnov statistic, the one
definition training (the report, the bootstrap, the gate), monitoring and ``tiers fit`` use.
Pure: arrays in, a number out."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def ks_statistic(y_true: Sequence[int] | np.ndarray, score: Sequence[float] | np.ndarray) -> float:
    """Kolmogorov–Smirnov: the largest gap between the score CDFs of bads (``y = 1``) and goods,
    i.e. max over thresholds of TPR − FPR, a higher score meaning riskier. Tied scores are one
    threshold (the value equals ``max(tpr − fpr)`` of ``sklearn.metrics.roc_curve``). NaN when
    only one class is present (the statistic is then undefined)."""
    y = np.asarray(y_true, dtype=int)
    score = np.asarray(score, dtype=float)
    n_pos = int(y.sum())
    n_neg = len(y) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(-score, kind="stable")
    s_sorted, y_sorted = score[order], y[order]
    # Evaluate the CDF gap only at the ends of runs of tied scores.
    last_of_tie = np.r_[s_sorted[1:] != s_sorted[:-1], True]
    tpr = np.cumsum(y_sorted)[last_of_tie] / n_pos
    fpr = np.cumsum(1 - y_sorted)[last_of_tie] / n_neg
    return float(np.max(tpr - fpr))


def delong_components(y_true: Sequence[int] | np.ndarray,
                      risk: Sequence[float] | np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """AUC of ``risk`` (higher = riskier) and DeLong's structural components: one per adverse
    subject (the share of non-adverse ones it outranks, ties half) and one per non-adverse subject
    (the share of adverse ones that outrank it). By midranks (Sun & Xu 2014): one sort, no
    pairwise comparison. ValueError when an outcome is absent."""
    from scipy.stats import rankdata

    y = np.asarray(y_true).astype(bool)
    r = np.asarray(risk, dtype=float)
    pos, neg = r[y], r[~y]
    m, n = pos.size, neg.size
    if m == 0 or n == 0:
        raise ValueError(f"AUC needs both outcomes; got {m} adverse and {n} non-adverse subjects")
    tz = rankdata(np.concatenate([pos, neg]))
    tx, ty = rankdata(pos), rankdata(neg)
    auc = (tz[:m].sum() - m * (m + 1) / 2) / (m * n)
    return float(auc), (tz[:m] - tx) / n, 1.0 - (tz[m:] - ty) / m


def _component_variance(v01: np.ndarray, v10: np.ndarray) -> float:
    return float((v01.var(ddof=1) if v01.size > 1 else 0.0) / v01.size
                 + (v10.var(ddof=1) if v10.size > 1 else 0.0) / v10.size)


def auc_with_variance(y_true, risk) -> tuple[float, float]:
    """AUC of ``risk`` and its DeLong variance (`delong_components`)."""
    auc, v01, v10 = delong_components(y_true, risk)
    return auc, _component_variance(v01, v10)


def paired_auc_variance(y_true, a, b) -> float:
    """DeLong's variance of AUC(a) − AUC(b), two scores of the same subjects (their covariance
    counted: the difference of the components)."""
    _, a01, a10 = delong_components(y_true, a)
    _, b01, b10 = delong_components(y_true, b)
    return _component_variance(a01 - b01, a10 - b10)
