"""The profile hash: both schemes pinned, scheme 2 against an independent text, SQL path == frame path."""

from __future__ import annotations

import hashlib
import math
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

import duckdb
import numpy as np
import pandas as pd
import pytest
from feat_fixtures import code, record, records_frame, subject, subjects_frame
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from features.profiles import (
    _hash_sql,
    _normalise_types,
    _order_columns,
    _value_kind,
    add_profile_hash,
    build_profiles,
    profile_hash_scheme,
    profile_hashes,
)
from features.specs import FEATURE_SPECS

# Edge values: half-way ties in millionths (2.5e-6 * 1e6 and 5e-7 * 1e6 are exact halves), -0.0,
# NaN, missing, values below a millionth, text with non-ASCII characters.
FRAME = pd.DataFrame({
    "uscc": [code(0), code(1), code(2), code(3)],
    "as_of": [date(2026, 6, 30)] * 4,
    "n_penalty_12m": pd.Series([0, 3, -2, 1], dtype="int64"),
    "employees": pd.Series([12, None, 0, 1], dtype="Int64"),
    "w_penalty_12m": [0.0, 1.2345675, -0.0, 2.5e-6],
    "commitment_breach_rate": [np.nan, 1 / 3, 2.5e-7, -2.5e-6],
    "registered_capital": [1e9, 123.0000005, -7.5, 5e-7],
    "industry": ["C", None, "制造", "C"],
})

# Computed with the scheme-1 code as it stood before scheme 2 existed (commit 116fd16): grades
# made then carry these, so they must never change.
SCHEME1_FRAME = ["09b350f8380056d64da858b340a87f082188a86c9d354f23c22415a7c1481b38",
                 "4088e7cc000ab2d278ce260d280e3e4705e0a3452c83cbac47cb85e98d56e42d",
                 "baf5291271f8a1f803e9907cb6d02bca7def6cf25543f329a4ed7115beab4b3a",
                 "7909a2977106ddc5b5f5c1b36f2755970cd35e77ac707ba8d21912a186ce35ed"]
SCHEME1_BUILT = ["d370c34e65226a793b0cfa4fb7f2a7321253faaaa8e1b00aee074bc7124450ac",
                 "5ef13c9343bdc39db05c2de0cfdb7fb5698b1e76307df8a8a096d40da9f5da74"]
SCHEME2_FRAME = ["p2da750ccf9b3824bfe0949f92a9f48800934df1e24059f1ed0104a23926ea05",
                 "p2f65893456aa54663c46b6f8835356883836b51417fdf1cb76c921c2ef1066c",
                 "p25d4c38a9cc0abe65e88744783dad0ab8190b2ccd51629bbd8bc9cc2bc60b7e",
                 "p208aa8a3555e0174c0ae84ec365cc6ff3ec4e1c18f66c7ab29f622548758ae5"]


def _built() -> pd.DataFrame:
    subjects = subjects_frame([subject(0), subject(1, registered_capital=None, employees=None)])
    rows = [record("P", code(0), "admin_penalty", date(2025, 1, 10)),
            record("L", code(1), "list_abnormal_operation", date(2025, 3, 1))]
    return build_profiles(records_frame(rows), subjects, as_of=date(2025, 6, 30), with_hash=True)


def _millionths(x: float) -> str:
    """Scheme 2's text of a finite float below the fixed-point limit, written independently of the SQL."""
    if x == 0:
        return "0"
    return str(int(Decimal(x * 1e6).to_integral_value(rounding=ROUND_HALF_UP)))


def _expected_scheme2(frame: pd.DataFrame) -> list[str]:
    """Scheme 2 from its definition: 'p2' then every value joined by '|'; a missing number as '',
    a missing text as \\N, a text's backslashes and '|' escaped by a backslash; sha256."""
    out = []
    for row in frame.itertuples(index=False):
        texts = ["p2"]
        for col, value in zip(frame.columns, row, strict=True):
            missing = value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))
            if _value_kind(col) == "text":
                texts.append("\\N" if missing else str(value).replace("\\", "\\\\").replace("|", "\\|"))
            elif missing:
                texts.append("")
            elif pd.api.types.is_float_dtype(frame[col].dtype):
                texts.append(_millionths(float(value)))
            else:
                texts.append(str(value))
        out.append("p2" + hashlib.sha256("|".join(texts).encode()).hexdigest()[:62])
    return out


