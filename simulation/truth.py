"""The true 12-month adverse probability at an as-of date, given only what is true at that date.

The latent general risk is ``g = known part + u`` and the hygiene latent ``h = known part + v``, where the
known part (sector, size, propensity ``z``, ``h``'s level, the firm's age) is fixed or deterministic and the
drifts ``u``, ``v`` are Gaussian AR(1). Future drift is unknowable at the as-of date, so

    p_adverse_12m = E[ P(≥ 1 adverse record in months as_of+1 … as_of+12 | future path) | state at as_of ]

where the expectation runs over the future drift innovations *and* over exit from the register (a
subject that leaves gets no more records). The inner probability is exact for a path: with monthly
adverse rate λ_j and survival S_j (probability of still being registered in month j),

    P(no adverse | path) = Σ_k (S_k − S_{k+1}) · exp(−Λ_k) + S_12 · exp(−Λ_12),   Λ_k = λ_1 + … + λ_k.

The outer expectation is a Monte-Carlo mean over ``n_paths`` future drift paths drawn from a random stream
of their own (so the records do not depend on it), in antithetic pairs. Averaging the smooth inner
probability rather than simulated 0/1 outcomes, plus the pairing, keeps the Monte-Carlo error small: with
the default 4 paths (2 antithetic pairs), measured against 512 paths on 2,000 subjects, mean absolute error
0.0001, largest 0.007 — the drift is slow, so paths differ little. More paths cost time linearly.
(An analytic form would need the sum of log-normal rates over 12 months — no closed form — so Monte Carlo.)
A scheduled scenario shock that has not started at the as-of date is not known to the truth either.
"""

from __future__ import annotations

import numpy as np

from simulation.behaviour import LatentBehaviour
from simulation.engine import Subjects, exit_hazards
from simulation.records import CityTables, adverse_rate_of

#: subjects per block, so (block × paths × 12) arrays stay small
_BLOCK = 4096


def future_adverse_probability(
    rng: np.random.Generator,
    subj: Subjects,
    idx: np.ndarray,
    as_of_month: int,
    tables: CityTables,
    *,
    horizon: int = 12,
    n_paths: int = 4,
    pending_shock: np.ndarray | None = None,
) -> np.ndarray:
    """P(≥ 1 adverse outcome in the ``horizon`` months after ``as_of_month``) for subjects ``idx``.

    Conditions on the latent state in ``as_of_month`` only. ``pending_shock`` (n_idx, horizon) is the
    part of g in the future months that a scenario adds after the as-of date; it is removed because
    nobody can know it on the as-of date.
    """
    lat = LatentBehaviour()
    fut = np.arange(as_of_month + 1, as_of_month + 1 + horizon)
    cu = lat.drift_sd * np.sqrt(1 - lat.drift_rho**2)
    cv = lat.h_drift_sd * np.sqrt(1 - lat.h_drift_rho**2)
    out = np.empty(len(idx))
    for start in range(0, len(idx), _BLOCK):
        block = idx[start:start + _BLOCK]
        n = len(block)
        g_known = subj.g[block][:, fut] - subj.u[block][:, fut]
        h_known = subj.h[block][:, fut] - subj.v[block][:, fut]
        if pending_shock is not None:
            g_known = g_known - pending_shock[start:start + n]
        # antithetic pairs (ε, −ε): the inner probability is close to monotone in the drift, so pairing
        # cancels most of the Monte-Carlo error at no extra cost
        half = rng.standard_normal((2, n, (n_paths + 1) // 2, horizon))
        eps = np.concatenate([half, -half], axis=2)[:, :, :n_paths]
        k = eps.shape[2]
        u = np.empty((n, k, horizon))
        v = np.empty((n, k, horizon))
        u_prev = np.broadcast_to(subj.u[block, as_of_month][:, None], (n, k))
        v_prev = np.broadcast_to(subj.v[block, as_of_month][:, None], (n, k))
        for j in range(horizon):
            u_prev = lat.drift_rho * u_prev + cu * eps[0, :, :, j]
            v_prev = lat.h_drift_rho * v_prev + cv * eps[1, :, :, j]
            u[:, :, j] = u_prev
            v[:, :, j] = v_prev
        g = g_known[:, None, :] + u
        h = h_known[:, None, :] + v
        lam = adverse_rate_of(tables, subj.industry[block], subj.size_z[block], g, h)
        dereg, revoke = exit_hazards(g)
        survive = np.exp(-np.cumsum(dereg + revoke, axis=2))  # S_1 … S_H
        survive = np.concatenate([np.ones((n, k, 1)), survive], axis=2)  # S_0 … S_H
        cum_lam = np.concatenate([np.zeros((n, k, 1)), np.cumsum(lam, axis=2)], axis=2)  # Λ_0 … Λ_H
        no_event = np.exp(-cum_lam)
        p_none = ((survive[:, :, :-1] - survive[:, :, 1:]) * no_event[:, :, :-1]).sum(axis=2)
        p_none += survive[:, :, -1] * no_event[:, :, -1]
        out[start:start + n] = 1.0 - p_none.mean(axis=1)
    return out
