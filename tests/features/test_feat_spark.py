"""One definition, two engines: the profile SQL transpiled to Spark gives DuckDB's profiles."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from features.catalogue import default_policy
from features.profiles import build_profiles, render_profile_sql

pytestmark = [pytest.mark.spark, pytest.mark.slow, pytest.mark.xdist_group("spark")]


def test_spark_sql_is_a_transpilation_of_the_duckdb_definition():
    sql = render_profile_sql(date(2026, 6, 30), default_policy(), "spark")
    assert "ADD_MONTHS" in sql and "LAST_DAY" in sql and "COUNT_IF(" in sql
    assert "to_months" not in sql.lower()  # DuckDB-only syntax must not leak into Spark SQL


def test_duckdb_and_spark_profiles_are_equal_on_a_simulated_city(sim_store, spark):
    as_of = date(2026, 6, 30)
    duck = build_profiles(sim_store, as_of=as_of, engine="duckdb", with_hash=True)
    sprk = build_profiles(sim_store, as_of=as_of, engine="spark", spark=spark, with_hash=True)
    pd.testing.assert_frame_equal(duck, sprk, check_exact=False, atol=1e-9)
    assert duck["profile_hash"].tolist() == sprk["profile_hash"].tolist()
    assert duck["n_penalty_36m"].sum() > 0 and duck["on_list_abnormal_operation"].sum() > 0
