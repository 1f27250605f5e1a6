"""The verifiable stratified draw (双随机 subject side), specified in docs/draw-algorithm.md.

Everything here is a pure function of its inputs: the same seed, pool and per-stratum sizes
give the same list on any machine. Keys come from the PCG64 (XSL-RR 128/64) raw output stream,
whose state is set directly from SHA-256 so no NumPy seeding routine is involved.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence

import numpy as np

DRAW_ALGORITHM = "tiers-draw-v1"
# Strata in canonical order: A subjects are split by whether a lead (complaint, data-monitoring
# lead, referral) exists, because 无事不扰 only lets leads justify a proactive A visit.
STRATA: tuple[str, ...] = ("A", "A_lead", "B", "C", "D")
STRATUM_CODE = {s: i for i, s in enumerate(STRATA)}
GRADE_OF_STRATUM = {"A": "A", "A_lead": "A", "B": "B", "C": "C", "D": "D"}
PPM = 1_000_000
_MASK64 = (1 << 64) - 1
_MASK128 = (1 << 128) - 1
PCG64_MULTIPLIER = 0x2360ED051FC65DA44385DF649FCCF645
SEED_BYTES = 32


class DrawInputError(ValueError):
    """Inputs to the draw break a rule (duplicate subject, unsorted pool, bad seed)."""


def new_draw_seed() -> bytes:
    """A fresh secret seed (32 bytes from the OS CSPRNG)."""
    return secrets.token_bytes(SEED_BYTES)


def seed_commitment(seed: bytes) -> str:
    """The commitment published before the draw: hex SHA-256 of the secret seed."""
    _check_seed(seed)
    return hashlib.sha256(seed).hexdigest()


def _check_seed(seed: bytes) -> None:
    if not isinstance(seed, bytes | bytearray) or len(seed) != SEED_BYTES:
        raise DrawInputError(f"seed must be {SEED_BYTES} bytes, got {len(seed) if seed else 0}")


def ratio_to_ppm(ratio: float) -> int:
    """A configured ratio as integer parts per million (round half up); the draw uses only this."""
    return int(np.floor(ratio * PPM + 0.5))


def k_for_stratum(pool_size: int, ratio_ppm: int) -> int:
    """Subjects to draw from a stratum: ceil(pool_size × ratio_ppm / 10⁶), capped at pool_size.

    Rounding up is what keeps 不免抽 true for small strata: a non-empty stratum with a positive
    ratio always yields at least one draw.
    """
    if pool_size < 0 or ratio_ppm < 0 or ratio_ppm > PPM:
        raise DrawInputError(f"pool_size={pool_size}, ratio_ppm={ratio_ppm}: need ≥ 0 and ratio ≤ 10⁶")
    return min(pool_size, (pool_size * ratio_ppm + PPM - 1) // PPM)


def canonical_order(usccs: np.ndarray) -> np.ndarray:
    """Indices that put USCCs in canonical (ascending byte) order; rejects duplicates."""
    codes = np.asarray(usccs, dtype="S18")
    order = np.argsort(codes, kind="stable")
    ordered = codes[order]
    if ordered.size > 1:
        dup = np.flatnonzero(ordered[1:] == ordered[:-1])
        if dup.size:
            raise DrawInputError(f"uscc {ordered[dup[0]].decode()} appears twice in the pool; rule: unique")
    return order


def pool_hash(usccs: np.ndarray, grades: np.ndarray, leads: np.ndarray) -> str:
    """SHA-256 of the canonical pool: one ASCII line ``uscc,grade,lead\\n`` per subject.

    ``usccs`` must already be in canonical order (see :func:`canonical_order`); ``lead`` is 0/1.
    """
    codes = np.asarray(usccs, dtype="S18")
    n = codes.size
    if n > 1 and not bool(np.all(codes[1:] > codes[:-1])):
        raise DrawInputError("pool is not in canonical order (strictly ascending uscc)")
    if n and not bool(np.all(codes.view(np.uint8).reshape(n, 18)[:, 17])):
        raise DrawInputError("every uscc in the pool must be exactly 18 characters")
    line = np.empty(
        n, dtype=[("u", "S18"), ("c1", "S1"), ("g", "S1"), ("c2", "S1"), ("l", "S1"), ("nl", "S1")]
    )
    line["u"], line["c1"], line["c2"], line["nl"] = codes, b",", b",", b"\n"
    line["g"] = np.asarray(grades, dtype="S1")
    line["l"] = np.where(np.asarray(leads, dtype=bool), b"1", b"0")
    return hashlib.sha256(line.tobytes()).hexdigest()


def stream_state(
    seed: bytes, *, department: str, item: str, public_salt: str = "", purpose: str = "subjects"
) -> tuple[int, int]:
    """PCG64 (state, increment) for one task and purpose (``subjects`` or ``inspectors``).

    SHA-256 of algorithm ‖ 0 ‖ seed ‖ 0 ‖ salt ‖ 0 ‖ department ‖ 0 ‖ item ‖ 0 ‖ purpose.
    """
    _check_seed(seed)
    parts = [public_salt, department, item, purpose]
    if any("\x00" in p for p in parts):
        raise DrawInputError("department, item and public_salt must not contain NUL characters")
    material = (
        DRAW_ALGORITHM.encode() + b"\x00" + bytes(seed) + b"\x00" + b"\x00".join(p.encode() for p in parts)
    )
    digest = hashlib.sha256(material).digest()
    state = int.from_bytes(digest[:16], "big")
    increment = ((int.from_bytes(digest[16:], "big") << 1) | 1) & _MASK128
    return state, increment


def pcg64_at(state: int, increment: int) -> np.random.PCG64:
    """NumPy's PCG64 set directly to (state, increment): no NumPy seeding routine involved."""
    bit_generator = np.random.PCG64()
    bit_generator.state = {
        "bit_generator": "PCG64",
        "state": {"state": state, "inc": increment},
        "has_uint32": 0,
        "uinteger": 0,
    }
    return bit_generator


