"""Inspector assignment: capacity, recusal, distinct teams, balance, unstaffable subjects reported."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from supervision.assign import (
    CAPACITY_EXHAUSTED,
    NO_QUALIFIED_INSPECTOR,
    NOT_ENOUGH_ELIGIBLE,
    InspectorPool,
    RecusalIndex,
    assign_inspectors,
    forbidden_pairs,
)


def _pool(capacity, districts=None) -> InspectorPool:
    capacity = np.asarray(capacity, dtype=np.int64)
    districts = np.zeros(capacity.size, dtype=np.int64) if districts is None else np.asarray(districts)
    return InspectorPool(
        ids=np.array([f"I{i}" for i in range(capacity.size)]), districts=districts, capacity=capacity
    )


@given(
    seed=st.integers(0, 2**32),
    n_subjects=st.integers(0, 120),
    n_inspectors=st.integers(0, 25),
    per_subject=st.integers(1, 3),
    conflict_share=st.floats(0, 0.5),
    recuse_district=st.booleans(),
    prior_load=st.booleans(),
)
@settings(max_examples=120, deadline=None)
def test_assignment_invariants(
    seed, n_subjects, n_inspectors, per_subject, conflict_share, recuse_district, prior_load
) -> None:
    rng = np.random.default_rng(seed)
    inspectors = _pool(rng.integers(1, 12, n_inspectors), rng.integers(0, 3, n_inspectors))
    n_pairs = int(conflict_share * n_subjects * max(n_inspectors, 1))
    fs = rng.integers(0, max(n_subjects, 1), n_pairs) if n_subjects else np.empty(0, np.int64)
    fi = rng.integers(0, max(n_inspectors, 1), n_pairs) if n_inspectors else np.empty(0, np.int64)
    if not (n_subjects and n_inspectors):
        fs = fi = np.empty(0, np.int64)
    loads = rng.integers(0, 2, n_inspectors) if prior_load else None
    subj_district = rng.integers(0, 3, n_subjects)
    result = assign_inspectors(
        n_subjects=n_subjects,
        subject_priority=rng.integers(0, 5, n_subjects),
        inspectors=inspectors,
        rng=rng,
        per_subject=per_subject,
        forbidden=(fs, fi),
        subject_districts=subj_district,
        recuse_same_district=recuse_district,
        loads=loads,
    )
    team = result.team
    start = np.zeros(n_inspectors, np.int64) if loads is None else loads
    # capacity never exceeded, loads add up
    assert (result.loads <= np.maximum(inspectors.capacity, start)).all()
    assert (result.loads - start).sum() == (team >= 0).sum()
    forbidden = set(zip(fs.tolist(), fi.tolist(), strict=True))
    for s in range(n_subjects):
        row = team[s]
        if s in result.unstaffed:
            assert (row == -1).all()
            assert result.unstaffed[s] in {CAPACITY_EXHAUSTED, NO_QUALIFIED_INSPECTOR, NOT_ENOUGH_ELIGIBLE}
            continue
        assert (row >= 0).all(), "a staffed subject has a full team"
        assert len(set(row.tolist())) == per_subject, "inspectors in a team are distinct"
        assert not any((s, int(i)) in forbidden for i in row), "recusal violated"
        if recuse_district:
            assert (inspectors.districts[row] != subj_district[s]).all()


def test_balanced_and_full_when_nothing_constrains() -> None:
    rng = np.random.default_rng(3)
    inspectors = _pool([100] * 20)
    result = assign_inspectors(
        n_subjects=333, subject_priority=np.zeros(333), inspectors=inspectors, rng=rng, per_subject=2
    )
    assert not result.unstaffed
    assert result.loads.max() - result.loads.min() <= 1


def test_subject_conflicting_with_every_inspector_is_reported() -> None:
    rng = np.random.default_rng(0)
    inspectors = _pool([10, 10, 10])
    forbidden = (np.array([4, 4, 4]), np.array([0, 1, 2]))
    result = assign_inspectors(
        n_subjects=6, subject_priority=np.zeros(6), inspectors=inspectors, rng=rng, forbidden=forbidden
    )
    assert result.unstaffed == {4: NOT_ENOUGH_ELIGIBLE}
    assert (result.team[[0, 1, 2, 3, 5]] >= 0).all()


def test_no_qualified_inspector_and_capacity_shortfall_hit_lowest_risk_first() -> None:
    rng = np.random.default_rng(0)
    empty = assign_inspectors(n_subjects=3, subject_priority=np.zeros(3), inspectors=_pool([]), rng=rng)
    assert empty.unstaffed == dict.fromkeys(range(3), NO_QUALIFIED_INSPECTOR)
    # 2 inspectors × capacity 3 = 3 teams of two; 5 subjects: the two priority-0 ones go unstaffed
    priority = np.array([0, 4, 3, 0, 4])
    short = assign_inspectors(n_subjects=5, subject_priority=priority, inspectors=_pool([3, 3]), rng=rng)
    assert short.unstaffed == {0: CAPACITY_EXHAUSTED, 3: CAPACITY_EXHAUSTED}
    assert (short.loads <= 3).all()


def test_forbidden_pairs_maps_ids_and_drops_outsiders() -> None:
    fs, fi = forbidden_pairs(
        [("I1", "U2"), ("I9", "U2"), ("I0", "U0"), ("I1", "U9")], ["U0", "U1", "U2"], ["I0", "I1"]
    )
    assert sorted(zip(fs.tolist(), fi.tolist(), strict=True)) == [(0, 0), (2, 1)]


@given(
    seed=st.integers(0, 2**32),
    n_pool=st.integers(1, 60),
    n_pairs=st.integers(0, 200),
    n_drawn=st.integers(0, 60),
)
@settings(max_examples=80, deadline=None)
def test_recusal_index_finds_exactly_the_drawn_subjects_pairs(seed, n_pool, n_pairs, n_drawn) -> None:
    rng = np.random.default_rng(seed)
    subjects, inspectors = rng.integers(0, n_pool, n_pairs), rng.integers(0, 9, n_pairs)
    drawn = np.sort(rng.choice(n_pool, size=min(n_drawn, n_pool), replace=False))
    position, inspector = RecusalIndex.build(subjects, inspectors, n_pool).pairs_of(drawn)
    found = sorted(zip(drawn[position].tolist(), inspector.tolist(), strict=True))
    wanted = sorted((s, i) for s, i in zip(subjects.tolist(), inspectors.tolist(), strict=True) if s in set(drawn))
    assert found == wanted  # every pair of a drawn subject (duplicates kept), and no other


def test_recusal_index_rejects_subjects_outside_the_pool() -> None:
    import pytest

    with pytest.raises(ValueError, match="subject positions"):
        RecusalIndex.build(np.array([0, 5]), np.array([1, 1]), n_subjects=5)
