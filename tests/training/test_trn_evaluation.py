"""Validation figures: fast AUC/KS agree with scikit-learn, intervals behave like intervals."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import roc_auc_score, roc_curve

from models.discrimination import ks_statistic
from training import evaluation as ev


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 1), st.integers(0, 20)), min_size=4, max_size=80).filter(
        lambda rows: len({r[0] for r in rows}) == 2
    )
)
def test_fast_auc_and_ks_equal_sklearn_with_ties(rows: list[tuple[int, int]]) -> None:
    y = np.array([r[0] for r in rows])
    score = np.array([r[1] for r in rows], dtype=float)  # small integer scores: many ties
    assert np.isclose(ev._fast_auc(y, score), roc_auc_score(y, score))
    fpr, tpr, _ = roc_curve(y, score)
    assert np.isclose(ks_statistic(y, score), np.max(tpr - fpr))


def test_bootstrap_interval_brackets_the_estimate_and_is_reproducible() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 500)
    p = np.clip(0.3 * y + rng.normal(0.35, 0.2, 500), 0, 1)
    first = ev.bootstrap_interval(y, p, "auc", n_boot=100, seed=3)
    again = ev.bootstrap_interval(y, p, "auc", n_boot=100, seed=3)
    assert first == again
    assert first.low <= first.value <= first.high
    gini = ev.bootstrap_interval(y, p, "gini", n_boot=100, seed=3)
    assert np.isclose(gini.value, 2 * first.value - 1)


def test_grade_table_keeps_empty_grades_and_shares_sum_to_one() -> None:
    table = ev.grade_table([0, 0, 0, 1, 1], ["A", "A", "B", "D", "D"])
    assert list(table["grade"]) == ["A", "B", "C", "D"]
    assert table.loc[table["grade"] == "C", "count"].item() == 0
    assert np.isclose(table["share"].sum(), 1.0)
    assert ev.grades_monotone(table)