def subject_keys(n: int, state: int, increment: int) -> np.ndarray:
    """The first ``n`` PCG64 XSL-RR outputs (uint64) from the given state; key i goes to subject i."""
    return pcg64_at(state, increment).random_raw(n)


def pcg64_reference(state: int, increment: int, n: int) -> list[int]:
    """Pure-Python PCG64 XSL-RR 128/64 (step, then output): the spec that NumPy must match."""
    out = []
    for _ in range(n):
        state = (state * PCG64_MULTIPLIER + increment) & _MASK128
        xored = ((state >> 64) ^ state) & _MASK64
        rot = state >> 122
        out.append(((xored >> rot) | (xored << ((64 - rot) % 64))) & _MASK64)
    return out


def draw_stratified(keys: np.ndarray, strata: np.ndarray, k_per_stratum: Sequence[int]) -> np.ndarray:
    """Indices of the drawn subjects: in each stratum, the ``k`` subjects with the smallest keys.

    ``strata`` holds stratum codes (positions in :data:`STRATA`); ties on a 64-bit key (never
    seen in practice) go to the lower index, i.e. the smaller USCC. Returns ascending indices.
    """
    keys = np.asarray(keys, dtype=np.uint64)
    strata = np.asarray(strata)
    if keys.shape != strata.shape:
        raise DrawInputError(f"keys {keys.shape} and strata {strata.shape} differ in length")
    n_strata = len(k_per_stratum)
    # One comparison pass per stratum over the small codes is cheaper than a bincount here.
    counts = [int(np.count_nonzero(strata == c)) for c in range(n_strata)]
    for code, k in enumerate(k_per_stratum):
        if k < 0 or k > counts[code]:
            raise DrawInputError(f"stratum {STRATA[code]}: k={k} outside [0, pool size {counts[code]}]")
    if sum(counts) != strata.size:  # every code counted once iff all lie in [0, n_strata)
        raise DrawInputError(f"stratum codes must lie in [0, {n_strata}); {strata.size - sum(counts)} do not")
    # Speed-up that cannot change the result: keys are uniform on [0, 2⁶⁴), so the k smallest of
    # a stratum almost surely lie below a quantile a few standard deviations above k/n. One pass
    # keeps the candidates under their stratum's bound; a stratum whose candidates fall short
    # (probability ≈ 0) gets an unbounded second pass, so the selection is always exact.
    bounds = np.full(n_strata, np.iinfo(np.uint64).max, dtype=np.uint64)
    for code, k in enumerate(k_per_stratum):
        share = (k + 8.0 * np.sqrt(k) + 16.0) / max(counts[code], 1)
        if share < 1:
            bounds[code] = np.uint64(int(share * 2.0**64))
    while True:
        candidates = np.flatnonzero(keys <= bounds[strata])  # ascending subject indices
        candidate_strata = strata[candidates]
        members_of = [np.flatnonzero(candidate_strata == c) for c in range(n_strata)]
        short = [c for c in range(n_strata) if members_of[c].size < k_per_stratum[c]]
        if not short:
            break
        bounds[short] = np.iinfo(np.uint64).max
    candidate_keys = keys[candidates]
    chosen = np.zeros(candidates.size, dtype=bool)
    for code, k in enumerate(k_per_stratum):
        if k:
            chosen[_k_smallest(candidate_keys, members_of[code], k)] = True
    # Candidates are ascending, so masking keeps the result sorted without a sort.
    return candidates[chosen]


def _k_smallest(keys: np.ndarray, members: np.ndarray, k: int) -> np.ndarray:
    """The k members with the smallest (key, index); ``members`` ascending."""
    if k == members.size:
        return members
    member_keys = keys[members]
    # O(n) selection of the k-th smallest key, then exact tie handling at the threshold.
    threshold = np.partition(member_keys, k - 1)[k - 1]
    below = members[member_keys < threshold]
    at = members[member_keys == threshold]  # ascending index = ascending uscc
    return np.concatenate((below, at[: k - below.size]))
