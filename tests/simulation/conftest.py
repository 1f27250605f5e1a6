"""Small seeded cities shared by the simulation tests (generated once per test session into tmp dirs)."""

from __future__ import annotations

from pathlib import Path

import pytest

from simulation import SimulationConfig, generate


def _city(tmp_path_factory: pytest.TempPathFactory, name: str, **kwargs) -> Path:
    out = tmp_path_factory.mktemp(name)
    generate(SimulationConfig(**kwargs), out)
    return out


@pytest.fixture(scope="session")
def dirty_csv_city(tmp_path_factory) -> Path:
    """1,500 subjects, baseline, dirt on, CSV."""
    return _city(tmp_path_factory, "dirty_csv", n_subjects=1500, seed=11, file_format="csv")


@pytest.fixture(scope="session")
def clean_csv_city(tmp_path_factory) -> Path:
    """The same city as dirty_csv_city with dirt off."""
    return _city(tmp_path_factory, "clean_csv", n_subjects=1500, seed=11, file_format="csv", dirt=False)


@pytest.fixture(scope="session")
def large_clean_city(tmp_path_factory) -> Path:
    """5,000 subjects, clean Parquet: enough truth rows for calibration checks."""
    return _city(tmp_path_factory, "large_clean", n_subjects=5000, seed=7, file_format="parquet", dirt=False,
                 chunk_size=2500)


@pytest.fixture(scope="session")
def scenario_cities(tmp_path_factory) -> dict[str, Path]:
    """One clean Parquet city per non-baseline scenario, same seed."""
    return {
        name: _city(tmp_path_factory, name, n_subjects=2500, seed=3, file_format="parquet", dirt=False, scenario=name)
        for name in ("sector_shock", "silent_feed", "severity_recoding")
    }
