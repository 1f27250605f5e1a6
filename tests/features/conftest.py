"""Shared fixtures of the features tests: a small simulated dirty city, its store, a local Spark."""

from __future__ import annotations

from pathlib import Path

import pytest
from feat_fixtures import INGESTED_AT


@pytest.fixture(scope="session")
def sim_city(tmp_path_factory) -> Path:
    """800 subjects, baseline, dirt on, CSV (the simulator's own output, as ingestion will see it)."""
    from simulation import SimulationConfig, generate

    out = tmp_path_factory.mktemp("feat_city")
    generate(SimulationConfig(n_subjects=800, seed=23, file_format="csv"), out)
    return out


@pytest.fixture(scope="session")
def sim_store(sim_city, tmp_path_factory) -> Path:
    """sim_city ingested once (tests must not write into it: copy it or use their own store)."""
    from features.ingest import ingest

    store = tmp_path_factory.mktemp("feat_store")
    ingest(store=store, subjects=sim_city / "subjects.csv", records=sim_city / "records.csv",
           ingested_at=INGESTED_AT)
    return store


@pytest.fixture(scope="session")
def spark():
    """One local Spark for the session: local[1], no UI, 2 shuffle partitions (fast on 2 cores)."""
    pyspark_sql = pytest.importorskip("pyspark.sql")
    session = (
        pyspark_sql.SparkSession.builder.master("local[1]").appName("tiers-feat-tests")
        .config("spark.ui.enabled", "false").config("spark.sql.shuffle.partitions", "2")
        .config("spark.sql.session.timeZone", "UTC").config("spark.driver.memory", "1g")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true").getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()
