"""Bulk grading on Spark (mapInPandas, models broadcast) gives DuckDB's grades on the sample city."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pandas as pd
import pytest

from features.profiles import build_profiles, normalise_profiles, spark_profiles

pytestmark = [pytest.mark.spark, pytest.mark.slow, pytest.mark.xdist_group("spark")]
AS_OF = date(2025, 6, 30)
SAMPLE = Path(__file__).resolve().parents[2] / "data_samples" / "city"


@pytest.fixture(scope="module")
def city(tmp_path_factory):
    """The sample city (data_samples/city) ingested; a general and a sector-H model trained on it,
    registered as champions."""
    from features.ingest import ingest
    from features.specs import FEATURE_SPECS
    from training.data import load_dataset
    from training.pipeline import TrainingConfig, feature_metas_from_specs, register_result, train_model
    from training.registry import ModelRegistry

    root = tmp_path_factory.mktemp("trn_spark")
    store = root / "store"
    ingest(store=store, subjects=SAMPLE / "subjects.csv", records=SAMPLE / "records.csv",
           ingested_at=datetime(2026, 11, 1, tzinfo=UTC))
    config = TrainingConfig(train_as_of=(date(2023, 6, 30),), validate_as_of=date(2024, 6, 30),
                            candidates=("gbm_additive",), min_sector_positives=20, n_boot=20)
    dataset = load_dataset(store, (*config.train_as_of, config.validate_as_of))
    registry = ModelRegistry.in_directory(root / "registry")
    metas = feature_metas_from_specs(FEATURE_SPECS)
    general = train_model(dataset, metas, config=config)
    register_result(registry, general)
    register_result(registry, train_model(dataset, metas, config=config, sector="H", general=general.model))
    return store, registry


@pytest.mark.parametrize("cite", [True, False], ids=["reasons-cite-records", "no-records"])
def test_spark_grades_equal_duckdb_grades_on_the_sample_city(city, spark, cite):
    import json

    from features.profiles import spark_records
    from features.specs import model_features
    from features.store import read_latest
    from training.grade import GRADE_COLUMNS, evidence_index, grade_all, grade_all_spark

    store, registry = city
    evidence = evidence_index(read_latest(store, "records"), AS_OF, model_features()) if cite else None
    duck = grade_all(registry, build_profiles(store, as_of=AS_OF), as_of=AS_OF, evidence=evidence)
    profiles = spark_profiles(store, as_of=AS_OF, spark=spark)
    records = spark_records(store, spark=spark) if cite else None
    sprk = grade_all_spark(registry, profiles.repartition(3), records=records).toPandas()
    sprk = sprk.sort_values("uscc", kind="stable").reset_index(drop=True)[list(GRADE_COLUMNS)]
    # grades, probabilities, scores, reasons (and the records they cite), profile hashes, models:
    # all equal, row by row
    pd.testing.assert_frame_equal(sprk, duck, check_exact=True, check_dtype=False)
    assert set(duck["model_name"]) == {"tiers-general", "tiers-sector-H"}
    assert duck["reasons"].str.len().gt(2).any() and duck["grade"].nunique() > 1
    cited = any(r["record_ids"] for text in duck["reasons"] for r in json.loads(text))
    assert cited is cite


def test_spark_profiles_normalise_to_the_duckdb_frame(city, spark):
    store, _ = city
    sprk = normalise_profiles(spark_profiles(store, as_of=AS_OF, spark=spark).toPandas())
    pd.testing.assert_frame_equal(sprk, build_profiles(store, as_of=AS_OF), check_exact=False, atol=1e-9)
