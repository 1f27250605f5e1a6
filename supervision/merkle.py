"""Merkle trees as in RFC 6962 §2.1 (Certificate Transparency), over SHA-256, for whole pools.

A tree over leaf data d₀ … dₙ₋₁ has leaf hashes SHA-256(0x00 ‖ dᵢ) and interior nodes
SHA-256(0x01 ‖ left ‖ right); a tree of n > 1 leaves splits at the largest power of two below n;
the empty tree's hash is SHA-256 of nothing. Inclusion proofs are RFC 6962 audit paths and are
checked with the algorithm of RFC 9162 §2.1.3.2, which is all an outside verifier needs.

Everything here works on ``(n, 32)`` uint8 arrays of hashes so that a 10 M-leaf tree is built
level by level: pairing neighbours and carrying an odd last node up unchanged gives exactly the
RFC 6962 tree. Pure functions, no I/O.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

import numpy as np

HASH_BYTES = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()
_LEAF_PREFIX = 0x00
_NODE_PREFIX = 0x01
_ROWS_PER_CHUNK = 1 << 20  # bounds the scratch memory of one hashing pass (≈ 100 MB at 100 B a row)


def sha256_rows(rows: np.ndarray) -> np.ndarray:
    """SHA-256 of each row of a ``(n, w)`` uint8 array, as an ``(n, 32)`` uint8 array."""
    rows = np.ascontiguousarray(rows, dtype=np.uint8)
    n, width = rows.shape
    if n == 0:
        return np.zeros((0, HASH_BYTES), dtype=np.uint8)
    flat = memoryview(rows.reshape(-1))
    sha256 = hashlib.sha256
    digests = b"".join([sha256(flat[i : i + width]).digest() for i in range(0, n * width, width)])
    return np.frombuffer(digests, dtype=np.uint8).reshape(n, HASH_BYTES)


def hash_leaves(data: np.ndarray) -> np.ndarray:
    """RFC 6962 leaf hashes SHA-256(0x00 ‖ row) of each row of a ``(n, w)`` uint8 array."""
    n, width = data.shape
    out = np.empty((n, HASH_BYTES), dtype=np.uint8)
    for start in range(0, n, _ROWS_PER_CHUNK):
        chunk = data[start : start + _ROWS_PER_CHUNK]
        rows = np.empty((chunk.shape[0], width + 1), dtype=np.uint8)
        rows[:, 0] = _LEAF_PREFIX
        rows[:, 1:] = chunk
        out[start : start + chunk.shape[0]] = sha256_rows(rows)
    return out


def _next_level(level: np.ndarray) -> np.ndarray:
    """Parent level: SHA-256(0x01 ‖ left ‖ right) for each pair; an odd last node moves up as is."""
    pairs = level.shape[0] // 2
    parents = np.empty(((level.shape[0] + 1) // 2, HASH_BYTES), dtype=np.uint8)
    for start in range(0, pairs, _ROWS_PER_CHUNK):
        stop = min(start + _ROWS_PER_CHUNK, pairs)
        rows = np.empty((stop - start, 1 + 2 * HASH_BYTES), dtype=np.uint8)
        rows[:, 0] = _NODE_PREFIX
        rows[:, 1 : 1 + HASH_BYTES] = level[2 * start : 2 * stop : 2]
        rows[:, 1 + HASH_BYTES :] = level[2 * start + 1 : 2 * stop : 2]
        parents[start:stop] = sha256_rows(rows)
    if level.shape[0] % 2:
        parents[-1] = level[-1]
    return parents


def merkle_root(leaf_hashes: np.ndarray) -> bytes:
    """The RFC 6962 tree hash over the given leaf hashes (``(n, 32)`` uint8), in that order."""
    level = np.asarray(leaf_hashes, dtype=np.uint8).reshape(-1, HASH_BYTES)
    if level.shape[0] == 0:
        return EMPTY_ROOT
    while level.shape[0] > 1:
        level = _next_level(level)
    return level[0].tobytes()


def root_and_paths(leaf_hashes: np.ndarray, indices: Iterable[int]) -> tuple[bytes, dict[int, list[bytes]]]:
    """The tree hash and the RFC 6962 audit path of each leaf index, in one pass over the tree.

    A path lists sibling hashes from the leaf level up; a level where the node has no sibling
    (an odd last node carried up) contributes nothing.
    """
    level = np.asarray(leaf_hashes, dtype=np.uint8).reshape(-1, HASH_BYTES)
    wanted = sorted(set(indices))
    if any(i < 0 or i >= level.shape[0] for i in wanted):
        raise IndexError(f"leaf indices {wanted} outside a tree of {level.shape[0]} leaves")
    paths: dict[int, list[bytes]] = {i: [] for i in wanted}
    position = {i: i for i in wanted}
    if level.shape[0] == 0:
        return EMPTY_ROOT, paths
    while level.shape[0] > 1:
        for leaf, pos in position.items():
            sibling = pos ^ 1
            if sibling < level.shape[0]:
                paths[leaf].append(level[sibling].tobytes())
            position[leaf] = pos // 2
        level = _next_level(level)
    return level[0].tobytes(), paths


def node_hash(left: bytes, right: bytes) -> bytes:
    """An interior node: SHA-256(0x01 ‖ left ‖ right)."""
    return hashlib.sha256(bytes([_NODE_PREFIX]) + left + right).digest()


def leaf_hash(data: bytes) -> bytes:
    """A leaf: SHA-256(0x00 ‖ data)."""
    return hashlib.sha256(bytes([_LEAF_PREFIX]) + data).digest()


def verify_inclusion(leaf: bytes, index: int, size: int, path: Sequence[bytes], root: bytes) -> bool:
    """RFC 9162 §2.1.3.2: does ``path`` prove leaf hash ``leaf`` at ``index`` of a ``size``-leaf tree?"""
    if not 0 <= index < size:
        return False
    fn, sn, node = index, size - 1, leaf
    for sibling in path:
        if sn == 0:
            return False
        if fn % 2 == 1 or fn == sn:
            node = node_hash(sibling, node)
            if fn % 2 == 0:  # right-most node of its level with no right sibling: skip levels
                while fn % 2 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            node = node_hash(node, sibling)
        fn >>= 1
        sn >>= 1
    return sn == 0 and node == root
