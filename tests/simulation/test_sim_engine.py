"""Building blocks of the generator: month arithmetic and the Poisson event sampler."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from simulation.engine import add_months, sample_poisson_months


@settings(max_examples=80, deadline=None)
@given(day=st.integers(0, 20000), months=st.integers(0, 48))
def test_add_months_matches_calendar_arithmetic(day, months):
    d = np.datetime64("2000-01-01") + day
    expected = pd.Timestamp(d) + pd.DateOffset(months=months)
    assert pd.Timestamp(add_months(np.array([d]), months)[0]) == expected


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), scale=st.floats(0.01, 2.0))
def test_poisson_sampler_never_places_events_where_the_rate_is_zero(seed, scale):
    rng = np.random.default_rng(seed)
    lam = rng.random((40, 24)) * scale
    lam[rng.random(lam.shape) < 0.4] = 0.0
    subj, month = sample_poisson_months(rng, lam)
    assert (lam[subj, month] > 0).all()
    assert ((month >= 0) & (month < 24)).all()


def test_poisson_sampler_has_the_right_mean_per_cell():
    rng = np.random.default_rng(1)
    lam = np.tile(np.array([0.0, 0.1, 0.5, 1.0, 0.05, 0.0]), (20000, 1))
    subj, month = sample_poisson_months(rng, lam)
    counts = np.bincount(month, minlength=6) / 20000
    se = np.sqrt(lam[0] / 20000)
    assert np.all(np.abs(counts - lam[0]) <= 5 * se + 1e-12)
    # per-subject totals are Poisson: variance ≈ mean
    totals = np.bincount(subj, minlength=20000)
    assert abs(totals.var() / totals.mean() - 1) < 0.05
