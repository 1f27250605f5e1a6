"""Probability → grade A/B/C/D by policy cut-offs, then direct-grading overrides (直接判级).

Cut-offs come from policy: target grade shares fitted on a reference distribution of
probabilities (e.g. Dandong 2023: A 65 %, B 25 %, C 8 %, D 2 %), or fixed probability bands.
Overrides are rules on profile columns, configured per sector; they always win:
  1. if any rule with an exact `grade` fires, the grade is the worst such grade;
  2. otherwise the grade is the worst of the model grade and every fired `min_grade`.
The rules that fired are reported so the explanation can show them first.
"""

from __future__ import annotations

import operator
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from models.meta import GRADES

DEFAULT_SHARES: dict[str, float] = {"A": 0.65, "B": 0.25, "C": 0.08, "D": 0.02}

_OPS = {"==": operator.eq, "!=": operator.ne, ">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le}


@dataclass(frozen=True)
class OverrideRule:
    """A direct-grading rule: when `column op value` holds, set `grade` or raise to `min_grade`.

    op: one of == != > >= < <=, "in" (value is a collection) or "truthy" (non-zero, non-missing).
    """

    rule_id: str
    column: str
    op: str = "truthy"
    value: Any = True
    grade: str | None = None
    min_grade: str | None = None
    reason_zh: str = ""
    reason_en: str = ""

    def __post_init__(self) -> None:
        if (self.grade is None) == (self.min_grade is None):
            raise ValueError(f"override {self.rule_id!r}: set exactly one of grade / min_grade")
        g = self.grade or self.min_grade
        if g not in GRADES:
            raise ValueError(f"override {self.rule_id!r}: grade {g!r} must be one of {GRADES}")
        if self.op not in (*_OPS, "in", "truthy"):
            raise ValueError(f"override {self.rule_id!r}: op {self.op!r} must be one of {[*_OPS, 'in', 'truthy']}")
        if not self.reason_zh:
            raise ValueError(f"override {self.rule_id!r}: reason_zh is required (it is shown to the subject)")

    def mask(self, profile: pd.DataFrame) -> np.ndarray:
        """Which subjects the rule applies to (missing values never fire a rule)."""
        if self.column not in profile.columns:
            raise ValueError(f"override {self.rule_id!r} reads column {self.column!r}, which the profile lacks")
        col = profile[self.column]
        present = col.notna().to_numpy()
        if self.op == "truthy":
            hit = col.fillna(0).astype(bool).to_numpy()
        elif self.op == "in":
            hit = col.isin(list(self.value)).to_numpy()
        else:
            hit = _OPS[self.op](col, self.value).fillna(False).to_numpy(dtype=bool)
        return hit & present


@dataclass
class GradeResult:
    """Grades of many subjects: codes 0..3 (= A..D), the model's own grade, rules fired."""

    codes: np.ndarray
    model_codes: np.ndarray
    probability: np.ndarray
    fired: np.ndarray  # (n, n_rules) bool
    rules: list[OverrideRule] = field(default_factory=list)

    @property
    def grades(self) -> np.ndarray:
        return np.asarray(GRADES)[self.codes]

    def overrides_for(self, i: int) -> list[OverrideRule]:
        """Rules that fired for subject i, the deciding ones first (exact grade, then worst)."""
        fired = [r for r, hit in zip(self.rules, self.fired[i], strict=True) if hit]
        return sorted(fired, key=lambda r: (r.grade is None, -GRADES.index(r.grade or r.min_grade)))


class Grader(BaseEstimator):
    """Cut-offs from policy + overrides. Fit on a reference sample of probabilities."""

    def __init__(
        self,
        *,
        policy: str = "shares",
        shares: Mapping[str, float] | None = None,
        bands: Sequence[float] | None = None,
        overrides: Sequence[OverrideRule] = (),
    ) -> None:
        self.policy = policy
        self.shares = shares
        self.bands = bands
        self.overrides = overrides

    def fit(self, p_reference=None, y=None) -> Grader:
        """Derive `cutoffs_` (upper probability of A, B, C) from the policy."""
        if self.policy == "shares":
            shares = dict(DEFAULT_SHARES if self.shares is None else self.shares)
            if set(shares) != set(GRADES) or any(v < 0 for v in shares.values()):
                raise ValueError(f"shares={shares} must give a non-negative share for each of {GRADES}")
            total = sum(shares.values())
            if not np.isclose(total, 1.0, atol=1e-6):
                raise ValueError(f"shares must sum to 1, got {total:.4f}")
            p = np.asarray(p_reference, dtype=float) if p_reference is not None else np.empty(0)
            if p.size == 0 or np.isnan(p).any():
                raise ValueError("policy='shares' needs a reference sample of probabilities without NaN")
            cum = np.cumsum([shares[g] for g in GRADES])[:-1]
            self.cutoffs_ = np.quantile(p, np.clip(cum, 0, 1), method="inverted_cdf")
        elif self.policy == "bands":
            bands = np.asarray(self.bands if self.bands is not None else [], dtype=float)
            if bands.shape != (3,) or np.any(np.diff(bands) < 0) or bands.min() < 0 or bands.max() > 1:
                raise ValueError(f"bands={self.bands!r} must be 3 non-decreasing probabilities (upper bounds of A, B, C)")
            self.cutoffs_ = bands
        else:
            raise ValueError(f"policy={self.policy!r} must be 'shares' or 'bands'")
        ids = [r.rule_id for r in self.overrides]
        if len(ids) != len(set(ids)):
            raise ValueError(f"override rule ids must be unique, got {ids}")
        return self

    def model_codes(self, p) -> np.ndarray:
        """Grade codes from probabilities alone (0 = A … 3 = D); higher p never gets a better grade."""
        check_is_fitted(self, "cutoffs_")
        p_arr = np.asarray(p, dtype=float)
        if np.isnan(p_arr).any():
            raise ValueError("probabilities contain NaN; every subject needs a probability to be graded")
        return np.searchsorted(self.cutoffs_, p_arr, side="left").astype(np.int8)

    def grade(self, p, profile: pd.DataFrame | None = None) -> GradeResult:
        """Model grade, then overrides evaluated on `profile` (one row per subject, same order)."""
        model = self.model_codes(p)
        rules = list(self.overrides)
        if rules and profile is None:
            raise ValueError("this grader has override rules: pass the profile to grade")
        fired = np.column_stack([r.mask(profile) for r in rules]) if rules else np.zeros((len(model), 0), bool)
        codes = model.copy()
        if rules:
            exact = np.array([GRADES.index(r.grade) if r.grade else -1 for r in rules], dtype=np.int8)
            floor = np.array([GRADES.index(r.min_grade) if r.min_grade else -1 for r in rules], dtype=np.int8)
            worst_floor = np.where(fired, floor, -1).max(axis=1)
            worst_exact = np.where(fired, exact, -1).max(axis=1)
            codes = np.maximum(codes, worst_floor).astype(np.int8)
            codes = np.where(worst_exact >= 0, worst_exact, codes).astype(np.int8)
        return GradeResult(codes, model, np.asarray(p, dtype=float), fired, rules)

    def predict(self, p, profile: pd.DataFrame | None = None) -> np.ndarray:
        """Grade letters."""
        return self.grade(p, profile).grades
