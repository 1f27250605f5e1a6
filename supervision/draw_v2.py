"""The sealed stratified draw (``tiers-draw-v2``), specified in docs/draw-algorithm.md §12–§19.

What changes from ``tiers-draw-v1`` (draw.py): a subject's selection key depends on a secret
per-subject nonce, committed (inside a Merkle leaf) before the public salt is known, so the
public can check the commitment, the counts and the drawn list without being able to compute
any key — a key's size would give away its stratum. Each subject gets its nonce and the
Merkle path of its leaf (its *opening*) and checks its own treatment.

Per task (department d, item t) of a plan:

- ``task_digest``: binds plan id, department and item into every per-subject hash;
- ``nonce_u``  = SHA-256(tag ‖ nonce_key ‖ task_digest ‖ uscc)      (secret; fixed length);
- ``leaf_u``   = RFC 6962 leaf hash of tag ‖ task_digest ‖ uscc ‖ stratum ‖ nonce_u;
- pool tree    = RFC 6962 tree over the leaves in (stratum, uscc) order (merkle.py);
- ``key_u``    = SHA-256(tag ‖ seed ‖ salt_digest ‖ leaf_u) read as a 256-bit number;
- selection    = in each stratum the ``k`` smallest keys; threshold = the k-th smallest key;
- ``seal_s``   = SHA-256(tag ‖ task_digest ‖ stratum ‖ threshold ‖ drawn_root ‖ drawn_digest ‖ salt_digest ‖ blind_s).

Pure functions over numpy arrays: the same inputs give the same bytes on any machine.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from supervision.draw import STRATA, DrawInputError
from supervision.merkle import (
    HASH_BYTES,
    hash_leaves,
    leaf_hash,
    merkle_root,
    root_and_paths,
    sha256_rows,
)

DRAW_ALGORITHM_V2 = "tiers-draw-v2"
NONCE_KEY_BYTES = 32
USCC_BYTES = 18
NO_THRESHOLD = bytes(HASH_BYTES)  # stands for "no threshold" in a seal when a stratum draws nobody


def tag(name: str) -> bytes:
    """Domain-separation tag: ASCII ``tiers-draw-v2/<name>`` and a NUL byte."""
    return f"{DRAW_ALGORITHM_V2}/{name}".encode("ascii") + b"\x00"


TAG_TASK, TAG_NONCE, TAG_LEAF, TAG_SALT = tag("task"), tag("nonce"), tag("leaf"), tag("salt")
TAG_KEY, TAG_BLIND, TAG_DRAWN, TAG_DRAWN_LIST = tag("key"), tag("blind"), tag("drawn"), tag("drawn-list")
TAG_SEAL = tag("seal")


def new_nonce_key() -> bytes:
    """A fresh secret nonce key (32 bytes from the OS CSPRNG); the office keeps it, auditors get it."""
    return secrets.token_bytes(NONCE_KEY_BYTES)


def _text(value: str, what: str) -> bytes:
    if "\x00" in value:
        raise DrawInputError(f"{what} {value!r} must not contain NUL characters")
    return value.encode("utf-8")


def task_digest(plan_id: str, department: str, item: str) -> bytes:
    """SHA-256(tag ‖ plan_id ‖ 0 ‖ department ‖ 0 ‖ item), strings UTF-8."""
    parts = [_text(plan_id, "plan_id"), _text(department, "department"), _text(item, "item")]
    return hashlib.sha256(TAG_TASK + b"\x00".join(parts)).digest()


def salt_digest(salt: str) -> bytes:
    """SHA-256(tag ‖ UTF-8 of the public salt as published)."""
    return hashlib.sha256(TAG_SALT + salt.encode("utf-8")).digest()


def _check_key(value: bytes, what: str) -> bytes:
    if not isinstance(value, bytes | bytearray) or len(value) != 32:
        raise DrawInputError(f"{what} must be 32 bytes")
    return bytes(value)


def _uscc_rows(usccs: np.ndarray) -> np.ndarray:
    codes = np.asarray(usccs, dtype=f"S{USCC_BYTES}")
    rows = np.frombuffer(codes.tobytes(), dtype=np.uint8).reshape(codes.size, USCC_BYTES)
    if codes.size and not bool(rows[:, -1].all()):
        raise DrawInputError("every uscc must be exactly 18 characters")
    return rows


def _rows(n: int, *columns: bytes | np.ndarray) -> np.ndarray:
    """Rows made of constant byte strings and per-row ``(n, w)`` uint8 blocks, side by side."""
    widths = [len(c) if isinstance(c, bytes) else c.shape[1] for c in columns]
    out = np.empty((n, sum(widths)), dtype=np.uint8)
    at = 0
    for column, width in zip(columns, widths, strict=True):
        out[:, at : at + width] = (
            np.frombuffer(column, dtype=np.uint8) if isinstance(column, bytes) else column
        )
        at += width
    return out


def nonces(nonce_key: bytes, digest: bytes, usccs: np.ndarray) -> np.ndarray:
    """Per subject: SHA-256(tag ‖ nonce_key ‖ task_digest ‖ uscc), as ``(n, 32)`` uint8."""
    codes = _uscc_rows(usccs)
    return sha256_rows(_rows(codes.shape[0], TAG_NONCE, _check_key(nonce_key, "nonce key"), digest, codes))


def leaf_data(digest: bytes, usccs: np.ndarray, strata: np.ndarray, nonce: np.ndarray) -> np.ndarray:
    """Per subject the leaf data tag ‖ task_digest ‖ uscc ‖ stratum code (1 byte) ‖ nonce."""
    codes = _uscc_rows(usccs)
    code_bytes = np.asarray(strata, dtype=np.uint8).reshape(-1, 1)
    return _rows(codes.shape[0], TAG_LEAF, digest, codes, code_bytes, np.asarray(nonce, dtype=np.uint8))


def selection_keys(seed: bytes, salt: bytes, leaves: np.ndarray) -> np.ndarray:
    """Per subject SHA-256(tag ‖ seed ‖ salt_digest ‖ leaf hash): 32 bytes, a big-endian number."""
    leaves = np.asarray(leaves, dtype=np.uint8)
    return sha256_rows(_rows(leaves.shape[0], TAG_KEY, _check_key(seed, "seed"), salt, leaves))


def blind(nonce_key: bytes, digest: bytes, code: int) -> bytes:
    """The seal's blinding value of one stratum: SHA-256(tag ‖ nonce_key ‖ task_digest ‖ code)."""
    return hashlib.sha256(TAG_BLIND + _check_key(nonce_key, "nonce key") + digest + bytes([code])).digest()


