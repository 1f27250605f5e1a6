"""The promotion gate is a pure function of two models' predictions on the same OOT frame."""

from __future__ import annotations

import numpy as np
import pytest

from training.evaluation import GRADES
from training.gate import GateThresholds, evaluate_gate


def _frame(seed: int = 0, n: int = 3000):
    rng = np.random.default_rng(seed)
    p = rng.beta(1.2, 8, n)
    y = (rng.random(n) < p).astype(int)
    return y, p


def _grades(p: np.ndarray) -> np.ndarray:
    cuts = np.quantile(p, [0.65, 0.90, 0.98])
    return np.asarray(GRADES, dtype=object)[np.searchsorted(cuts, p)]


def test_same_model_passes_every_check() -> None:
    y, p = _frame()
    result = evaluate_gate(y, p, _grades(p), p, _grades(p))
    assert result.passed
    assert {c.name for c in result.checks} == {"auc", "brier", "ece", "grade_monotonicity", "grade_share_shift"}
    assert result.figures["auc_difference"] == 0.0


def test_worse_challenger_is_refused_with_its_figures() -> None:
    y, p = _frame()
    rng = np.random.default_rng(9)
    noisy = np.clip(p + rng.normal(0, 0.15, len(p)), 0.001, 0.999)  # loses ranking and calibration
    result = evaluate_gate(y, noisy, _grades(noisy), p, _grades(p))
    assert not result.passed
    failed = {c.name for c in result.failed}
    assert "auc" in failed
    auc_check = next(c for c in result.checks if c.name == "auc")
    assert auc_check.challenger < auc_check.champion - 0.01
    assert "difference" in auc_check.detail and "champion" in auc_check.detail


def test_better_challenger_passes() -> None:
    y, p = _frame()
    rng = np.random.default_rng(4)
    weaker = np.clip(p + rng.normal(0, 0.1, len(p)), 0.001, 0.999)
    result = evaluate_gate(y, p, _grades(p), weaker, _grades(weaker))
    assert result.passed
    assert result.figures["auc_difference"] > 0


def test_grades_not_monotone_in_bad_rate_fail() -> None:
    y, p = _frame()
    reversed_grades = _grades(-p)  # the riskiest subjects graded A
    result = evaluate_gate(y, p, reversed_grades)
    assert not result.passed
    assert [c.name for c in result.failed] == ["grade_monotonicity"]


def test_grade_share_shift_beyond_limit_fails() -> None:
    y, p = _frame()
    cuts = np.quantile(p, [0.30, 0.60, 0.90])  # a very different grade mix from the same ranking
    shifted = np.asarray(GRADES, dtype=object)[np.searchsorted(cuts, p)]
    result = evaluate_gate(y, p, shifted, p, _grades(p), thresholds=GateThresholds(grade_psi_limit=0.1))
    assert [c.name for c in result.failed] == ["grade_share_shift"]
    assert result.figures["grade_psi"] > 0.1


def test_without_champion_only_the_challengers_own_checks_run() -> None:
    y, p = _frame()
    result = evaluate_gate(y, p, _grades(p))
    assert result.passed
    assert [c.name for c in result.checks] == ["grade_monotonicity"]


def test_mismatched_lengths_are_refused() -> None:
    y, p = _frame()
    with pytest.raises(ValueError, match="same subjects"):
        evaluate_gate(y[:-1], p, _grades(p))
    with pytest.raises(ValueError, match="together"):
        evaluate_gate(y, p, _grades(p), champion_proba=p)
