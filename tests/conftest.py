"""Settings for every test: Hypothesis keeps its files outside the checkout (the tests write
nothing into the repository) and saves no example database between runs (runs are reproducible
from the code alone). The one local Spark of a test process."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import configuration, settings

configuration.set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "tiers-hypothesis")
settings.register_profile("tiers", database=None)
settings.load_profile("tiers")

# Keys the service generates for itself (JWT, query-log MAC and signing keys, demo passwords) go to
# a temporary directory, never into the checkout (tests that check the keys give their own).
os.environ.setdefault("TIERS_KEYS_DIR", tempfile.mkdtemp(prefix="tiers-test-keys-"))


@pytest.fixture(scope="session")
def spark():
    """One local Spark for the session: local[1], no UI, 2 shuffle partitions (fast on 2 cores).
    Its Python workers (``mapInPandas``) run this interpreter, not whatever ``python3`` is first on
    the PATH."""
    pyspark_sql = pytest.importorskip("pyspark.sql")
    os.environ["PYSPARK_PYTHON"] = sys.executable
    session = (
        pyspark_sql.SparkSession.builder.master("local[1]").appName("tiers-tests")
        .config("spark.ui.enabled", "false").config("spark.sql.shuffle.partitions", "2")
        .config("spark.sql.session.timeZone", "UTC").config("spark.driver.memory", "1g")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true").getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()
