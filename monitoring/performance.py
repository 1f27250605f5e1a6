"""Performance of the reference cohort as its outcomes arrive (late labels).

The label of a subject graded at the reference as-of date is "at least one adverse outcome
decided in (as_of, as_of + horizon]" (default horizon 12 months, the `labels` definition of
`features/`). Until the horizon has elapsed at the current as-of date the labels are immature:
every figure is then marked ``provisional`` and the ``maturity`` fraction says how much of the
window has been observed (AUC on immature labels is usually biased, not only noisy).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd
from scipy.stats import norm

from models.calibration import brier_score
from models.discrimination import auc_with_variance, ks_statistic
from monitoring.grades import GRADES


@dataclass(frozen=True)
class AucInterval:
    """AUC with its DeLong standard error and two-sided confidence interval."""

    auc: float
    std_error: float
    lower: float
    upper: float
    confidence: float


@dataclass(frozen=True)
class ReliabilityBin:
    """One bin of a reliability table: mean predicted probability vs observed adverse rate (Wilson 95 %)."""

    bin_low: float
    bin_high: float
    n: int
    mean_predicted: float
    observed_rate: float
    ci_low: float
    ci_high: float


@dataclass(frozen=True)
class GradeHitRate:
    """Observed adverse outcomes per grade (the hit rate inspections would see)."""

    grade: str
    n: int
    adverse: int
    hit_rate: float


@dataclass(frozen=True)
class Performance:
    """Discrimination and calibration of the reference cohort, provisional while labels mature."""

    reference_as_of: date
    observed_until: date
    horizon_months: int
    maturity: float
    provisional: bool
    n: int
    n_adverse: int
    auc: AucInterval | None
    ks: float | None
    brier: float | None
    reliability: list[ReliabilityBin]
    hit_rate_by_grade: list[GradeHitRate]


def delong_auc(y_true: np.ndarray, risk: np.ndarray, *, confidence: float = 0.95) -> AucInterval:
    """AUC of ``risk`` for ``y_true`` (1 = adverse) with the DeLong variance (fast midrank form).

    Sun & Xu (2014): the structural components come from midranks within the positives, within
    the negatives and overall, so the cost is one sort, not a pairwise comparison.
    """
    auc, var = auc_with_variance(y_true, risk)
    se = float(np.sqrt(var))
    z = float(norm.ppf(0.5 + confidence / 2))
    return AucInterval(
        auc=float(auc),
        std_error=se,
        lower=float(max(0.0, auc - z * se)),
        upper=float(min(1.0, auc + z * se)),
        confidence=confidence,
    )


def reliability_table(y_true: np.ndarray, p_adverse: np.ndarray, *, n_bins: int = 10) -> list[ReliabilityBin]:
    """Reliability table on deciles of the predicted probability (``models.calibration``'s, as rows)."""
    from models.calibration import reliability_table as model_reliability_table

    table = model_reliability_table(y_true, p_adverse, n_bins=n_bins, strategy="quantile")
    return [
        ReliabilityBin(float(r.bin_low), float(r.bin_high), int(r.count), float(r.mean_predicted),
                       float(r.observed_rate), float(r.ci_low), float(r.ci_high))
        for r in table.itertuples()
    ]


def cohort_labels(
    cohort: pd.Series,
    outcomes: pd.DataFrame,
    *,
    reference_as_of: date,
    observed_until: date,
    horizon_months: int = 12,
) -> pd.Series:
    """0/1 label per subject of ``cohort``: an adverse outcome decided in the observed part of the window.

    ``outcomes`` has one row per adverse outcome record (``uscc``, ``decision_date``); outcomes
    decided after ``observed_until`` are not known yet and are ignored.
    """
    window_end = min(pd.Timestamp(reference_as_of) + pd.DateOffset(months=horizon_months), pd.Timestamp(observed_until))
    decided = pd.to_datetime(outcomes["decision_date"])
    in_window = outcomes.loc[(decided > pd.Timestamp(reference_as_of)) & (decided <= window_end), "uscc"]
    return cohort.isin(set(in_window)).astype(int)


def label_maturity(reference_as_of: date, observed_until: date, *, horizon_months: int = 12) -> float:
    """Fraction of the label window observed by ``observed_until`` (0 before it starts, 1 when complete)."""
    start = pd.Timestamp(reference_as_of)
    end = start + pd.DateOffset(months=horizon_months)
    elapsed = (min(pd.Timestamp(observed_until), end) - start).days
    return float(max(0.0, elapsed / (end - start).days))


def cohort_performance(
    cohort: pd.DataFrame,
    outcomes: pd.DataFrame,
    *,
    reference_as_of: date,
    observed_until: date,
    horizon_months: int = 12,
    score_higher_is_safer: bool = True,
    grades: tuple[str, ...] = GRADES,
    confidence: float = 0.95,
) -> Performance:
    """Performance of the cohort graded at ``reference_as_of`` (columns ``uscc``, ``score``, ``grade``,
    optionally ``p_adverse_12m``) against the outcomes known at ``observed_until``.

    Ranking uses ``p_adverse_12m`` when present, else the score (higher score = lower risk unless
    ``score_higher_is_safer=False``). Brier and the reliability table need ``p_adverse_12m``. AUC and KS
    are ``None`` while the cohort has no adverse outcome (or only adverse ones) yet.
    """
    if observed_until < reference_as_of:
        raise ValueError(f"observed_until {observed_until} is before the reference as_of {reference_as_of}")
    y = cohort_labels(
        cohort["uscc"], outcomes, reference_as_of=reference_as_of, observed_until=observed_until,
        horizon_months=horizon_months,
    ).to_numpy()
    has_p = "p_adverse_12m" in cohort.columns
    if has_p:
        risk = cohort["p_adverse_12m"].to_numpy(float)
    else:
        risk = cohort["score"].to_numpy(float) * (-1.0 if score_higher_is_safer else 1.0)
    both_outcomes = 0 < y.sum() < y.size
    maturity = label_maturity(reference_as_of, observed_until, horizon_months=horizon_months)
    hit = (
        pd.DataFrame({"grade": cohort["grade"].astype(str).to_numpy(), "y": y})
        .groupby("grade")["y"].agg(["size", "sum"])
        .reindex(list(grades), fill_value=0)
    )
    return Performance(
        reference_as_of=reference_as_of,
        observed_until=observed_until,
        horizon_months=horizon_months,
        maturity=maturity,
        provisional=maturity < 1.0,
        n=int(y.size),
        n_adverse=int(y.sum()),
        auc=delong_auc(y, risk, confidence=confidence) if both_outcomes else None,
        ks=ks_statistic(y, risk) if both_outcomes else None,
        brier=brier_score(y, cohort["p_adverse_12m"].to_numpy(float)) if has_p and y.size else None,
        reliability=reliability_table(y, cohort["p_adverse_12m"].to_numpy(float)) if has_p and y.size else [],
        hit_rate_by_grade=[
            GradeHitRate(g, int(row["size"]), int(row["sum"]), float(row["sum"] / row["size"]) if row["size"] else 0.0)
            for g, row in hit.iterrows()
        ],
    )
