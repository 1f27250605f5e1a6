"""Shared fixtures of the features tests: a small simulated dirty city and its store (a local
Spark: tests/conftest.py)."""

from __future__ import annotations

import shutil
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


@pytest.fixture
def store(base_store, tmp_path) -> Path:
    """A fresh copy of the module's ``base_store`` (built once per module), for a test to change."""
    copy = tmp_path / "store"
    shutil.copytree(base_store, copy)
    return copy
