"""What-if in the grading job: per subject, the smallest set of actions that improves its grade.

Actions come from ``features.actions.candidate_actions`` only (repair an eligible record, settle
arrears, fulfil a broken commitment), so nothing the subject cannot change is ever proposed.
Every hypothetical profile of a batch of subjects is built in ONE ``build_profiles`` call over a
combined records frame whose subjects get synthetic keys (``<uscc>~<n>``), then
``models.whatif.what_if`` picks the set; the promised grade and score are what the same model,
grader and overrides give for the applied profile.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

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


def _subsets(steps: Sequence[_Step], max_actions: int, max_subsets: int) -> list[tuple[_Step, ...]]:
    """The empty set, then subsets by increasing size, all of them if there are ≤ ``max_subsets``
    (``what_if`` then searches exhaustively), else the singles only (its greedy search asks for more)."""
    k_max = min(max_actions, len(steps))
    every = [s for k in range(1, k_max + 1) for s in itertools.combinations(steps, k)]
    if len(every) > max_subsets:
        every = [(s,) for s in steps]
    return [(), *every]


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
    plans: dict[str, tuple[list[_Step], list[tuple[_Step, ...]]]] = {}
    jobs = []
    for uscc in sorted(wanted):
        own = by_subject.get(uscc)
        if own is None or uscc not in subject_rows:
            continue
        steps = [_Step(f"{a.action}:{a.record_id}", a.description_zh, a.description_en, a)
                 for a in candidate_actions(own, uscc, as_of, inputs.policy)]
        if not steps:
            continue
        subsets = _subsets(steps, inputs.max_actions, inputs.max_subsets)
        plans[uscc] = (steps, subsets)
        jobs += [(f"{uscc}{KEY_SEPARATOR}{n}", own, subject_rows[uscc], tuple(s.action for s in subset))
                 for n, subset in enumerate(subsets)]
    cache = _profiles_for(jobs, as_of, inputs.policy)
    for uscc, (steps, subsets) in plans.items():
        known = {frozenset(s.id for s in subset): cache.get(f"{uscc}{KEY_SEPARATOR}{n}")
                 for n, subset in enumerate(subsets)}

        def apply(chosen: list[_Step], uscc: str = uscc, known: dict = known) -> pd.DataFrame:
            ids = frozenset(s.id for s in chosen)
            if known.get(ids) is None:  # greedy search beyond the precomputed singles: build it now
                key = f"{uscc}{KEY_SEPARATOR}x{len(known)}"
                built = _profiles_for([(key, by_subject[uscc], subject_rows[uscc], tuple(s.action for s in chosen))],
                                      as_of, inputs.policy)
                known[ids] = built.get(key, pd.DataFrame())
            return known[ids]

        if known.get(frozenset()) is None:
            continue  # subject not profiled on as_of (closed, not yet registered)
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