def test_scheme_1_hashes_are_unchanged():
    assert add_profile_hash(FRAME, scheme=1)["profile_hash"].tolist() == SCHEME1_FRAME
    built = _built().drop(columns="profile_hash")
    assert add_profile_hash(built, scheme=1)["profile_hash"].tolist() == SCHEME1_BUILT


def test_scheme_2_is_pinned_and_follows_its_definition():
    hashes = add_profile_hash(FRAME)["profile_hash"].tolist()
    assert hashes == _expected_scheme2(FRAME)
    assert hashes == SCHEME2_FRAME
    assert _millionths(2.5e-6) == "3" and _millionths(-2.5e-6) == "-3"  # ties away from zero, as DuckDB's round
    assert [profile_hash_scheme(h) for h in hashes + SCHEME1_FRAME] == [2] * 4 + [1] * 4


def test_builds_hash_with_the_current_scheme_and_frames_reproduce_it():
    built = _built()
    assert built["profile_hash"].str.fullmatch(r"p2[0-9a-f]{62}").all()
    assert add_profile_hash(built.drop(columns="profile_hash"))["profile_hash"].tolist() == \
        built["profile_hash"].tolist()
    assert built["profile_hash"].tolist() != SCHEME1_BUILT


def test_zero_signs_and_missing_values_are_canonical():
    base = FRAME.iloc[[0]].reset_index(drop=True)

    def hash_with(**values) -> str:
        return add_profile_hash(base.assign(**values))["profile_hash"].iloc[0]

    assert hash_with(w_penalty_12m=-0.0) == hash_with(w_penalty_12m=0.0)
    # 6 decimals, as scheme 1: below half a millionth is 0, whatever its sign; a millionth is not
    assert hash_with(w_penalty_12m=4e-7) == hash_with(w_penalty_12m=-4e-7) == hash_with(w_penalty_12m=0.0)
    assert hash_with(w_penalty_12m=6e-7) != hash_with(w_penalty_12m=0.0)
    assert hash_with(commitment_breach_rate=np.nan) == hash_with(commitment_breach_rate=None)
    assert hash_with(commitment_breach_rate=np.nan) != hash_with(commitment_breach_rate=0.0)
    assert hash_with(employees=pd.array([None], dtype="Int64")) != hash_with(employees=pd.array([0], dtype="Int64"))


def test_values_beyond_the_fixed_point_range_hash_without_error_and_distinctly():
    base = FRAME.iloc[[0]].reset_index(drop=True)
    big = 10000000000.123003  # and the next double up: one integer of millionths, two shortest texts
    values = [9.5e12, -9.5e12, 1e300, math.inf, -math.inf, big, np.nextafter(big, math.inf), 8.5e9]
    hashes = [add_profile_hash(base.assign(registered_capital=v))["profile_hash"].iloc[0] for v in values]
    assert len(set(hashes)) == len(values)
    assert hashes[-1] == _expected_scheme2(base.assign(registered_capital=8.5e9))[0]  # below 2**33: fixed-point


def test_a_profile_hashes_the_same_however_the_frame_holds_its_columns():
    """Scheme 2 types each column as the engine does: integer-valued floats read back as int64 (a
    CSV round trip), counts held as floats, or the date as a datetime64, change nothing."""
    base = _built().drop(columns="profile_hash")
    expected = add_profile_hash(base)["profile_hash"].tolist()
    capital = base["registered_capital"].fillna(0).round()
    as_read_back = base.assign(registered_capital=capital.astype("int64"))
    expected_rounded = add_profile_hash(base.assign(registered_capital=capital))
    assert add_profile_hash(as_read_back)["profile_hash"].tolist() == expected_rounded["profile_hash"].tolist()
    counts_as_floats = base.assign(**{c: base[c].astype("float64") for c in base.columns if c.startswith("n_")})
    assert add_profile_hash(counts_as_floats)["profile_hash"].tolist() == expected
    as_datetimes = base.assign(as_of=pd.to_datetime(base["as_of"]))
    assert add_profile_hash(as_datetimes)["profile_hash"].tolist() == expected


FEATURES = [s.name for s in FEATURE_SPECS]
_floats = st.one_of(st.just(0.0), st.just(-0.0), st.none(),
                    st.floats(min_value=-1e12, max_value=1e12, allow_nan=False),
                    st.floats(allow_nan=True, allow_infinity=True))


