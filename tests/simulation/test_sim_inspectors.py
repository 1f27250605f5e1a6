"""The simulated inspector pool can staff what the default inspection policy draws."""

from __future__ import annotations

import numpy as np
import pytest

from simulation.config import SimulationConfig
from simulation.pools import STAFFING_HEADROOM, expected_visits, industry_shares, inspectors_table


def test_industry_shares_are_a_distribution() -> None:
    shares = industry_shares()
    assert all(v >= 0 for v in shares.values()) and sum(shares.values()) == pytest.approx(1.0)


@pytest.mark.parametrize("n_subjects", [2_000, 200_000, 2_000_000])
def test_every_department_has_capacity_for_its_expected_draws(n_subjects: int) -> None:
    cfg = SimulationConfig(n_subjects=n_subjects, seed=3)
    inspectors = inspectors_table(cfg, np.random.default_rng(3)).to_pandas()
    capacity = inspectors.groupby("department")["capacity"].sum()
    for department, total in capacity.items():
        # within a few percent of the headroom (capacities are random), never short
        assert total >= 0.95 * STAFFING_HEADROOM * expected_visits(cfg, department) >= 0
        assert total >= expected_visits(cfg, department)
    # bigger cities get proportionally more inspectors, not a fixed pool
    assert len(inspectors) >= 2 * len(cfg.city.districts) * len(capacity)
