"""Small seeded frames for the monitoring tests."""

from datetime import date

import numpy as np
import pandas as pd
import pytest

from monitoring.run import MonitoringFrames

SECTORS = list("CEFGIKLM")
DISTRICTS = ["320102", "320104", "320105", "320106"]


def make_frames(
    *, n: int = 4000, as_of: date, seed: int, sector_shift: dict[str, float] | None = None, uscc_offset: int = 0
) -> MonitoringFrames:
    """Profiles with a few features, a score (higher = safer) and grades; ``sector_shift`` moves the
    score of the listed sectors by that many standard deviations."""
    rng = np.random.default_rng(seed)
    industry = rng.choice(SECTORS, size=n, p=[0.3, 0.05, 0.15, 0.2, 0.1, 0.05, 0.1, 0.05])
    profiles = pd.DataFrame(
        {
            "uscc": [f"U{i + uscc_offset:07d}" for i in range(n)],
            "industry": industry,
            "district_code": rng.choice(DISTRICTS, size=n),
            "penalty_general_12m": rng.poisson(0.4, size=n),
            "penalty_serious_12m": rng.poisson(0.05, size=n),
            "registered_capital": rng.lognormal(4, 1.5, size=n),
        }
    )
    z = rng.normal(size=n)
    for sector, shift in (sector_shift or {}).items():
        z = np.where(industry == sector, z + shift, z)
    score = 600 + 50 * z
    scores = pd.DataFrame({"uscc": profiles["uscc"], "score": score})
    scores["grade"] = np.select([score >= 620, score >= 570, score >= 520], ["A", "B", "C"], "D")
    return MonitoringFrames(as_of=as_of, profiles=profiles, scores=scores)


@pytest.fixture
def frames_factory():
    return make_frames
