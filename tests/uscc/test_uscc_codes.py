"""The USCC rule: every registering authority accepted, any one-character change caught, and the
vectorised mask equal to the per-code check on any input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from stdnum.cn import uscc as stdnum_uscc

from uscc import is_valid_uscc, valid_uscc_mask

ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
body = st.text(alphabet=ALPHABET, min_size=17, max_size=17)


def code(i: int, first: str = "9") -> str:
    """A valid USCC numbered ``i`` (registering authority ``first``)."""
    body = f"{first}1320102MA{i:07d}"
    return body + stdnum_uscc.calc_check_digit(body)


@given(bodies=st.lists(body, min_size=1, max_size=30), corrupt=st.lists(st.integers(0, 17), max_size=30))
@settings(max_examples=150, deadline=None)
def test_mask_agrees_with_the_per_code_check_on_upper_case_codes(bodies, corrupt) -> None:
    codes = [b + stdnum_uscc.calc_check_digit(b) for b in bodies]
    # change one character of some codes: a wrong check character, or a body it no longer fits
    for n, pos in enumerate(corrupt[: len(codes)]):
        code = codes[n]
        swap = ALPHABET[(ALPHABET.index(code[pos]) + 1) % len(ALPHABET)]
        codes[n] = code[:pos] + swap + code[pos + 1 :]
    assert valid_uscc_mask(pd.Series(codes)).tolist() == [is_valid_uscc(c) for c in codes]


@given(codes=st.lists(st.one_of(st.text(max_size=20), st.none(), st.integers()), max_size=20))
@settings(max_examples=100, deadline=None)
def test_mask_equals_the_per_code_check_on_any_input(codes) -> None:
    mask = valid_uscc_mask(np.array(codes, dtype=object))
    assert mask.tolist() == [is_valid_uscc(c) for c in codes]


def test_mask_rejects_lower_case_and_wrong_lengths() -> None:
    good = "91320102MA1AAAAA1" + stdnum_uscc.calc_check_digit("91320102MA1AAAAA1")
    letter_first = "A1320105MA1CCCCC3" + stdnum_uscc.calc_check_digit("A1320105MA1CCCCC3")
    codes = [good, letter_first, good.lower(), good[:-1], good + "0", "", float("nan")]
    assert valid_uscc_mask(pd.Series(codes)).tolist() == [True, True, False, False, False, False, False]
    assert [is_valid_uscc(c) for c in codes] == [True, True, False, False, False, False, False]
    assert valid_uscc_mask(pd.Series([], dtype=object)).shape == (0,)


@pytest.mark.parametrize("first", list("123456789ANY"))
def test_valid_codes_of_every_registering_authority_are_accepted(first):
    assert is_valid_uscc(code(42, first))


def test_stdnum_rejects_letter_authorities_that_the_wrapper_accepts():
    from stdnum.exceptions import ValidationError

    with pytest.raises(ValidationError):
        stdnum_uscc.validate(code(1, "N"))
    assert valid_uscc_mask([code(1, "N"), code(1, "Y"), None, "short", code(1)[:-1] + "I"]).tolist() == [
        True, True, False, False, False]


@settings(max_examples=200, deadline=None)
@given(first=st.sampled_from(list("123456789ANY")), n=st.integers(0, 9_999_999), pos=st.integers(0, 17),
       replacement=st.sampled_from(list(ALPHABET)))
def test_any_single_character_change_is_caught(first, n, pos, replacement):
    valid = code(n, first)
    changed = valid[:pos] + replacement + valid[pos + 1:]
    assert is_valid_uscc(changed) == (changed == valid)


@pytest.mark.parametrize("first", list("9ANY"))
@pytest.mark.parametrize("intruder", ["４", "\u0661", "\n", "a", "Ｏ"])
def test_non_ascii_digits_and_control_characters_are_refused_everywhere(first, intruder):
    valid = code(7, first)
    for pos in range(18):
        changed = valid[:pos] + intruder + valid[pos + 1:]
        assert is_valid_uscc(changed) is False  # never an exception, never accepted
        assert valid_uscc_mask([changed]).tolist() == [False]


def test_mask_takes_any_column_type_and_checks_repeated_codes_once():
    good = code(3)
    assert valid_uscc_mask(pd.Series([good, "x", good], dtype="category")).tolist() == [True, False, True]
    assert valid_uscc_mask(pd.Series([], dtype=float)).shape == (0,)
    assert valid_uscc_mask(pd.Series([float("nan"), None, good])).tolist() == [False, False, True]


@given(body=body)
@settings(max_examples=300, deadline=None)
def test_the_pattern_is_the_rule_less_the_check_character(body: str):
    """USCC_PATTERN (path and query parameters) is the rule's format: a code with its right check
    character matches it exactly when is_valid_uscc accepts it (review 16: one USCC rule)."""
    import re

    from uscc import USCC_PATTERN

    full = body + stdnum_uscc.calc_check_digit(body)
    assert bool(re.fullmatch(USCC_PATTERN, full)) == is_valid_uscc(full)
