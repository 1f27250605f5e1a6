"""Inspector assignment (双随机 inspector side): random, balanced, within capacity, with recusal.

Vectorised: inspectors' free capacity is laid out as *slots* ordered by load level and then by
a random inspector permutation, so taking slots in order spreads work evenly and can never
exceed a capacity. Subjects take consecutive slots (highest-risk stratum first, random within);
the few cells that break a recusal rule are repaired one by one from spare slots or by a swap.
A subject that cannot be staffed is returned with the reason, never dropped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import partial

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


class _SpareSlots:
    """Free slots left after the first pass, in slot order, then slots given back by repairs.

    Kept as an array (not a Python list of maybe millions of slots) and searched in chunks,
    because a repair almost always finds an eligible inspector among the first few slots.
    """

    _CHUNK = 256

    def __init__(self, slots: np.ndarray) -> None:
        self._slots = slots
        self._taken = np.zeros(slots.size, dtype=bool)
        self._returned: list[int] = []

    def take_first(self, eligible: Callable[[np.ndarray], np.ndarray]) -> int | None:
        """Remove and return the first slot's inspector for which ``eligible`` holds, or None."""
        for start in range(0, self._slots.size, self._CHUNK):
            chunk = self._slots[start : start + self._CHUNK]
            ok = eligible(chunk) & ~self._taken[start : start + self._CHUNK]
            if ok.any():
                hit = start + int(np.argmax(ok))
                self._taken[hit] = True
                return int(self._slots[hit])
        if self._returned:
            ok = eligible(np.asarray(self._returned, dtype=np.int64))
            if ok.any():
                return self._returned.pop(int(np.argmax(ok)))
        return None

    def give_back(self, inspectors: Iterable[int]) -> None:
        self._returned.extend(inspectors)


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


@dataclass(frozen=True)
class RecusalIndex:
    """Forbidden (subject, inspector) pairs of a whole pool, grouped by subject (CSR layout).

    Built once per pool and inspector list — declared conflicts and previous inspectors are
    known before the draw — so that a draw looks up only its drawn subjects' pairs
    (:meth:`pairs_of`, O(drawn + pairs found)) instead of scanning every pair of the pool.
    """

    offsets: np.ndarray  # int64, n_subjects + 1: pairs of subject s are inspectors[offsets[s]:offsets[s+1]]
    inspectors: np.ndarray  # int64 inspector positions, grouped by subject

    @classmethod
    def build(cls, subjects: np.ndarray, inspectors: np.ndarray, n_subjects: int) -> RecusalIndex:
        """Index pairs given as parallel arrays of subject positions (< ``n_subjects``) and inspectors."""
        subjects = np.asarray(subjects, dtype=np.int64)
        inspectors = np.asarray(inspectors, dtype=np.int64)
        if subjects.shape != inspectors.shape:
            raise ValueError(f"recusal pairs: {subjects.size} subjects but {inspectors.size} inspectors")
        if subjects.size and (int(subjects.min()) < 0 or int(subjects.max()) >= n_subjects):
            raise ValueError(f"recusal pairs: subject positions must lie in [0, {n_subjects})")
        offsets = np.zeros(n_subjects + 1, dtype=np.int64)
        np.cumsum(np.bincount(subjects, minlength=n_subjects), out=offsets[1:])
        return cls(offsets=offsets, inspectors=inspectors[np.argsort(subjects, kind="stable")])

    def pairs_of(self, subjects: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(position in ``subjects``, inspector) for every forbidden pair of the given subjects."""
        subjects = np.asarray(subjects, dtype=np.int64)
        start, stop = self.offsets[subjects], self.offsets[subjects + 1]
        count = stop - start
        total = int(count.sum())
        position = np.repeat(np.arange(subjects.size, dtype=np.int64), count)
        # Index of each pair: its subject's start plus its rank within that subject's run.
        first_of_run = np.cumsum(count) - count
        pair = np.arange(total, dtype=np.int64) - np.repeat(first_of_run - start, count)
        return position, self.inspectors[pair]


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
    spare = _SpareSlots(slots[staffable * per_subject :])

    by_subject: dict[str, np.ndarray] = {}

    def forbidden_for(s: int) -> np.ndarray:
        if n_bad <= 256:  # a few repairs: a linear scan beats sorting every pair
            return fi[fs == s]
        if not by_subject:
            sort = np.argsort(fs, kind="stable")
            by_subject.update(fs=fs[sort], fi=fi[sort])
        lo, hi = np.searchsorted(by_subject["fs"], [s, s + 1])
        return by_subject["fi"][lo:hi]

    def eligible_mask(s: int, candidates: np.ndarray, row: np.ndarray, banned: np.ndarray) -> np.ndarray:
        ok = ~np.isin(candidates, row) & ~np.isin(candidates, banned)
        if recuse_same_district:
            ok &= insp_district[candidates] != subj_district[s]
        return ok

    def eligible(s: int, i: int, row: np.ndarray, banned: np.ndarray) -> bool:
        return bool(eligible_mask(s, np.array([i]), row, banned)[0])

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
        pick = spare.take_first(partial(eligible_mask, s, row=row, banned=banned))
        if pick is not None:
            row[c] = pick
            spare.give_back([current])  # the broken cell's slot goes back to the pool
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
        spare.give_back([current, *(int(i) for i in row if i >= 0)])
        row[:] = -1
        n_eligible = int(np.count_nonzero(eligible_mask(s, np.arange(n_insp), row, banned)))
        unstaffed[s] = NOT_ENOUGH_ELIGIBLE if n_eligible < per_subject else CAPACITY_EXHAUSTED

    loads += np.bincount(team.ravel() + 1, minlength=n_insp + 1)[1:]  # shifted: -1 = unfilled
    return Assignment(team=team, unstaffed=unstaffed, loads=loads)
