"""What-if in the grading job: per subject, the smallest set of actions that improves its grade.

Actions come from ``features.actions.candidate_actions_by_subject`` only (repair an eligible
record, settle arrears, fulfil a broken commitment), so nothing the subject cannot change is ever
proposed. Hypothetical profiles are built in TWO ``build_profiles`` calls over combined records
frames whose subjects get synthetic keys (``<uscc>~<n>``, `features.actions.apply_scenarios`):
first every single action of every subject, then all subsets (≤ ``max_actions``) of each
subject's actions (its best ``k`` single actions when all of them would exceed ``max_subsets``).
Every hypothetical profile is then graded in one model call, and ``models.whatif.search`` picks
the set from those grades; the promised grade and score are what the same model, grader and
overrides give for the applied profile.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from features.actions import Action, apply_scenarios, candidate_actions_by_subject
from features.profiles import build_profiles
from models.whatif import Action as SearchAction
from models.whatif import search, subset_count

KEY_SEPARATOR = "~"  # not in the USCC alphabet, so a synthetic key never collides with a real code


@dataclass(frozen=True)
class WhatIfInputs:
    """What the grading job needs to search what-ifs: the records and subjects the profiles
    were built from, the policy, and which grades get a search (A cannot improve)."""

    records: pd.DataFrame
    subjects: pd.DataFrame
    policy: Any = None
    grades: tuple[str, ...] = ("B", "C", "D")
    max_actions: int = 3
    max_subsets: int = 64


@dataclass(frozen=True)
class _Step(SearchAction):
    """``features.actions.Action`` as the ``models.whatif.Action`` the search proposes (id, labels)."""

    action: Action


def _subsets(steps: Sequence[_Step], max_actions: int) -> list[tuple[_Step, ...]]:
    """Every non-empty subset of at most ``max_actions`` steps, by increasing size."""
    return [s for k in range(1, min(max_actions, len(steps)) + 1) for s in itertools.combinations(steps, k)]


def _profiles_for(jobs: list[tuple[str, str, tuple[Action, ...]]], records: pd.DataFrame, subjects: pd.DataFrame,
                  as_of: date, policy: Any) -> pd.DataFrame:
    """The profile of every job ``(key, uscc, actions)`` (``uscc`` column = key), from one
    ``build_profiles`` call; a job whose subject has no profile on ``as_of`` has no row."""
    if not jobs:
        return pd.DataFrame()
    hypothetical = apply_scenarios(records, jobs, as_of, separator=KEY_SEPARATOR)
    keys = pd.DataFrame([(key, uscc) for key, uscc, _ in jobs], columns=["_key", "uscc"])
    keyed = keys.merge(subjects, on="uscc", how="inner")
    keyed["uscc"] = keyed.pop("_key")
    return build_profiles(hypothetical, keyed[list(subjects.columns)], as_of=as_of, policy=policy)


def _build(subsets_of: dict[str, list[tuple[_Step, ...]]], records: pd.DataFrame, subjects: pd.DataFrame,
           as_of: date, policy: Any) -> tuple[pd.DataFrame, dict[str, dict[frozenset, str]]]:
    """Profiles of the given subsets, in one ``build_profiles`` call, and uscc → {action ids →
    key of its profile row} (subsets without a profile are left out)."""
    jobs, index = [], {}
    for uscc, subsets in subsets_of.items():
        for subset in subsets:
            key = f"{uscc}{KEY_SEPARATOR}{len(jobs)}"
            index[key] = (uscc, frozenset(s.id for s in subset))
            jobs.append((key, uscc, tuple(s.action for s in subset)))
    built = _profiles_for(jobs, records, subjects, as_of, policy)
    out: dict[str, dict[frozenset, str]] = {u: {} for u in subsets_of}
    for key in built.get("uscc", pd.Series(dtype=str)).astype(str):
        uscc, ids = index[key]
        out[uscc][ids] = key
    return built, out


def what_if_entries(model: Any, graded: pd.DataFrame, inputs: WhatIfInputs, *, as_of: date) -> dict[str, list[dict]]:
    """uscc → ``WhatIfOut`` dicts (one per action of the chosen set, each carrying the grade and
    score the whole set leads to); ``[]`` when no actionable set improves the grade.

    ``model`` is a `GradingModel` (``predict_proba``, ``grade``, ``grader``); ``graded`` has
    ``uscc`` and ``grade`` (the job's grades): only ``inputs.grades`` are searched.
    """
    out: dict[str, list[dict]] = {str(u): [] for u in graded["uscc"]}
    wanted = set(graded.loc[graded["grade"].isin(inputs.grades), "uscc"].astype(str))
    if not wanted:
        return out
    records = inputs.records.loc[inputs.records["uscc"].isin(wanted)]
    subjects = inputs.subjects.loc[inputs.subjects["uscc"].isin(wanted)]
    with_subject = set(subjects["uscc"].astype(str))
    steps_of = {uscc: [_Step(f"{a.action}:{a.record_id}", a.description_zh, a.description_en, a) for a in actions]
                for uscc, actions in sorted(candidate_actions_by_subject(records, as_of, inputs.policy).items())
                if uscc in with_subject}
    if not steps_of:
        return out
    # Pass 1: the current profile and every single action, all subjects in one build.
    singles = {u: [(), *[(s,) for s in steps]] for u, steps in steps_of.items()}
    first, keys = _build(singles, records, subjects, as_of, inputs.policy)
    alone = pd.Series(model.predict_proba(first)[:, 1], index=first["uscc"].astype(str).to_numpy())
    # Pass 2: subjects with too many actions keep the ones that lower the probability most alone,
    # as many as keep every subset within max_subsets; all their subsets in one more build.
    plans: dict[str, list[_Step]] = {}
    for uscc, steps in steps_of.items():
        if frozenset() not in keys[uscc]:
            continue  # not profiled on as_of (closed, not yet registered)
        keep = len(steps)
        while keep > 1 and subset_count(keep, inputs.max_actions) > inputs.max_subsets:
            keep -= 1
        if keep < len(steps):
            p_alone = alone.loc[[keys[uscc][frozenset([s.id])] for s in steps]].to_numpy()
            steps = [steps[i] for i in sorted(np.argsort(p_alone, kind="stable")[:keep])]
        plans[uscc] = steps
    more = {u: [s for s in _subsets(steps, inputs.max_actions) if len(s) > 1]
            for u, steps in plans.items()}
    second, more_keys = _build(more, records, subjects, as_of, inputs.policy)
    for uscc, extra in more_keys.items():
        keys[uscc].update(extra)
    # Every hypothetical profile graded in one call: the search looks its subsets up, and the
    # promised grade and score are what the model gives for the chosen profile.
    profiles = pd.concat([first, second], ignore_index=True)
    row_of = {key: i for i, key in enumerate(profiles["uscc"].astype(str))}
    p = model.predict_proba(profiles)[:, 1]
    codes = np.asarray(model.grader.grade(p, profiles).codes)
    promised = model.grade(profiles)
    for uscc, steps in plans.items():
        known = keys[uscc]
        if any(frozenset(s.id for s in subset) not in known for subset in _subsets(steps, inputs.max_actions)):
            continue  # a hypothetical profile is missing: no promise for this subject, the others go on

        def score(subsets: list[tuple[_Step, ...]], known: dict = known) -> tuple[np.ndarray, np.ndarray]:
            rows = [row_of[known[frozenset(s.id for s in subset)]] for subset in subsets]
            return codes[rows], p[rows]

        result = search(steps, score, max_actions=inputs.max_actions, max_subsets=inputs.max_subsets)
        if not result.found:
            continue
        row = row_of[known[frozenset(s.id for s in result.actions)]]
        grade, score_to = str(promised["grade"].iloc[row]), float(promised["score"].iloc[row])
        out[uscc] = [
            {"action": s.action.action, "label_zh": s.label_zh, "label_en": s.label_en,
             "record_id": s.action.record_id, "score": score_to, "grade": grade}
            for s in result.actions
        ]
    return out
