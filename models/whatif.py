"""What-if: the smallest set of actionable changes that moves a subject to a better grade.

Models cannot know how records map to features, so the caller passes the candidate actions
(repair a record, settle arrears, keep a commitment …) and `apply(actions) → one-row profile`
that rebuilds the profile as if they were done. Only the passed actions are ever proposed.
The promised grade is what `model` + `grader` (overrides included) give for that profile.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from models.meta import GRADES


@dataclass(frozen=True)
class Action:
    """A change the subject can make itself: what the search proposes (a caller keeps its own data
    on a subclass, as ``training.whatif`` does)."""

    id: str
    label_zh: str
    label_en: str


@dataclass(frozen=True)
class WhatIfResult:
    """Outcome of the search: `actions` is empty when no improvement was found."""

    found: bool
    actions: tuple[Any, ...]
    grade_from: str
    grade_to: str
    probability_from: float
    probability_to: float
    searched: int
    method: str  # "exhaustive" | "greedy"


# subsets of actions → (grade codes, probabilities), one entry per subset, in order
Scorer = Callable[[list[tuple[Any, ...]]], tuple[np.ndarray, np.ndarray]]


def _grade_profiles(model, grader, profiles: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    p = model.predict_proba(profiles)[:, 1]
    return grader.grade(p, profiles).codes, p


def subset_count(n_actions: int, max_actions: int) -> int:
    """How many non-empty subsets of at most ``max_actions`` of ``n_actions`` actions there are: what
    `search` enumerates, and greedy instead when this exceeds its ``max_subsets``."""
    return sum(math.comb(n_actions, k) for k in range(1, min(max_actions, n_actions) + 1))


def what_if(
    model,
    grader,
    actions: Sequence[Action],
    apply: Callable[[list[Action]], pd.DataFrame],
    *,
    max_actions: int = 3,
    max_subsets: int = 5000,
) -> WhatIfResult:
    """Search subsets of `actions` by increasing size for one that improves the grade.

    Among the smallest improving subsets, the one with the best grade, then the lowest
    probability, wins. If enumerating up to `max_actions` would exceed `max_subsets`
    profiles, a greedy search (add the action that lowers the probability most) is used.
    """
    current = apply([])
    if len(current) != 1:
        raise ValueError(f"apply([]) must return a one-row profile, got {len(current)} rows")

    def score(subsets: list[tuple[Any, ...]]) -> tuple[np.ndarray, np.ndarray]:
        profiles = pd.concat([apply(list(s)) for s in subsets], ignore_index=True)
        return _grade_profiles(model, grader, profiles)

    return search(actions, score, max_actions=max_actions, max_subsets=max_subsets)


def search(actions: Sequence[Action], score: Scorer, *, max_actions: int = 3,
           max_subsets: int = 5000) -> WhatIfResult:
    """`what_if` with the grading left to ``score`` (subsets → grade codes and probabilities), so
    a caller that graded every hypothetical profile in one batch can look them up. ``score([()])``
    is the current grade."""
    actions = list(actions)
    ids = [a.id for a in actions]
    if len(ids) != len(set(ids)):
        raise ValueError(f"action ids must be unique, got {ids}")
    if max_actions < 1:
        raise ValueError(f"max_actions={max_actions} must be ≥ 1")
    codes, p = score([()])
    g0, p0 = int(codes[0]), float(p[0])
    none = WhatIfResult(False, (), GRADES[g0], GRADES[g0], p0, p0, 0, "exhaustive")
    if g0 == 0 or not actions:
        return none
    k_max = min(max_actions, len(actions))
    if subset_count(len(actions), max_actions) <= max_subsets:
        searched = 0
        for k in range(1, k_max + 1):
            subsets = list(itertools.combinations(actions, k))
            codes, p = score(subsets)
            searched += len(subsets)
            better = np.flatnonzero(codes < g0)
            if better.size:
                best = better[np.lexsort((p[better], codes[better]))[0]]
                return WhatIfResult(True, subsets[best], GRADES[g0], GRADES[int(codes[best])], p0, float(p[best]),
                                    searched, "exhaustive")
        return WhatIfResult(False, (), GRADES[g0], GRADES[g0], p0, p0, searched, "exhaustive")
    chosen: list[Action] = []
    searched = 0
    for _ in range(k_max):
        rest = [a for a in actions if a not in chosen]
        codes, p = score([(*chosen, a) for a in rest])
        searched += len(rest)
        j = int(np.lexsort((p, codes))[0])
        chosen.append(rest[j])
        if codes[j] < g0:
            return WhatIfResult(True, tuple(chosen), GRADES[g0], GRADES[int(codes[j])], p0, float(p[j]), searched, "greedy")
    return WhatIfResult(False, (), GRADES[g0], GRADES[g0], p0, p0, searched, "greedy")
