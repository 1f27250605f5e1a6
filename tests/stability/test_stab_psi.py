"""The one PSI (``stability.psi``): hand computation, invariances, discrete and categorical
features, missing values; training's report and gate and monitoring's alerts give the same figure."""

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stability.psi import PSI_EPSILON, decile_psi, reference_edges


def test_decile_psi_matches_hand_computation():
    reference = np.arange(100, dtype=float)  # deciles (-inf, 9], (9, 19], ..., (89, inf): 10 values each
    # current: 20 values in the first decile, none in the second, 10 in each of the other eight
    current = np.concatenate([np.zeros(20), np.arange(20, 100, dtype=float)])
    result = decile_psi(reference, current)
    expected = (0.2 - 0.1) * math.log(0.2 / 0.1) + (PSI_EPSILON - 0.1) * math.log(PSI_EPSILON / 0.1)
    assert result.psi == pytest.approx(expected, rel=1e-9)
    assert [b.reference_share for b in result.bins] == pytest.approx([0.1] * 10)
    assert result.bins[1].current_share == 0.0


def test_edges_are_reference_deciles():
    edges = reference_edges(np.arange(100, dtype=float))
    assert edges.tolist() == [9, 19, 29, 39, 49, 59, 69, 79, 89]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(-1e6, 1e6), min_size=5, max_size=300), st.integers(0, 2**31))
def test_psi_is_zero_on_identical_samples_and_nonnegative(values, seed):
    ref = np.array(values)
    assert decile_psi(ref, ref).psi == pytest.approx(0.0, abs=1e-12)
    other = np.random.default_rng(seed).permutation(ref)[: max(1, len(ref) // 2)]
    assert decile_psi(ref, other).psi >= 0.0


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**31))
def test_psi_is_invariant_to_a_monotone_transform(seed):
    rng = np.random.default_rng(seed)
    ref, cur = rng.normal(size=500), rng.normal(0.3, 1.2, size=400)
    plain = decile_psi(ref, cur).psi
    transformed = decile_psi(np.exp(ref), np.exp(cur)).psi  # bins follow ranks, not the scale
    assert transformed == pytest.approx(plain, rel=1e-9)


def test_discrete_feature_gets_unique_edges_and_no_spurious_drift():
    rng = np.random.default_rng(1)
    ref = rng.choice([0, 1, 2, 5], p=[0.82, 0.1, 0.05, 0.03], size=20_000)
    cur = rng.choice([0, 1, 2, 5], p=[0.82, 0.1, 0.05, 0.03], size=20_000)
    result = decile_psi(ref, cur)
    labels = [b.label for b in result.bins]
    assert len(labels) == len(set(labels)) <= 5
    assert result.psi < 0.01
    # a recoding that moves mass from 0 to 2 is seen
    recoded = np.where((cur == 0) & (rng.random(cur.size) < 0.3), 2, cur)
    assert decile_psi(ref, recoded).psi > 0.25


def test_values_beyond_the_reference_range_count_as_drift():
    ref = np.zeros(1000)  # a constant reference: one bin, plus the bin above its maximum
    cur = np.where(np.arange(1000) < 300, 1.0, 0.0)
    assert decile_psi(ref, cur).psi > 0.25


def test_categorical_bins_per_category_including_new_ones():
    ref = pd.Series(["C"] * 50 + ["F"] * 50)
    cur = pd.Series(["C"] * 50 + ["F"] * 30 + ["G"] * 20)
    result = decile_psi(ref, cur)
    assert {b.label for b in result.bins} == {"C", "F", "G"}
    hand = (0.3 - 0.5) * math.log(0.3 / 0.5) + (0.2 - PSI_EPSILON) * math.log(0.2 / PSI_EPSILON)
    assert result.psi == pytest.approx(hand)


