"""The stratified draw: spec conformance, exactness, fairness, floor, reproducibility."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from supervision.draw import (
    STRATA,
    DrawInputError,
    canonical_order,
    draw_stratified,
    k_for_stratum,
    new_draw_seed,
    pcg64_reference,
    pool_hash,
    ratio_to_ppm,
    seed_commitment,
    stream_state,
    subject_keys,
)


@given(state=st.integers(0, 2**128 - 1), inc_half=st.integers(0, 2**127 - 1))
@settings(max_examples=50, deadline=None)
def test_numpy_keys_follow_the_documented_pcg64(state: int, inc_half: int) -> None:
    inc = 2 * inc_half + 1
    assert subject_keys(20, state, inc).tolist() == pcg64_reference(state, inc, 20)


def test_commitment_is_sha256_of_the_revealed_seed() -> None:
    seed = new_draw_seed()
    assert seed_commitment(seed) == hashlib.sha256(seed).hexdigest()
    assert seed_commitment(new_draw_seed()) != seed_commitment(seed)
    with pytest.raises(DrawInputError):
        seed_commitment(b"short")


def test_stream_depends_on_every_input() -> None:
    seed = bytes(range(32))
    base = stream_state(seed, department="market", item="MKT-01")
    assert base == stream_state(seed, department="market", item="MKT-01")
    variants = [
        stream_state(bytes(31) + b"\x01", department="market", item="MKT-01"),
        stream_state(seed, department="fire", item="MKT-01"),
        stream_state(seed, department="market", item="MKT-02"),
        stream_state(seed, department="market", item="MKT-01", public_salt="lottery 2026-12-01"),
        stream_state(seed, department="market", item="MKT-01", purpose="inspectors"),
    ]
    assert all(v != base for v in variants)
    assert all(v[1] % 2 == 1 for v in [base, *variants])  # PCG increment is odd


@given(n=st.integers(0, 10**7), ppm=st.integers(0, 10**6))
@settings(deadline=None)
def test_k_rounds_up_and_stays_in_pool(n: int, ppm: int) -> None:
    k = k_for_stratum(n, ppm)
    assert 0 <= k <= n
    assert k * 10**6 >= n * ppm or k == n
    if n >= 1 and ppm >= 1:
        assert k >= 1  # 不免抽: a non-empty stratum with a positive ratio is always drawn from
    assert k_for_stratum(n, min(ppm + 1, 10**6)) >= k


def test_ratio_to_ppm_rounds_half_up() -> None:
    assert ratio_to_ppm(0.05) == 50_000
    assert ratio_to_ppm(0.0000005) == 1
    assert ratio_to_ppm(1.0) == 10**6


@given(
    data=st.data(),
    n=st.integers(1, 200),
    key_bits=st.sampled_from([2, 8, 64]),
    near_top=st.booleans(),
)
@settings(max_examples=100, deadline=None)
def test_draw_is_the_k_smallest_keys_per_stratum(data, n: int, key_bits: int, near_top: bool) -> None:
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32)))
    strata = rng.integers(0, len(STRATA), n).astype(np.int8)
    keys = rng.integers(0, 2**key_bits - 1, n, dtype=np.uint64, endpoint=True)  # small ranges force ties
    if near_top:  # keys far from uniform: the candidate bound falls short and the exact fallback runs
        keys = np.iinfo(np.uint64).max - keys
    counts = [int((strata == c).sum()) for c in range(len(STRATA))]
    k = [data.draw(st.integers(0, c)) for c in counts]
    got = draw_stratified(keys, strata, k).tolist()
    expected = sorted(
        i
        for c in range(len(STRATA))
        for i in sorted(np.flatnonzero(strata == c).tolist(), key=lambda j: (int(keys[j]), j))[: k[c]]
    )
    assert got == expected
    assert [int((strata[got] == c).sum()) for c in range(len(STRATA))] == k  # exact per-stratum counts


def test_draw_rejects_k_larger_than_stratum() -> None:
    with pytest.raises(DrawInputError, match="stratum B"):
        draw_stratified(np.arange(3, dtype=np.uint64), np.array([2, 2, 2]), [0, 0, 4, 0, 0])
    with pytest.raises(DrawInputError, match="stratum codes"):
        draw_stratified(np.arange(3, dtype=np.uint64), np.array([2, 7, 2]), [0, 0, 1, 0, 0])


def _draw_once(seed_int: int, strata: np.ndarray, k: list[int]) -> np.ndarray:
    seed = hashlib.sha256(seed_int.to_bytes(8, "big")).digest()
    state, inc = stream_state(seed, department="market", item="MKT-01")
    return draw_stratified(subject_keys(strata.size, state, inc), strata, k)


def test_within_a_stratum_every_subject_is_equally_likely() -> None:
    # 60 B subjects, 5 drawn per plan, 3000 seeded plans: chi-square on inclusion counts.
    strata = np.array([2] * 60 + [4] * 20, dtype=np.int8)
    k = [0, 0, 5, 0, 4]
    counts = np.zeros(strata.size, dtype=np.int64)
    for seed_int in range(3000):
        counts[_draw_once(seed_int, strata, k)] += 1
    b = counts[:60]
    assert b.sum() == 3000 * 5
    assert stats.chisquare(b).pvalue > 0.001
    assert stats.chisquare(counts[60:]).pvalue > 0.001


def test_floor_gives_every_a_subject_a_chance() -> None:
    # 300 A subjects drawn only at the 1 % floor (k = 3): over many plans each one appears.
    strata = np.zeros(300, dtype=np.int8)
    k = [k_for_stratum(300, ratio_to_ppm(0.01)), 0, 0, 0, 0]
    assert k[0] == 3
    seen = np.zeros(300, dtype=bool)
    for seed_int in range(1500):
        seen[_draw_once(seed_int, strata, k)] = True
    assert seen.all()


def test_canonical_order_and_pool_hash() -> None:
    codes = np.array([b"91320102MA1XXXXXXB", b"91320102MA1XXXXXXA", b"A1320102MA1XXXXXXC"], dtype="S18")
    order = canonical_order(codes)
    assert codes[order].tolist() == sorted(codes.tolist())
    ordered = codes[order]
    h = pool_hash(ordered, np.array([b"A", b"B", b"C"]), np.array([0, 1, 0]))
    expected = hashlib.sha256(
        b"".join(
            u + b"," + g + b"," + x + b"\n"
            for u, g, x in zip(ordered, [b"A", b"B", b"C"], [b"0", b"1", b"0"], strict=True)
        )
    ).hexdigest()
    assert h == expected
    assert pool_hash(ordered, np.array([b"A", b"B", b"D"]), np.array([0, 1, 0])) != h
    assert pool_hash(ordered, np.array([b"A", b"B", b"C"]), np.array([0, 0, 0])) != h
    with pytest.raises(DrawInputError, match="canonical order"):
        pool_hash(codes, np.array([b"A", b"B", b"C"]), np.array([0, 1, 0]))
    with pytest.raises(DrawInputError, match="18 characters"):
        pool_hash(np.array([b"91320102"], dtype="S18"), np.array([b"A"]), np.array([0]))
    with pytest.raises(DrawInputError, match="appears twice"):
        canonical_order(np.array([b"X", b"X"], dtype="S18"))
