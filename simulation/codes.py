"""Vectorised construction of identifiers with valid check characters.

* Unified social credit codes (GB 32100-2015): the check character uses weights 3^(i-1) mod 31 over
  the alphabet ``0-9A-HJ-NP-RTUWXY``; positions 9–17 embed an organisation code with its own
  GB 11714 check character.
* Resident identity numbers (GB 11643-1999): ISO 7064 MOD 11-2 check character.

Validation is python-stdnum's job (tests use it); this module only builds codes.
"""

from __future__ import annotations

import numpy as np

USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS = np.array([pow(3, i, 31) for i in range(17)], dtype=np.int64)
_ORG_WEIGHTS = np.array([3, 7, 9, 10, 5, 8, 4, 2], dtype=np.int64)
_RIC_WEIGHTS = np.array([pow(2, 17 - i, 11) for i in range(17)], dtype=np.int64)
_ALPHABET_BYTES = np.frombuffer(USCC_ALPHABET.encode("ascii"), dtype=np.uint8)

# An affine bijection of [0, 10^8) spreads consecutive subject numbers over the organisation-code space
# while keeping them unique (the multiplier is coprime with 10^8).
_ORG_SPACE = 10**8
_ORG_MULT = 61_803_399
_ORG_SHIFT = 12_345_678


def _digits(values: np.ndarray, width: int) -> np.ndarray:
    """Decimal digits of non-negative ints as an (n, width) int64 array, most significant first."""
    powers = 10 ** np.arange(width - 1, -1, -1, dtype=np.int64)
    return (values.astype(np.int64)[:, None] // powers[None, :]) % 10


def _to_strings(indices: np.ndarray) -> np.ndarray:
    """Rows of alphabet indices → array of Python str (object dtype)."""
    raw = _ALPHABET_BYTES[indices].astype(np.uint8)
    width = raw.shape[1]
    return raw.view(f"S{width}").ravel().astype(f"U{width}").astype(object)


def uscc_check_indices(body: np.ndarray) -> np.ndarray:
    """Alphabet index of the 18th character for (n, 17) bodies given as alphabet indices."""
    total = (body.astype(np.int64) * _USCC_WEIGHTS[None, :]).sum(axis=1)
    return (31 - total % 31) % 31


def make_uscc(prefix: np.ndarray, division: np.ndarray, serial: np.ndarray) -> np.ndarray:
    """Build valid USCCs.

    ``prefix``: (n,) two-character strings (registering authority + entity type, e.g. ``"91"``);
    ``division``: (n,) six-digit division codes; ``serial``: (n,) distinct ints < 10^8, mapped to
    distinct organisation codes. Returns an object array of 18-character codes.
    """
    n = len(serial)
    body = np.empty((n, 17), dtype=np.int64)
    lookup = {c: i for i, c in enumerate(USCC_ALPHABET)}
    prefix_idx = np.array([[lookup[p[0]], lookup[p[1]]] for p in prefix], dtype=np.int64).reshape(n, 2)
    body[:, 0:2] = prefix_idx
    body[:, 2:8] = _digits(np.asarray(division, dtype=np.int64), 6)
    org = (np.asarray(serial, dtype=np.int64) * _ORG_MULT + _ORG_SHIFT) % _ORG_SPACE
    org_digits = _digits(org, 8)
    org_check = 11 - (org_digits * _ORG_WEIGHTS[None, :]).sum(axis=1) % 11
    # GB 11714: 10 is written X, 11 is written 0
    org_check_idx = np.where(org_check == 11, 0, np.where(org_check == 10, lookup["X"], org_check))
    body[:, 8:16] = org_digits
    body[:, 16] = org_check_idx
    codes = np.concatenate([body, uscc_check_indices(body)[:, None]], axis=1)
    return _to_strings(codes)


def corrupt_uscc_check(code: str, shift: int = 1) -> str:
    """The same code with a wrong check character (for dirt)."""
    idx = USCC_ALPHABET.index(code[17])
    return code[:17] + USCC_ALPHABET[(idx + max(1, shift % 31)) % 31]


def make_resident_ids(birthplace: np.ndarray, birth_dates: np.ndarray, sequence: np.ndarray) -> np.ndarray:
    """Build valid 18-digit resident IDs from birth-place codes, datetime64[D] birth dates and 3-digit sequences."""
    ymd = np.datetime_as_string(birth_dates.astype("datetime64[D]"), unit="D")
    dates = np.char.replace(ymd.astype("U10"), "-", "").astype(np.int64)
    body = np.concatenate(
        [_digits(np.asarray(birthplace, dtype=np.int64), 6), _digits(dates, 8), _digits(sequence, 3)], axis=1
    )
    check = (12 - (body * _RIC_WEIGHTS[None, :]).sum(axis=1) % 11) % 11
    chars = np.where(check == 10, ord("X"), check + ord("0")).astype(np.uint8)
    raw = np.concatenate([(body + ord("0")).astype(np.uint8), chars[:, None]], axis=1)
    return raw.view("S18").ravel().astype("U18").astype(object)
