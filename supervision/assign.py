"""Inspector assignment (双随机 inspector side): random, balanced, within capacity, with recusal.

Vectorised: inspectors' free capacity is laid out as *slots* ordered by load level and then by
a random inspector permutation, so taking slots in order spreads work evenly and can never
exceed a capacity. Subjects take consecutive slots (highest-risk stratum first, random within);
the few cells that break a recusal rule are repaired one by one from spare slots or by a swap.
A subject that cannot be staffed is returned with the reason, never dropped.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

# Reasons a drawn subject has no (complete) inspection team.
NO_QUALIFIED_INSPECTOR = "no_qualified_inspector"
NOT_ENOUGH_ELIGIBLE = "not_enough_eligible_inspectors_after_recusal"
CAPACITY_EXHAUSTED = "inspector_capacity_exhausted"


@dataclass(frozen=True)
class InspectorPool:
    """The inspectors qualified for one task, as arrays (index = position in ``ids``)."""

    ids: np.ndarray  # str
    districts: np.ndarray  # str district codes
    capacity: np.ndarray  # int > 0, inspections per plan period

    def __post_init__(self) -> None:
        if not (len(self.ids) == len(self.districts) == len(self.capacity)):
            raise ValueError("inspector ids, districts and capacity must have the same length")
        if len(self.capacity) and int(np.min(self.capacity)) <= 0:
            raise ValueError("inspector capacity must be > 0 (data contract: int > 0)")


@dataclass
class Assignment:
    """Inspectors per drawn subject (-1 = unfilled) and the subjects that could not be staffed."""

    team: np.ndarray  # (n_subjects, per_subject) inspector indices into the pool
    unstaffed: dict[int, str] = field(default_factory=dict)  # subject index → reason
    loads: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # after this task


def _slot_sequence(capacity: np.ndarray, loads: np.ndarray, perm_pos: np.ndarray, needed: int) -> np.ndarray:
    """Inspector indices of free slots, level by level (load ℓ, then random order), ≥ needed long."""
    chunks: list[np.ndarray] = []
    have = 0
    by_position = np.argsort(perm_pos)
    cap_sorted, load_sorted = capacity[by_position], loads[by_position]
    level = int(load_sorted.min()) if load_sorted.size else 0
    top = int(cap_sorted.max()) if cap_sorted.size else 0
    # One spare level beyond what is needed, so recusal repairs find free slots.
    while level < top and have < needed + len(capacity):
        free = by_position[(load_sorted <= level) & (cap_sorted > level)]
        chunks.append(free)
        have += free.size
        level += 1
    return np.concatenate(chunks) if chunks else np.empty(0, dtype=np.int64)


def forbidden_pairs(
    pairs: Iterable[tuple[str, str]], subject_ids: Sequence[str], inspector_ids: Sequence[str]
) -> tuple[np.ndarray, np.ndarray]:
    """Map (inspector_id, uscc) pairs to (subject position, inspector position) arrays.

    Pairs naming a subject or inspector outside this task are irrelevant and dropped.
    """
    frame = pd.DataFrame(list(pairs), columns=["inspector_id", "uscc"])
    if frame.empty:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    s = pd.Index(subject_ids).get_indexer(frame["uscc"])
    i = pd.Index(inspector_ids).get_indexer(frame["inspector_id"])
    keep = (s >= 0) & (i >= 0)
    return s[keep].astype(np.int64), i[keep].astype(np.int64)


def assign_inspectors(
    *,
    n_subjects: int,
    subject_priority: np.ndarray,
    inspectors: InspectorPool,
    rng: np.random.Generator,
    per_subject: int = 2,
    forbidden: tuple[np.ndarray, np.ndarray] | None = None,
    subject_districts: np.ndarray | None = None,
    recuse_same_district: bool = False,
    loads: np.ndarray | None = None,
) -> Assignment:
    """Assign ``per_subject`` distinct inspectors to each of ``n_subjects`` subjects.

    Guarantees: no inspector over capacity (counting ``loads`` from earlier tasks); no
    ``forbidden`` (subject position, inspector position) pair — declared conflicts and the
    subject's previous inspectors, see :func:`forbidden_pairs`; optionally no inspector from the
    subject's own district; loads as even as those rules allow. Subjects with a higher
    ``subject_priority`` are staffed first, so a capacity shortfall falls on lower-risk subjects.
    """
    n_insp = len(inspectors.ids)
    team = np.full((n_subjects, per_subject), -1, dtype=np.int64)
    loads = np.zeros(n_insp, dtype=np.int64) if loads is None else np.asarray(loads, dtype=np.int64).copy()
    if n_subjects == 0:
        return Assignment(team=team, loads=loads)
    if n_insp == 0:
        return Assignment(
            team=team, unstaffed=dict.fromkeys(range(n_subjects), NO_QUALIFIED_INSPECTOR), loads=loads
        )
    if recuse_same_district and subject_districts is None:
        raise ValueError("recuse_same_district needs subject_districts")
    fs, fi = forbidden if forbidden is not None else (np.empty(0, np.int64), np.empty(0, np.int64))
    fs, fi = np.asarray(fs, dtype=np.int64), np.asarray(fi, dtype=np.int64)
    insp_district = np.asarray(inspectors.districts)
    subj_district = None if subject_districts is None else np.asarray(subject_districts)

    # Staffing order: highest priority first, random within a priority.
    # (A random permutation then a stable radix sort on the small priority codes: ~50× faster
    # than a lexsort on (priority, random key) for a million subjects.)
    shuffled = rng.permutation(n_subjects)
    priority = np.asarray(subject_priority).astype(np.int16)
    order = shuffled[np.argsort(-priority[shuffled], kind="stable")]
    perm_pos = rng.permutation(n_insp)
    slots = _slot_sequence(inspectors.capacity, loads, perm_pos, n_subjects * per_subject)
    staffable = min(n_subjects, slots.size // per_subject)
    team[order[:staffable]] = slots[: staffable * per_subject].reshape(staffable, per_subject)
    unstaffed = {int(s): CAPACITY_EXHAUSTED for s in order[staffable:]}
    spare = slots[staffable * per_subject :].tolist()

    by_subject: dict[str, np.ndarray] = {}

    def forbidden_for(s: int) -> np.ndarray:
        if n_bad <= 256:  # a few repairs: a linear scan beats sorting every pair
            return fi[fs == s]
        if not by_subject:
            sort = np.argsort(fs, kind="stable")
            by_subject.update(fs=fs[sort], fi=fi[sort])
        lo, hi = np.searchsorted(by_subject["fs"], [s, s + 1])
        return by_subject["fi"][lo:hi]

    def eligible(s: int, i: int, row: np.ndarray, banned: np.ndarray) -> bool:
        if i in row or i in banned:
            return False
        return not (recuse_same_district and insp_district[i] == subj_district[s])

    # Vectorised detection of broken cells, from the (few) forbidden pairs' side.
    bad = np.zeros(team.shape, dtype=bool)
    for c in range(per_subject):
        hit = team[fs, c] == fi
        bad[fs[hit], c] = True
    if recuse_same_district:
        staffed_mask = team >= 0
        bad |= staffed_mask & (insp_district[np.maximum(team, 0)] == subj_district[:, None])
    for a in range(per_subject):
        for b in range(a + 1, per_subject):
            bad[:, b] |= (team[:, a] == team[:, b]) & (team[:, b] >= 0)

    staffed = order[:staffable]
    bad_rows, bad_cols = np.nonzero(bad)
    n_bad = bad_rows.size
    for s, c in zip(bad_rows, bad_cols, strict=True):
        s, c = int(s), int(c)
        if s in unstaffed:
            continue
        row = team[s]
        current = int(row[c])
        row[c] = -1
        banned = forbidden_for(s)
        # 1) a spare slot whose inspector is eligible
        pick = next((k for k, i in enumerate(spare) if eligible(s, i, row, banned)), None)
        if pick is not None:
            row[c] = spare.pop(pick)
            spare.append(current)  # the broken cell's slot goes back to the pool
            continue
        # 2) swap with a random other staffed subject when both sides stay eligible
        swapped = False
        for s2 in rng.choice(staffed, size=min(64, staffed.size), replace=False):
            s2 = int(s2)
            if s2 == s or s2 in unstaffed:
                continue
            row2, banned2 = team[s2], forbidden_for(s2)
            for c2 in range(per_subject):
                i2 = int(row2[c2])
                if i2 < 0 or not eligible(s, i2, row, banned):
                    continue
                row2[c2] = -1
                if eligible(s2, current, row2, banned2):
                    row[c], row2[c2] = i2, current
                    swapped = True
                    break
                row2[c2] = i2
            if swapped:
                break
        if swapped:
            continue
        # 3) give up on this subject: free its slots and say why
        spare.append(current)
        spare.extend(int(i) for i in row if i >= 0)
        row[:] = -1
        empty = np.empty(0, dtype=np.int64)
        n_eligible = sum(eligible(s, i, empty, banned) for i in range(n_insp))
        unstaffed[s] = NOT_ENOUGH_ELIGIBLE if n_eligible < per_subject else CAPACITY_EXHAUSTED

    used = team[team >= 0]
    loads += np.bincount(used, minlength=n_insp)
    return Assignment(team=team, unstaffed=unstaffed, loads=loads)
