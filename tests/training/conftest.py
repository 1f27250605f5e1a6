"""Fixtures of the training tests (a small city fixture lives in test_trn_city.py)."""

from __future__ import annotations

import pandas as pd
import pytest
from trn_synthetic import FEATURES, make_dataset

from models.meta import FeatureMeta


@pytest.fixture(scope="session")
def synthetic_dataset() -> pd.DataFrame:
    return make_dataset()


@pytest.fixture(scope="session")
def feature_metas() -> tuple[FeatureMeta, ...]:
    return FEATURES