def drawn_leaf(leaf: bytes) -> bytes:
    """One subject's leaf hash in its stratum's drawn-set tree: RFC 6962 leaf of tag ‖ leaf."""
    return leaf_hash(TAG_DRAWN + leaf)


def drawn_digest(drawn: Sequence[str]) -> bytes:
    """SHA-256(tag ‖ the drawn USCCs of a task, ascending, 18 ASCII bytes each)."""
    return hashlib.sha256(TAG_DRAWN_LIST + "".join(drawn).encode("ascii")).digest()


def seal(
    digest: bytes,
    code: int,
    threshold: bytes | None,
    drawn_root: bytes,
    drawn: bytes,
    salt: bytes,
    blinding: bytes,
) -> bytes:
    """SHA-256(tag ‖ task_digest ‖ code ‖ threshold (zeros if none) ‖ drawn_root ‖ drawn_digest ‖
    salt_digest ‖ blind): fixes the stratum's outcome, the task's published list and the salt."""
    return hashlib.sha256(
        TAG_SEAL + digest + bytes([code]) + (threshold or NO_THRESHOLD) + drawn_root + drawn + salt + blinding
    ).digest()


def tree_order(strata: np.ndarray) -> np.ndarray:
    """Positions (into a pool in uscc order) in pool-tree order: by stratum code, then uscc."""
    return np.argsort(np.asarray(strata), kind="stable")


def stratum_offsets(counts: Sequence[int]) -> list[int]:
    """First pool-tree index of each stratum: the sizes of the strata before it."""
    return [int(x) for x in np.concatenate(([0], np.cumsum(counts)[:-1]))]


@dataclass(frozen=True)
class PoolLeaves:
    """A task's pool as committed: leaves in uscc order and the tree over them (stratum, uscc)."""

    digest: bytes
    usccs: np.ndarray  # S18, ascending
    strata: np.ndarray  # stratum codes
    leaves: np.ndarray  # (n, 32) leaf hashes, uscc order
    order: np.ndarray  # uscc-order positions in tree order
    counts: tuple[int, ...]  # subjects per stratum, canonical order

    @property
    def root(self) -> bytes:
        return merkle_root(self.leaves[self.order])

    @cached_property
    def tree_index(self) -> np.ndarray:
        """Pool-tree index of each subject, by position in uscc order."""
        index = np.empty(self.order.size, dtype=np.int64)
        index[self.order] = np.arange(self.order.size)
        return index

    def paths(self, positions: Sequence[int]) -> dict[int, tuple[int, list[bytes]]]:
        """Per uscc-order position: (tree index, audit path), in one pass over the tree."""
        index = {int(p): int(self.tree_index[p]) for p in positions}
        _, paths = root_and_paths(self.leaves[self.order], index.values())
        return {p: (i, paths[i]) for p, i in index.items()}


