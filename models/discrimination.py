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
