"""A model of what inspections find, stacked on the credit model's log-odds (issue 19, optional).

The credit model predicts the 12-month adverse label; a double-random plan is worth the problems
its inspections find. The two differ most where a sector-specific driver (hygiene and operations in
section H, 住宿和餐饮业: complaints and water/power/gas arrears) raises inspection failures more than
the pooled credit model credits. This module fits, on the department's own past inspection results
(records it holds), a logistic regression with three inputs:

    log-odds of the credit probability, 1[sector in S], 1[sector in S] · hygiene

where hygiene = Σ log(1 + count) of the ``hygiene`` profile features. Few parameters on purpose:
a 3,000-subject city has about 500 past inspections (100–160 problems) to learn from, and the
same inputs with one weight per sector overfit (measured on four simulated cities, BENCHMARKS.md
issue 19). Every inspection is paired with the subject's profile at the last quarter end *before*
it, and only inspections up to the grading date are used (point in time).

The stacked score does not replace the credit grade (it costs up to 0.04 of the grades' AUC
against the 12-month label): :func:`strata_grades` re-cuts it in the credit grades' own mix, or in
other shares (a larger D stratum at the policy's D ratio is where most of the gain to the oracle
is, BENCHMARKS.md issue 19), for a plan that wants its strata ranked by what inspections find.
Pure: frames in, frames out.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

#: Sectors whose hygiene records raise inspection failures (docs/domain.md: the section H driver).
DEFAULT_SECTORS: tuple[str, ...] = ("H",)
#: Profile features that track the hygiene and operations latent (features/specs.py).
HYGIENE_FEATURES: tuple[str, ...] = ("n_complaint_36m", "n_arrears_utility_36m")
INPUTS: tuple[str, ...] = ("log_odds", "sector", "sector_hygiene")


def stack_inputs(
    profiles: pd.DataFrame,
    probability: Sequence[float] | np.ndarray | pd.Series,
    *,
    sectors: Sequence[str] = DEFAULT_SECTORS,
    hygiene: Sequence[str] = HYGIENE_FEATURES,
) -> pd.DataFrame:
    """The stack's inputs per profile row: credit log-odds, sector indicator, sector × hygiene.

    ``probability`` is the credit model's probability for the same rows (in order); it is clipped
    to [1e-4, 1 − 1e-4] so a certain probability has finite log-odds. Missing counts count 0.
    """
    p = np.clip(np.asarray(probability, dtype=float), 1e-4, 1 - 1e-4)
    in_sector = profiles["industry"].astype(str).isin(list(sectors)).to_numpy(float)
    level = np.zeros(len(profiles))
    for name in hygiene:
        counts = pd.to_numeric(profiles[name], errors="coerce").fillna(0).clip(lower=0).to_numpy(float)
        level += np.log1p(counts)
    return pd.DataFrame(
        {"log_odds": np.log(p) - np.log1p(-p), "sector": in_sector, "sector_hygiene": in_sector * level},
        index=profiles.index,
    )


@dataclass(frozen=True)
class InspectionStack:
    """Fitted stack: P(problem | inspected) = sigmoid(intercept + coef · inputs)."""

    intercept: float
    coef: tuple[float, float, float]  # log_odds, sector, sector_hygiene
    sectors: tuple[str, ...]
    hygiene: tuple[str, ...]
    n_inspections: int
    n_problems: int

    def log_odds(
        self, profiles: pd.DataFrame, probability: Sequence[float] | np.ndarray | pd.Series
    ) -> np.ndarray:
        """Log-odds that an inspection of each profile's subject finds a problem."""
        x = stack_inputs(profiles, probability, sectors=self.sectors, hygiene=self.hygiene)
        return self.intercept + x[list(INPUTS)].to_numpy() @ np.asarray(self.coef)


