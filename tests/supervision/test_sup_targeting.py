"""benchmarks/targeting.py's yardsticks: the floor-then-greedy allocation (the oracle, and the bound
of any plan from a given ranking) and the expected AUC against Bernoulli outcomes."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import roc_auc_score

from benchmarks.targeting import floor_greedy_inclusion, soft_auc

sizes = st.integers(min_value=2, max_value=300)


@settings(max_examples=60, deadline=None)
@given(
    n=sizes, seed=st.integers(0, 2**32 - 1), floor=st.sampled_from([0.01, 0.05, 0.2]), share=st.floats(0, 1)
)
def test_floor_greedy_keeps_the_floor_spends_the_budget_and_follows_the_score(
    n: int, seed: int, floor: float, share: float
) -> None:
    rng = np.random.default_rng(seed)
    score = rng.random(n).round(2)  # ties included
    total = floor * n + share * (1 - floor) * n
    pi = floor_greedy_inclusion(score, total, floor)
    assert np.all(pi >= floor - 1e-12) and np.all(pi <= 1 + 1e-12)
    assert np.isclose(pi.sum(), total)
    higher = score[:, None] > score[None, :]
    assert np.all((pi[:, None] >= pi[None, :] - 1e-12) | ~higher)  # a higher score never gets less


@settings(max_examples=40, deadline=None)
@given(n=sizes, seed=st.integers(0, 2**32 - 1), share=st.floats(0, 1))
def test_floor_greedy_on_the_truth_beats_any_other_allocation_of_the_budget(
    n: int, seed: int, share: float
) -> None:
    rng = np.random.default_rng(seed)
    p, other = rng.random(n), rng.random(n)
    floor = 0.01
    total = floor * n + share * (1 - floor) * n
    best = floor_greedy_inclusion(p, total, floor) @ p
    assert best >= floor_greedy_inclusion(other, total, floor) @ p - 1e-9
    assert best >= total * p.mean() - 1e-9  # a uniform draw of the same size


@settings(max_examples=40, deadline=None)
@given(n=sizes, seed=st.integers(0, 2**32 - 1))
def test_soft_auc_is_the_auc_on_labels_and_the_truth_ranks_best(n: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    score = rng.random(n).round(1)  # ties count half, as in roc_auc_score
    y = np.r_[0, 1, rng.integers(0, 2, n - 2)]
    assert np.isclose(soft_auc(score, y), roc_auc_score(y, score))
    p = rng.random(n)
    assert soft_auc(p, p) >= soft_auc(score, p) - 1e-12
