"""supervision.inspection_outcome: past inspections paired point in time, the stack learns a sector's
hygiene effect the credit model misses, and re-cut strata keep the credit grades' mix."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks.targeting import soft_auc
from supervision.inspection_outcome import (
    fit_inspection_stack,
    inspection_rows,
    stack_inputs,
    strata_grades,
)

QUARTER_ENDS = [d.date() for d in pd.date_range("2023-03-31", "2025-06-30", freq="QE")]


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 60), cutoff_day=st.integers(0, 1000))
def test_inspections_take_the_last_profile_strictly_before_them_and_none_after_the_cutoff(
    seed: int, n: int, cutoff_day: int
) -> None:
    rng = np.random.default_rng(seed)
    subjects = [f"S{i}" for i in range(5)]
    profiles = pd.DataFrame(
        [
            {"uscc": u, "as_of": d, "n_complaint_36m": int(rng.integers(0, 5))}
            for u in subjects
            for d in QUARTER_ENDS
        ]
    )
    days = pd.Timestamp("2023-01-01") + pd.to_timedelta(rng.integers(0, 1100, n), unit="D")
    inspections = pd.DataFrame(
        {"uscc": rng.choice(subjects, n), "inspected_on": days, "problem": rng.random(n) < 0.3}
    )
    # a quarter end itself among the inspection days: its own profile may already hold the result
    inspections.loc[0, "inspected_on"] = pd.Timestamp(QUARTER_ENDS[2])
    cutoff = dt.date(2023, 1, 1) + dt.timedelta(days=cutoff_day)
    rows = inspection_rows(inspections, profiles, cutoff=cutoff)
    gap = rows["inspected_on"] - pd.to_datetime(rows["as_of"])
    assert (gap > pd.Timedelta(0)).all() and (gap <= pd.Timedelta(days=92)).all()
    assert (rows["inspected_on"] <= pd.Timestamp(cutoff)).all()
    ends = pd.to_datetime(pd.Series(QUARTER_ENDS))
    for _, row in rows.iterrows():  # the latest quarter end before the inspection, not an older one
        assert pd.Timestamp(row["as_of"]) == ends[ends < row["inspected_on"]].max()
    # every inspection inside the profiles' reach is kept
    reach = (inspections["inspected_on"] > ends.min()) & (
        inspections["inspected_on"] <= ends.max() + pd.Timedelta(days=92)
    )
    assert len(rows) == int((reach & (inspections["inspected_on"] <= pd.Timestamp(cutoff))).sum())


def synthetic_city(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Profiles whose inspection outcome has a section-H hygiene term the credit probability lacks."""
    rng = np.random.default_rng(seed)
    g, h = rng.normal(0, 0.9, n), rng.normal(0, 1, n)
    industry = rng.choice(list("CFHI"), n)
    in_h = industry == "H"
    p_problem = 1 / (1 + np.exp(-(-1.4 + g + 1.8 * h * in_h)))
    credit = 1 / (1 + np.exp(-(-2.5 + g + rng.normal(0, 0.5, n))))  # knows g (noisily), not h
    profiles = pd.DataFrame(
        {
            "industry": industry,
            "n_complaint_36m": rng.poisson(np.exp(0.5 + h)),
            "n_arrears_utility_36m": rng.poisson(0.5 * np.exp(h)),
            "probability": credit,
        }
    )
    return profiles, p_problem


def test_the_stack_learns_the_sector_hygiene_effect_and_ranks_problems_better_than_the_credit_model() -> None:
    past, p_past = synthetic_city(600, seed=1)  # about the past inspections of a 3,000-subject city
    past["problem"] = np.random.default_rng(2).random(len(past)) < p_past
    stack = fit_inspection_stack(past)
    assert stack.n_inspections == 600 and stack.coef[2] > 0
    now, p_now = synthetic_city(3000, seed=3)
    stacked = stack.log_odds(now, now["probability"])
    assert soft_auc(stacked, p_now) > soft_auc(now["probability"].to_numpy(), p_now) + 0.02
    # outside the named sectors the stack is a monotone function of the credit probability
    rest = (now["industry"] != "H").to_numpy()
    order = np.argsort(now["probability"].to_numpy()[rest])
    assert np.all(np.diff(stacked[rest][order]) >= -1e-12)


def test_inputs_are_finite_for_certain_probabilities_and_missing_counts() -> None:
    profiles = pd.DataFrame(
        {"industry": ["H", "C", None], "n_complaint_36m": [None, 3, 1], "n_arrears_utility_36m": [2, None, 0]}
    )
    x = stack_inputs(profiles, [0.0, 1.0, 0.5])
    assert np.isfinite(x.to_numpy()).all()
    assert x["sector"].tolist() == [1.0, 0.0, 0.0] and x["sector_hygiene"].iloc[1] == 0.0


def test_no_fit_from_inspections_that_all_ended_alike() -> None:
    past, _ = synthetic_city(50, seed=4)
    with pytest.raises(ValueError, match="same result"):
        fit_inspection_stack(past.assign(problem=False))


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(4, 200))
def test_strata_grades_keep_the_credit_mix_and_follow_the_score(seed: int, n: int) -> None:
    rng = np.random.default_rng(seed)
    index = pd.Index([f"S{i}" for i in range(n)])
    grades = pd.Series(rng.choice(list("ABCD"), n, p=[0.6, 0.25, 0.1, 0.05]), index=index)
    score = pd.Series(rng.random(n).round(2), index=index[::-1])  # ties, other order
    recut = strata_grades(grades, score)
    assert recut.index.equals(grades.index)
    assert recut.value_counts().to_dict() == grades.value_counts().to_dict()
    s = score.reindex(index).to_numpy()
    r = recut.map("ABCD".index).to_numpy()
    assert np.all(
        (r[:, None] >= r[None, :]) | ~(s[:, None] > s[None, :])
    )  # a higher score, a grade no better


def test_strata_grades_refuse_a_subject_without_a_score() -> None:
    grades = pd.Series(list("ABCD"), index=["a", "b", "c", "d"])
    with pytest.raises(ValueError, match="no score"):
        strata_grades(grades, pd.Series([0.1, 0.2, 0.3], index=["a", "b", "c"]))


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 200), d_share=st.floats(0, 0.2))
def test_strata_grades_in_given_shares_cover_everyone_and_put_the_top_scores_in_d(
    seed: int, n: int, d_share: float
) -> None:
    rng = np.random.default_rng(seed)
    index = pd.Index([f"S{i}" for i in range(n)])
    grades = pd.Series("A", index=index)
    score = pd.Series(rng.random(n), index=index)
    shares = {"A": 0.8 - d_share, "B": 0.2, "C": 0.0, "D": d_share}
    recut = strata_grades(grades, score, shares)
    counts = recut.value_counts()
    assert counts.sum() == n and abs(counts.get("D", 0) - d_share * n) <= 1 and counts.get("C", 0) == 0
    if counts.get("D", 0):
        assert score[recut == "D"].min() >= score[recut != "D"].max()
    with pytest.raises(ValueError, match="summing to 1"):
        strata_grades(grades, score, {"A": 0.5, "D": 0.2})
