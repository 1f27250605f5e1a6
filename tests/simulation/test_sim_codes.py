"""Identifiers: every code the simulator writes validates with python-stdnum (A/N/Y via the wrapper)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st
from sim_helpers import read, resident_id_is_valid, uscc_is_valid
from stdnum.cn import uscc

from simulation.codes import USCC_ALPHABET, corrupt_uscc_check, make_resident_ids, make_uscc


@settings(max_examples=60, deadline=None)
@given(
    prefix=st.sampled_from(["91", "92", "93", "51", "52", "53", "A1", "N2", "Y1"]),
    division=st.integers(110000, 659999),
    serials=st.lists(st.integers(0, 10**8 - 1), min_size=1, max_size=30, unique=True),
)
def test_make_uscc_builds_valid_distinct_codes(prefix, division, serials):
    codes = make_uscc(np.full(len(serials), prefix), np.full(len(serials), division), np.array(serials))
    assert all(uscc_is_valid(c) for c in codes)
    assert len(set(codes)) == len(codes)
    if prefix[0].isdigit():  # stdnum itself accepts the numeric registering authorities
        assert all(uscc.is_valid(c) for c in codes)
    assert all(not uscc_is_valid(corrupt_uscc_check(c, k)) for c in codes[:3] for k in (1, 7, 30))


def test_stdnum_rejects_a_n_y_codes_the_wrapper_accepts():
    codes = make_uscc(np.array(["A1", "N2", "Y1"]), np.full(3, 320102), np.arange(3))
    assert not any(uscc.is_valid(c) for c in codes)  # the known trap the wrapper is for
    assert all(uscc_is_valid(c) for c in codes)


@settings(max_examples=40, deadline=None)
@given(
    day=st.integers(0, 15000),
    sequence=st.integers(0, 999),
    place=st.sampled_from([320102, 320104, 320113, 330106]),
)
def test_make_resident_ids_valid_for_births_after_1983(day, sequence, place):
    birth = np.array([np.datetime64("1983-01-01") + day])
    assert resident_id_is_valid(make_resident_ids(np.array([place]), birth, np.array([sequence]))[0])


def test_every_code_in_a_city_is_valid_except_the_listed_dirt(dirty_csv_city):
    subjects = read(dirty_csv_city, "subjects")
    dirt = pd.read_csv(dirty_csv_city / "truth" / "dirt.csv", dtype=str)
    dirty_rows = set(dirt.loc[(dirt.file == "subjects.csv") & (dirt.rule == "uscc_invalid"), "row"].astype(int))
    valid = subjects.uscc.map(uscc_is_valid)
    assert set(np.flatnonzero(~valid.to_numpy()) + 1) == dirty_rows
    assert subjects.legal_rep_id.map(resident_id_is_valid).all()
    assert subjects.uscc.str[0].isin(list("59ANY")).all()
    assert {"A", "N", "Y", "5"} <= set(subjects.uscc.str[0])
    assert set("".join(subjects.uscc)) <= set(USCC_ALPHABET)
    assert subjects.uscc.is_unique
    # positions 3–8 are the district's division code
    assert (subjects.uscc.str[2:8] == subjects.district_code).all()


def test_legal_representatives_are_plausible_adults(dirty_csv_city):
    subjects = read(dirty_csv_city, "subjects")
    birth_year = subjects.legal_rep_id.str[6:10].astype(int)
    assert birth_year.between(1950, 2008).all()
    assert subjects.legal_rep_name.str.len().between(2, 3).all()