@st.composite
def profile_rows(draw):
    n = draw(st.integers(1, 4))
    data: dict[str, list] = {"uscc": [code(i) for i in range(n)], "as_of": [date(2026, 6, 30)] * n}
    for col in FEATURES:
        kind = _value_kind(col)
        if kind == "text":
            data[col] = draw(st.lists(st.one_of(st.none(), st.text("ABC制造0", max_size=3)), min_size=n, max_size=n))
        elif kind == "int":
            nullable = col in ("days_since_last_negative", "employees")
            ints = st.integers(-(2**40), 2**40) | st.just(0)
            data[col] = draw(st.lists(ints | st.none() if nullable else ints, min_size=n, max_size=n))
        else:
            data[col] = draw(st.lists(_floats, min_size=n, max_size=n))
    return data


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(profile_rows())
def test_sql_path_and_frame_path_give_the_same_scheme_2_hash(data):
    frame = pd.DataFrame(data)
    for col in FEATURES:
        if _value_kind(col) == "float":
            frame[col] = frame[col].astype("float64")
    frame = _order_columns(_normalise_types(frame))
    by_frame = add_profile_hash(frame)["profile_hash"].tolist()
    # the SQL path of build_profiles: the hash over the engine's own result, typed in the query
    con = duckdb.connect()
    try:
        types = {"int": "BIGINT", "float": "DOUBLE", "text": "VARCHAR"}
        cols = ", ".join(f'"{c}" {"DATE" if c == "as_of" else types[_value_kind(c)]}' for c in frame.columns)
        con.execute(f"CREATE TABLE _profiles ({cols})")
        # the drawn Python values themselves (pandas would turn a missing count into a float NaN)
        rows = [[data[c][i] for c in frame.columns] for i in range(len(frame))]
        con.executemany(f"INSERT INTO _profiles VALUES ({', '.join('?' for _ in frame.columns)})", rows)
        by_sql = [r[0] for r in con.sql(f"SELECT {_hash_sql()} FROM _profiles").fetchall()]
    finally:
        con.close()
    assert by_sql == by_frame
    in_range = frame[[c for c in frame.columns if _value_kind(c) == "float"]].abs().fillna(0).lt(2**33).all(axis=1)
    if in_range.all():
        assert by_frame == _expected_scheme2(frame)


def test_unknown_schemes_and_hashes_are_rejected():
    with pytest.raises(ValueError, match="scheme"):
        add_profile_hash(FRAME, scheme=3)
    for value in ("0" * 63, "p2" + "Z" * 62, "P2" + "0" * 62, "A" * 64, None):
        with pytest.raises(ValueError, match="known scheme"):
            profile_hash_scheme(value)


def test_profiles_without_the_hash_are_the_same_profiles():
    subjects = subjects_frame([subject(0), subject(1, registered_capital=None, employees=None)])
    rows = [record("P", code(0), "admin_penalty", date(2025, 1, 10)),
            record("L", code(1), "list_abnormal_operation", date(2025, 3, 1))]
    bare = build_profiles(records_frame(rows), subjects, as_of=date(2025, 6, 30))  # the default
    assert "profile_hash" not in bare.columns
    hashed = _built()
    pd.testing.assert_frame_equal(bare, hashed.drop(columns="profile_hash"))
    assert add_profile_hash(bare)["profile_hash"].tolist() == hashed["profile_hash"].tolist()
    # what grading computes for a profile without the hash: the build's hash, whatever else the
    # frame carries and in whatever order its columns come
    extra = bare.assign(note="added by a caller")[["note", *reversed(bare.columns)]]
    assert profile_hashes(extra).tolist() == hashed["profile_hash"].tolist()
    assert profile_hashes(extra, scheme=1).tolist() == add_profile_hash(bare, scheme=1)["profile_hash"].tolist()
    with pytest.raises(ValueError, match="not a profile frame: no column thin_file"):
        profile_hashes(bare.drop(columns="thin_file"))


def test_text_values_cannot_be_confused_with_each_other_or_the_separator():
    base = FRAME.iloc[[0]].reset_index(drop=True)

    def hash_with(**values) -> str:
        return add_profile_hash(base.assign(**values))["profile_hash"].iloc[0]

    assert hash_with(industry="") != hash_with(industry=None)
    assert hash_with(industry="C|1", district_code="2") != hash_with(industry="C", district_code="1|2")
    assert hash_with(industry="\\", district_code="|") != hash_with(industry="\\|", district_code="")
    assert hash_with(industry="\\N") != hash_with(industry=None)
    odd = base.assign(industry="C|\\x", district_code=None)
    assert add_profile_hash(odd)["profile_hash"].tolist() == _expected_scheme2(odd)