def inspection_rows(
    inspections: pd.DataFrame, profiles: pd.DataFrame, *, cutoff: dt.date, max_gap_days: int = 92
) -> pd.DataFrame:
    """Past inspections paired with the profile their subject had just before them (point in time).

    ``inspections``: uscc, inspected_on, problem (bool); ``profiles``: uscc, as_of and the features,
    for several as-of dates (with the credit ``probability`` of that date as a column if the stack
    is to use it). An inspection on day d takes the profile with the latest as_of < d, if it is at
    most ``max_gap_days`` old; inspections after ``cutoff`` (the grading date) are left out, so the
    rows hold nothing the grader could not have known. Returns the profile columns plus
    ``inspected_on`` and ``problem``.
    """
    done = inspections.assign(
        inspected_on=pd.to_datetime(inspections["inspected_on"], errors="coerce"),
        problem=inspections["problem"].astype(bool),
    ).dropna(subset=["inspected_on"])
    done = done[done["inspected_on"] <= pd.Timestamp(cutoff)]
    prof = profiles.assign(_as_of=pd.to_datetime(profiles["as_of"]))
    # merge_asof needs both sides sorted on the key; strictly before: a same-day profile may hold the result
    paired = pd.merge_asof(
        done[["uscc", "inspected_on", "problem"]].sort_values("inspected_on"),
        prof.sort_values("_as_of"),
        left_on="inspected_on",
        right_on="_as_of",
        by="uscc",
        direction="backward",
        allow_exact_matches=False,
        tolerance=pd.Timedelta(days=max_gap_days),
    )
    return paired.dropna(subset=["_as_of"]).drop(columns="_as_of").reset_index(drop=True)


def fit_inspection_stack(
    rows: pd.DataFrame,
    *,
    sectors: Sequence[str] = DEFAULT_SECTORS,
    hygiene: Sequence[str] = HYGIENE_FEATURES,
    c: float = 1.0,
) -> InspectionStack:
    """Fit the stack on :func:`inspection_rows` output (with a ``probability`` column: the credit
    model's probability at the profile's date). ``c``: inverse L2 strength, as in scikit-learn."""
    from sklearn.linear_model import LogisticRegression

    y = rows["problem"].astype(int).to_numpy()
    if y.min(initial=1) == y.max(initial=0):
        raise ValueError(f"{len(y)} past inspections, all with the same result: nothing to learn from")
    x = stack_inputs(rows, rows["probability"], sectors=sectors, hygiene=hygiene)[list(INPUTS)]
    model = LogisticRegression(C=c, max_iter=2000).fit(x.to_numpy(), y)
    return InspectionStack(
        intercept=float(model.intercept_[0]),
        coef=tuple(float(v) for v in model.coef_[0]),  # type: ignore[arg-type]
        sectors=tuple(sectors),
        hygiene=tuple(hygiene),
        n_inspections=len(y),
        n_problems=int(y.sum()),
    )


def cut_in_mix(score: pd.Series, mix: pd.Series) -> pd.Series:
    """Grades A–D by rank of ``score`` (low = A) in the given grade shares."""
    rank = score.rank(method="first", pct=True).to_numpy()
    cuts = np.cumsum([mix.get(g, 0.0) for g in "ABC"])
    return pd.Series(
        np.select([rank <= cuts[0], rank <= cuts[1], rank <= cuts[2]], ["A", "B", "C"], "D"),
        index=score.index,
    )


def strata_grades(grades: pd.Series, score: pd.Series, shares: dict[str, float] | None = None) -> pd.Series:
    """Grades for a plan's strata: ``score`` (higher = more problems expected) cut so that each grade
    keeps exactly as many subjects as in ``grades`` (or, with ``shares``, that share of them, rounded
    so the counts add up); only who is in it changes (ties by ``grades``' order)."""
    aligned = score.reindex(grades.index)
    if aligned.isna().any():
        raise ValueError(
            f"{int(aligned.isna().sum())} graded subjects have no score: rank them before re-cutting"
        )
    if shares is None:
        counts = [int((grades == g).sum()) for g in "ABCD"]
    else:
        if set(shares) - set("ABCD") or min(shares.values()) < 0 or not np.isclose(sum(shares.values()), 1):
            raise ValueError(f"{shares}: give shares of A–D, each ≥ 0, summing to 1")
        edges = np.round(np.cumsum([shares.get(g, 0.0) for g in "ABCD"]) * len(grades)).astype(int)
        counts = np.diff(np.r_[0, edges]).tolist()
    labels = np.repeat(list("ABCD"), counts)
    order = np.argsort(aligned.to_numpy(float), kind="stable")
    out = np.empty(len(grades), dtype=object)
    out[order] = labels
    return pd.Series(out, index=grades.index, name="grade")
