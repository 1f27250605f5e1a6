"""Decile PSI (population stability index): the project's one PSI.

Evidently's ``psi`` uses equal-width bins and ignores ``n_bins``, which puts most of a skewed
credit feature (mostly zero penalty counts) in one bin. Credit practice bins on the deciles of
the reference, so that is what :func:`decile_psi` does:

* numeric: the inner cut points are the 10 %, 20 %, …, 90 % quantiles of the reference taken
  *at observed values* (``method="lower"``) and deduplicated, so ties and discrete features (a
  count that is 0 for 80 % of subjects, a score with a floor) give fewer, wider bins instead of
  empty ones; bins are right-closed ``(lower, upper]``, so every bin ends on a value the
  reference holds and a tied mass, the minimum included, keeps a bin of its own; the outer bins
  are open to ±inf so current values outside the reference range still count;
* categorical (object, category, bool dtype): one bin per category seen in either sample;
* missing values: always their own named bin ``"missing"``, never dropped.

PSI = Σ (cur − ref) · ln(cur / ref) over bins, with each share floored at ``epsilon``
(default 1e-4): an empty bin would make the logarithm infinite; with the floor, a bin that is
empty on one side contributes at most about ``share · ln(share / 1e-4)`` (≈ 0.07 for a 1 % bin).

Why these semantics for a score too (training's report used to bin ``[a, b)`` on interpolated
quantiles with the outer edges replaced by ±inf): a score the model could not compute is drift
and must weigh in its own bin, where dropping it made the shares sum to less than one (and one
missing reference value made the edges NaN and the PSI 0); and replacing the lowest edge by −inf
dropped the cut at a tied minimum that covers a decile or more, merging the tie with the values
above it up to the next cut, so mass moving off a floor to just above it went unseen.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import pandas as pd
from pandas.api.types import is_bool_dtype, is_numeric_dtype

#: Floor for a bin share, so an empty bin contributes a finite amount (see module docstring).
PSI_EPSILON = 1e-4
MISSING_BIN = "missing"


@dataclass(frozen=True)
class PsiBin:
    """One bin of a PSI table: its label, the shares on each side and its PSI contribution."""

    label: str
    reference_share: float
    current_share: float
    contribution: float


@dataclass(frozen=True)
class PsiResult:
    """PSI of one variable, with the bins it was computed on."""

    psi: float
    bins: list[PsiBin]
    n_reference: int
    n_current: int

    def to_dict(self) -> dict:
        return {
            "psi": self.psi,
            "n_reference": self.n_reference,
            "n_current": self.n_current,
            "bins": [b.__dict__ for b in self.bins],
        }


def is_categorical(values: pd.Series) -> bool:
    """Whether a column is binned per category rather than on reference deciles."""
    return not is_numeric_dtype(values) or is_bool_dtype(values)


def reference_edges(reference: np.ndarray, *, n_bins: int = 10) -> np.ndarray:
    """Inner cut points of the decile bins: unique reference quantiles (missing values ignored)."""
    finite = reference[~np.isnan(reference)]
    if finite.size == 0:
        return np.empty(0)
    qs = np.linspace(0.0, 1.0, n_bins + 1)[1:-1]
    # method="lower" keeps edges on observed values, so a discrete feature's bins are its values
    # Kept even when an edge is the reference maximum (discrete or constant features): the
    # bin above it is empty in the reference, so values beyond the reference range show as drift.
    return np.unique(np.quantile(finite, qs, method="lower"))


def _numeric_counts(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Counts per bin ``(−inf, e0], (e0, e1], …, (ek, inf), missing``."""
    missing = np.isnan(values)
    idx = np.searchsorted(edges, values[~missing], side="left")
    counts = np.bincount(idx, minlength=edges.size + 1).astype(float)
    return np.append(counts, missing.sum())