def test_missing_values_have_their_own_bin():
    ref = pd.Series(np.r_[np.arange(90, dtype=float), [np.nan] * 10])
    cur = pd.Series(np.r_[np.arange(60, dtype=float), [np.nan] * 40])
    result = decile_psi(ref, cur)
    missing = [b for b in result.bins if b.label == "missing"]
    assert len(missing) == 1
    assert missing[0].reference_share == pytest.approx(0.1)
    assert missing[0].current_share == pytest.approx(0.4)


def test_rejects_bad_parameters():
    with pytest.raises(ValueError, match="n_bins 1"):
        decile_psi([1.0, 2.0], [1.0], n_bins=1)


def test_psi_is_zero_for_the_same_distribution_and_grows_with_shift() -> None:
    rng = np.random.default_rng(1)
    base = rng.normal(0, 1, 2000)
    assert decile_psi(base, base).psi == 0.0
    assert decile_psi(base, base + 0.5).psi > decile_psi(base, base + 0.1).psi > 0
    grades = pd.Series(list("AAAABBCD"))
    assert decile_psi(grades, grades).psi == 0.0


def test_a_tied_mass_at_the_minimum_keeps_its_own_bin():
    # 25 % of scores at a floor (a clipped probability, a scorecard's lowest points): the floor is
    # a bin of its own, so mass moving off it to just above is drift, not a change inside one bin
    rng = np.random.default_rng(3)
    ref = np.r_[np.full(2500, 0.001), rng.uniform(0.002, 1.0, 7500)]
    cur = np.r_[np.full(1000, 0.001), rng.uniform(0.002, 0.05, 1500), rng.uniform(0.002, 1.0, 7500)]
    result = decile_psi(ref, cur)
    assert result.bins[0].label == "(-inf, 0.001]"
    assert result.bins[0].reference_share == pytest.approx(0.25)
    assert result.psi > 0.25


def _scored(rng: np.random.Generator, as_of: str, n: int, shift: float, missing: int) -> pd.DataFrame:
    p = 1 / (1 + np.exp(-(rng.normal(-2 + shift, 1, n))))
    p[:missing] = np.nan  # subjects the model could not score
    grades = np.select([p < 0.08, p < 0.15, p < 0.3], list("ABC"), "D")
    return pd.DataFrame({"as_of": as_of, "p_adverse_12m": p, "grade": grades, "label": rng.integers(0, 2, n)})


def test_training_and_monitoring_report_the_same_psi():
    from monitoring.run import MonitoringFrames, monitor
    from training.gate import evaluate_gate
    from training.report import stability_table

    rng = np.random.default_rng(11)
    base, later = _scored(rng, "2025-06-30", 3000, 0.0, 30), _scored(rng, "2025-12-31", 2500, 0.4, 200)
    row = stability_table(pd.concat([base, later], ignore_index=True), pd.Timestamp("2025-06-30").date())[1]
    score_psi = decile_psi(base["p_adverse_12m"], later["p_adverse_12m"]).psi
    grade_psi = decile_psi(base["grade"], later["grade"]).psi
    assert math.isfinite(row["score_psi"]) and row["score_psi"] == pytest.approx(score_psi, abs=1e-6)
    assert row["grade_psi"] == pytest.approx(grade_psi, abs=1e-6)

    y = rng.integers(0, 2, 2000)
    p = rng.uniform(0, 1, 2000)
    champion_grades, challenger_grades = base["grade"][:2000].to_numpy(), later["grade"][:2000].to_numpy()
    gate = evaluate_gate(y, p, challenger_grades, p, champion_grades)
    assert gate.figures["grade_psi"] == pytest.approx(decile_psi(champion_grades, challenger_grades).psi)

    def frames(scored: pd.DataFrame) -> MonitoringFrames:
        scores = scored.assign(uscc=[f"U{i:06d}" for i in range(len(scored))], score=scored["p_adverse_12m"])
        return MonitoringFrames(as_of=pd.Timestamp(scored["as_of"].iloc[0]).date(),
                                profiles=scores[["uscc"]], scores=scores[["uscc", "score", "grade"]])

    monitored = monitor(frames(base), frames(later), run_evidently=False)
    assert monitored.score_psi.psi == pytest.approx(score_psi)