def pool_leaves(
    *, plan_id: str, department: str, item: str, usccs: np.ndarray, strata: np.ndarray, nonce_key: bytes
) -> PoolLeaves:
    """Nonces and leaf hashes of a canonical pool (uscc ascending, unique; stratum codes 0–4)."""
    codes = np.asarray(usccs, dtype=f"S{USCC_BYTES}")
    strata = np.asarray(strata, dtype=np.int64)
    if codes.size > 1 and not bool(np.all(codes[1:] > codes[:-1])):
        raise DrawInputError("pool is not in canonical order (strictly ascending uscc)")
    if strata.size and (strata.min() < 0 or strata.max() >= len(STRATA)):
        raise DrawInputError(f"stratum codes must lie in [0, {len(STRATA)})")
    digest = task_digest(plan_id, department, item)
    leaves = hash_leaves(leaf_data(digest, codes, strata, nonces(nonce_key, digest, codes)))
    counts = tuple(int(c) for c in np.bincount(strata, minlength=len(STRATA)))
    return PoolLeaves(digest, codes, strata, leaves, tree_order(strata), counts)


@dataclass(frozen=True)
class StratumSeal:
    """One stratum's outcome: its threshold (None when it draws nobody), drawn-set root, seal."""

    code: int
    threshold: bytes | None
    drawn_root: bytes
    seal: bytes


@dataclass(frozen=True)
class SealedSelection:
    """The drawn positions (uscc order, ascending) and one seal per stratum."""

    rows: np.ndarray
    seals: tuple[StratumSeal, ...]


def _k_smallest(keys: np.ndarray, members: np.ndarray, k: int) -> np.ndarray:
    """The members with the k smallest 256-bit keys (ascending positions).

    Refused if the k-th and (k+1)-th smallest keys are equal — only a SHA-256 collision could do
    that, and it would leave the selection undefined; equal keys elsewhere change nothing.
    """
    if k == 0 or k == members.size:
        return members[:k]
    head = keys[members, :8].copy().view(">u8").ravel()  # the top 64 bits decide almost always
    kth = np.partition(head, k - 1)[k - 1]
    below, at = members[head < kth], members[head == kth]
    # Members sharing the k-th top-64-bit value are ordered by the full key (bytes compare as
    # big-endian numbers); the boundary lies among them.
    tied = sorted(at.tolist(), key=lambda m: keys[m].tobytes())
    needed = k - below.size
    if needed < len(tied) and keys[tied[needed - 1]].tobytes() == keys[tied[needed]].tobytes():
        raise DrawInputError("the k-th and (k+1)-th keys of a stratum are equal (a SHA-256 collision)")
    return np.sort(np.concatenate((below, np.asarray(tied[:needed], dtype=members.dtype))))


def sealed_selection(
    pool: PoolLeaves, *, seed: bytes, salt: str, k_per_stratum: Sequence[int], nonce_key: bytes
) -> SealedSelection:
    """Draw the ``k`` smallest keys of each stratum and seal each stratum's outcome."""
    if len(k_per_stratum) != len(STRATA):
        raise DrawInputError(f"need k for each of {len(STRATA)} strata, got {len(k_per_stratum)}")
    for code, k in enumerate(k_per_stratum):
        if not 0 <= k <= pool.counts[code]:
            raise DrawInputError(f"stratum {STRATA[code]}: k={k} outside [0, pool size {pool.counts[code]}]")
    salted = salt_digest(salt)
    keys = selection_keys(seed, salted, pool.leaves)
    chosen = [_k_smallest(keys, np.flatnonzero(pool.strata == c), k) for c, k in enumerate(k_per_stratum)]
    rows = np.sort(np.concatenate(chosen)) if chosen else np.zeros(0, dtype=np.int64)
    listed = drawn_digest([code.decode() for code in pool.usccs[rows]])
    seals = []
    for code, members in enumerate(chosen):
        threshold = max((keys[m].tobytes() for m in members), default=None)
        root = merkle_root(drawn_leaves(pool, members))
        value = seal(pool.digest, code, threshold, root, listed, salted, blind(nonce_key, pool.digest, code))
        seals.append(StratumSeal(code, threshold, root, value))
    return SealedSelection(rows, tuple(seals))


def drawn_leaves(pool: PoolLeaves, members: np.ndarray) -> np.ndarray:
    """Leaf hashes of a stratum's drawn-set tree: RFC 6962 leaves of tag ‖ leaf, for ``members``
    (the stratum's drawn positions, ascending, i.e. uscc order)."""
    members = np.asarray(members, dtype=np.int64)
    return hash_leaves(_rows(members.size, TAG_DRAWN, pool.leaves[members]))