def _numeric_labels(edges: np.ndarray) -> list[str]:
    bounds = [-np.inf, *edges.tolist(), np.inf]
    return [f"({lo:g}, {hi:g}]" for lo, hi in itertools.pairwise(bounds)] + [MISSING_BIN]


def psi_from_counts(
    reference_counts: np.ndarray, current_counts: np.ndarray, *, epsilon: float = PSI_EPSILON
) -> tuple[float, np.ndarray, np.ndarray, np.ndarray]:
    """PSI from two count vectors over the same bins; returns (psi, ref shares, cur shares, terms)."""
    ref = reference_counts / max(reference_counts.sum(), 1.0)
    cur = current_counts / max(current_counts.sum(), 1.0)
    ref_f = np.maximum(ref, epsilon)
    cur_f = np.maximum(cur, epsilon)
    terms = (cur_f - ref_f) * np.log(cur_f / ref_f)
    return float(terms.sum()), ref, cur, terms


def _counts(
    ref_s: pd.Series, cur_s: pd.Series, *, n_bins: int, categorical: bool
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Reference and current counts over the same bins, and the bins' labels."""
    if categorical:
        ref_c = ref_s.astype("object").where(ref_s.notna(), MISSING_BIN).astype(str)
        cur_c = cur_s.astype("object").where(cur_s.notna(), MISSING_BIN).astype(str)
        labels = sorted(set(ref_c.unique()) | set(cur_c.unique()))
        return (
            ref_c.value_counts().reindex(labels, fill_value=0).to_numpy(float),
            cur_c.value_counts().reindex(labels, fill_value=0).to_numpy(float),
            labels,
        )
    ref_v = ref_s.to_numpy(dtype=float, na_value=np.nan)
    cur_v = cur_s.to_numpy(dtype=float, na_value=np.nan)
    edges = reference_edges(ref_v, n_bins=n_bins)
    return _numeric_counts(ref_v, edges), _numeric_counts(cur_v, edges), _numeric_labels(edges)


def decile_psi(
    reference: pd.Series | np.ndarray,
    current: pd.Series | np.ndarray,
    *,
    n_bins: int = 10,
    epsilon: float = PSI_EPSILON,
    categorical: bool | None = None,
) -> PsiResult:
    """PSI of ``current`` against ``reference`` on reference-decile bins (categories if categorical).

    ``categorical=None`` decides from the dtype (:func:`is_categorical`). Bins that are empty on
    both sides are dropped from the table; the missing bin is kept only when either side has
    missing values. The result is ≥ 0 and is 0 when both samples have the same bin shares.
    """
    if n_bins < 2:
        raise ValueError(f"n_bins {n_bins} must be at least 2")
    if not 0 < epsilon < 0.01:
        raise ValueError(f"epsilon {epsilon} must be in (0, 0.01)")
    ref_s = pd.Series(reference)
    cur_s = pd.Series(current)
    if categorical is None:
        categorical = is_categorical(ref_s)
    ref_counts, cur_counts, labels = _counts(ref_s, cur_s, n_bins=n_bins, categorical=categorical)
    keep = (ref_counts + cur_counts) > 0
    labels = [lab for lab, k in zip(labels, keep, strict=True) if k]
    psi, ref, cur, terms = psi_from_counts(ref_counts[keep], cur_counts[keep], epsilon=epsilon)
    bins = [
        PsiBin(label=lab, reference_share=float(r), current_share=float(c), contribution=float(t))
        for lab, r, c, t in zip(labels, ref, cur, terms, strict=True)
    ]
    return PsiResult(psi=psi, bins=bins, n_reference=len(ref_s), n_current=len(cur_s))


def binned_counts(
    reference: pd.Series, current: pd.Series, *, n_bins: int = 10
) -> tuple[np.ndarray, np.ndarray]:
    """Reference and current counts on the same bins as :func:`decile_psi` (for significance tests)."""
    ref_counts, cur_counts, _ = _counts(reference, current, n_bins=n_bins, categorical=is_categorical(reference))
    return ref_counts, cur_counts
