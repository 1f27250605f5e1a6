"""Merkle trees: the level-by-level build equals RFC 6962's recursive definition, audit paths are
RFC 6962 PATH(m, D[n]), and the RFC 9162 check accepts them and nothing else."""

from __future__ import annotations

import hashlib

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from supervision.merkle import EMPTY_ROOT, hash_leaves, merkle_root, root_and_paths, verify_inclusion


def _mth(data: list[bytes]) -> bytes:
    """RFC 6962 §2.1, literally."""
    if not data:
        return hashlib.sha256(b"").digest()
    if len(data) == 1:
        return hashlib.sha256(b"\x00" + data[0]).digest()
    k = 1 << ((len(data) - 1).bit_length() - 1)  # largest power of two < n
    return hashlib.sha256(b"\x01" + _mth(data[:k]) + _mth(data[k:])).digest()


def _path(m: int, data: list[bytes]) -> list[bytes]:
    """RFC 6962 §2.1.1 PATH(m, D[n]), literally."""
    if len(data) <= 1:
        return []
    k = 1 << ((len(data) - 1).bit_length() - 1)
    if m < k:
        return [*_path(m, data[:k]), _mth(data[k:])]
    return [*_path(m - k, data[k:]), _mth(data[:k])]


@given(n=st.integers(0, 70), seed=st.integers(0, 2**32 - 1))
@settings(max_examples=60, deadline=None)
def test_root_and_paths_follow_rfc_6962(n: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, 256, size=(n, 7), dtype=np.uint8)
    data = [bytes(r) for r in rows]
    leaves = hash_leaves(rows)
    assert merkle_root(leaves) == _mth(data)
    root, paths = root_and_paths(leaves, range(n))
    assert root == _mth(data)
    for m in range(n):
        assert paths[m] == _path(m, data)
        leaf = leaves[m].tobytes()
        assert verify_inclusion(leaf, m, n, paths[m], root)
        if n > 1:
            assert not verify_inclusion(leaf, (m + 1) % n, n, paths[m], root)
            assert (
                not verify_inclusion(leaves[(m + 1) % n].tobytes(), m, n, paths[m], root)
                or data[m] == data[(m + 1) % n]
            )
            assert not verify_inclusion(leaf, m, n, paths[m][:-1], root)
        assert not verify_inclusion(leaf, n, n, paths[m], root)


def test_empty_tree_and_chunked_passes(monkeypatch) -> None:
    import supervision.merkle as merkle

    assert merkle_root(np.zeros((0, 32), dtype=np.uint8)) == EMPTY_ROOT == hashlib.sha256(b"").digest()
    # Passes over more rows than one hashing chunk give the recursive root (small chunks here;
    # 2²⁰ rows in production).
    monkeypatch.setattr(merkle, "_ROWS_PER_CHUNK", 8)
    rows = np.arange(101, dtype=np.uint64).view(np.uint8).reshape(-1, 8)
    leaves = hash_leaves(rows)
    assert leaves[-1].tobytes() == hashlib.sha256(b"\x00" + rows[-1].tobytes()).digest()
    root, paths = root_and_paths(leaves, [0, 57, 100])
    assert root == merkle_root(leaves) == _mth([bytes(r) for r in rows])
    assert all(verify_inclusion(leaves[i].tobytes(), i, rows.shape[0], p, root) for i, p in paths.items())
