"""p_adverse_12m conditions on the state at the as-of date only, never on the future drift."""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulation import SimulationConfig
from simulation.engine import TimeGrid, make_subjects
from simulation.records import CityTables
from simulation.truth import future_adverse_probability
from simulation.workdays import working_days


@pytest.fixture(scope="module")
def world():
    cfg = SimulationConfig(n_subjects=400, seed=5, dirt=False)
    start = np.datetime64(cfg.start)
    with warnings.catch_warnings():  # the latent-only months run past chinesecalendar's last year
        warnings.simplefilter("ignore", UserWarning)
        days = working_days(cfg.start, cfg.end.replace(year=cfg.end.year + 2))
    grid = TimeGrid(start, cfg.n_months, days)
    subj = make_subjects(np.random.default_rng(3), cfg, grid, np.arange(400), None)
    return cfg, grid, subj, CityTables.build(cfg.city)


def _p(subj, tables, a, seed=0, **kwargs):
    idx = np.arange(len(subj.uscc))
    return future_adverse_probability(np.random.default_rng(seed), subj, idx, a, tables, **kwargs)


@settings(max_examples=5, deadline=None)
@given(shift=st.floats(-2.0, 2.0), a=st.integers(12, 40))
def test_truth_ignores_the_drift_after_the_as_of_month(world, shift, a):
    _, _, subj, tables = world
    future = np.arange(subj.g.shape[1]) > a
    # another future for the same past: the drift after the as-of month moves, the past stays
    u2 = subj.u + future * shift
    other = dataclasses.replace(subj, u=u2, g=subj.g + (u2 - subj.u))
    np.testing.assert_allclose(_p(subj, tables, a), _p(other, tables, a))


def test_truth_follows_the_state_at_the_as_of_month(world):
    _, _, subj, tables = world
    a = 24
    now = np.arange(subj.g.shape[1]) >= a
    worse = dataclasses.replace(subj, u=subj.u + now * 0.5, g=subj.g + now * 0.5)
    alive = subj.exit_month > a + 12
    assert (_p(worse, tables, a)[alive] > _p(subj, tables, a)[alive]).all()


def test_monte_carlo_error_is_small(world):
    _, _, subj, tables = world
    a = 30
    rough = _p(subj, tables, a, seed=1)  # the default number of paths
    fine = _p(subj, tables, a, seed=2, n_paths=512)
    assert np.abs(rough - fine).max() < 0.02
    assert abs(rough.mean() - fine.mean()) < 0.002
    assert ((rough >= 0) & (rough <= 1)).all()
