"""What-if in the grading job: per subject, the smallest set of actions that improves its grade.

Actions come from ``features.actions.candidate_actions`` only (repair an eligible record, settle
arrears, fulfil a broken commitment), so nothing the subject cannot change is ever proposed.
Hypothetical profiles are built in TWO ``build_profiles`` calls over combined records frames whose
subjects get synthetic keys (``<uscc>~<n>``): first every single action of every subject, then all
subsets (≤ ``max_actions``) of each subject's actions (its best ``k`` single actions when all of
them would exceed ``max_subsets``); then
``models.whatif.what_if`` picks the set; the promised grade and score are what the same model,
grader and overrides give for the applied profile.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from features.actions import Action, apply_actions, candidate_actions
from features.profiles import build_profiles
from models.whatif import what_if

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
class _Step:
    """``features.actions.Action`` in the shape ``models.whatif`` expects (id, labels)."""

    id: str
    label_zh: str
    label_en: str
    action: Action


def _n_subsets(n: int, max_actions: int) -> int:
    return sum(math.comb(n, k) for k in range(1, min(max_actions, n) + 1))


def _subsets(steps: Sequence[_Step], max_actions: int) -> list[tuple[_Step, ...]]:
    """Every non-empty subset of at most ``max_actions`` steps, by increasing size."""
    return [s for k in range(1, min(max_actions, len(steps)) + 1) for s in itertools.combinations(steps, k)]


def _hypothetical(records: pd.DataFrame, subject: pd.DataFrame, actions: Iterable[Action], as_of: date,
                  key: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The subject's records after ``actions``, re-keyed to ``key`` (record ids too, because
    record versions are resolved by record_id across the whole frame)."""
    applied = apply_actions(records, list(actions), as_of)
    applied["uscc"] = key
    applied["record_id"] = applied["record_id"].astype(str) + KEY_SEPARATOR + key
    if "ref_record_id" in applied.columns:
        ref = applied["ref_record_id"]
        applied["ref_record_id"] = ref.where(ref.isna(), ref.astype(str) + KEY_SEPARATOR + key)
    return applied, subject.assign(uscc=key)


def _profiles_for(jobs: list[tuple[str, pd.DataFrame, pd.DataFrame, tuple[Action, ...]]], as_of: date,
                  policy: Any) -> dict[str, pd.DataFrame]:
    """key → one-row profile, every job in one ``build_profiles`` call."""
    if not jobs:
        return {}
    parts = [_hypothetical(recs, subj, acts, as_of, key) for key, recs, subj, acts in jobs]
    records = pd.concat([p[0] for p in parts], ignore_index=True)
    subjects = pd.concat([p[1] for p in parts], ignore_index=True)
    built = build_profiles(records, subjects, as_of=as_of, policy=policy)
    return {str(k): row for k, row in built.groupby("uscc", sort=False)}


def _build(subsets_of: dict[str, list[tuple[_Step, ...]]], by_subject: dict[str, pd.DataFrame],
           subject_rows: dict[str, pd.DataFrame], as_of: date, policy: Any) -> dict[str, dict[frozenset, Any]]:
    """uscc → {action ids → one-row profile} for the given subsets, in one ``build_profiles`` call."""
    jobs, index = [], {}
    for uscc, subsets in subsets_of.items():
        for subset in subsets:
            key = f"{uscc}{KEY_SEPARATOR}{len(jobs)}"
            index[key] = (uscc, frozenset(s.id for s in subset))
            jobs.append((key, by_subject[uscc], subject_rows[uscc], tuple(s.action for s in subset)))
    built = _profiles_for(jobs, as_of, policy)
    out: dict[str, dict[frozenset, Any]] = {u: {} for u in subsets_of}
    for key, (uscc, ids) in index.items():
        out[uscc][ids] = built.get(key)
    return out


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
    by_subject = {str(u): part for u, part in records.groupby("uscc", sort=False)}
    subject_rows = {str(u): part for u, part in subjects.groupby("uscc", sort=False)}
    steps_of: dict[str, list[_Step]] = {}
    for uscc in sorted(wanted):
        own = by_subject.get(uscc)
        if own is None or uscc not in subject_rows:
            continue
        steps = [_Step(f"{a.action}:{a.record_id}", a.description_zh, a.description_en, a)
                 for a in candidate_actions(own, uscc, as_of, inputs.policy)]
        if steps:
            steps_of[uscc] = steps
    # Pass 1: the current profile and every single action, all subjects in one build.
    singles = {u: [(), *[(s,) for s in steps]] for u, steps in steps_of.items()}
    cache = _build(singles, by_subject, subject_rows, as_of, inputs.policy)
    # Pass 2: subjects with too many actions keep the ones that lower the probability most alone,
    # as many as keep every subset within max_subsets; all their subsets in one more build.
    plans: dict[str, list[_Step]] = {}
    for uscc, steps in steps_of.items():
        if cache[uscc].get(frozenset()) is None:
            continue  # not profiled on as_of (closed, not yet registered)
        keep = len(steps)
        while keep > 1 and _n_subsets(keep, inputs.max_actions) > inputs.max_subsets:
            keep -= 1
        if keep < len(steps):
            alone = model.predict_proba(pd.concat([cache[uscc][frozenset([s.id])] for s in steps]))[:, 1]
            steps = [steps[i] for i in sorted(np.argsort(alone, kind="stable")[:keep])]
        plans[uscc] = steps
    more = {u: [s for s in _subsets(steps, inputs.max_actions) if len(s) > 1]
            for u, steps in plans.items()}
    for uscc, extra in _build(more, by_subject, subject_rows, as_of, inputs.policy).items():
        cache[uscc].update(extra)
    for uscc, steps in plans.items():
        known = cache[uscc]

        def apply(chosen: list[_Step], known: dict = known) -> pd.DataFrame:
            return known[frozenset(s.id for s in chosen)]

        result = what_if(model, model.grader, steps, apply, max_actions=inputs.max_actions,
                         max_subsets=inputs.max_subsets)
        if not result.found:
            continue
        promised = model.grade(apply(list(result.actions)))
        grade, score = str(promised["grade"].iloc[0]), float(promised["score"].iloc[0])
        out[uscc] = [
            {"action": s.action.action, "label_zh": s.label_zh, "label_en": s.label_en,
             "record_id": s.action.record_id, "score": score, "grade": grade}
            for s in result.actions
        ]
    return out
