"""How simulated subjects behave: the latent risk model and the record rates it drives.

The monthly general risk of a subject is a log-rate offset

    g[s, t] = sector[s] - 0.15·size[s] + 0.6·exp(-age[s, t] / 1.5) + 0.85·z[s] + u[s, t] (+ shock)

with a hidden propensity ``z ~ N(0, 1)`` and a slow AR(1) drift ``u`` (ρ = 0.95/month, sd 0.1: compliance
culture changes slowly, so past records say much about the future). Negative record kinds have rates
``base · exp(beta_g · g)`` with strong ``beta_g`` (penalties and tax/social-insurance arrears 1.5–1.6), so
past penalties, enforcement, arrears, broken commitments, lists and failed inspections predict future
adverse outcomes; rewards and self-declared items are mildly informative the other way.

**Sector-specific driver (section H, 住宿和餐饮业).** A second latent ``h`` (hygiene and operations)
drives complaints and water/power/gas arrears at the same volume in every sector, but it raises the adverse
outcomes (serious penalties, abnormal-operation listings, failed inspections) **only in section H**. Outside
H these records are frequent and carry no risk, so an additive pooled model cannot learn their H-only
meaning. Measured on a 20,000-subject city (seed 2, logistic regression on 12/36-month record counts,
trained on 2023-09-30 … 2024-09-30, tested on 2025-09-30): AUC in H 0.824 pooled vs 0.841 H-only, oracle 0.886.
The same counts in LightGBM reach 0.957 × the honest oracle AUC overall (0.736 vs 0.769).
"""

from __future__ import annotations

from dataclasses import dataclass

#: Sector effect on the general risk g (log-rate), by GB/T 4754 section.
SECTOR_EFFECT: dict[str, float] = {
    "A": 0.1, "B": 0.5, "C": 0.3, "D": -0.2, "E": 0.4, "F": 0.1, "G": 0.2, "H": 0.4, "I": -0.3,
    "J": -0.4, "K": 0.2, "L": 0.0, "M": -0.3, "N": 0.0, "O": 0.1, "P": -0.3, "Q": -0.1, "R": 0.1,
    "S": -0.5, "T": -0.5,
}



@dataclass(frozen=True)
class RateSpec:
    """Monthly rate of one record stream: ``per_year / 12 · exp(beta_g·g + beta_h·h + beta_size·size)``.

    ``beta_h_sector`` applies to section H only, ``beta_h_other`` elsewhere; ``h_section_mult``
    multiplies the base rate in section H.
    """

    key: str
    kind: str
    subkind: str = ""
    severity: str = ""
    per_year: float = 0.1
    beta_g: float = 0.0
    beta_h_sector: float = 0.0
    beta_h_other: float = 0.0
    beta_size: float = 0.0
    h_section_mult: float = 1.0
    adverse: bool = False


# Adverse-outcome streams (the labels of the contract). Inspections are handled separately because their
# rate is the draw rate times the probability that an inspection finds a problem.
ADVERSE_RATES: tuple[RateSpec, ...] = (
    RateSpec("penalty_serious", "admin_penalty", severity="serious", per_year=0.006, beta_g=1.1,
             beta_h_sector=2.3, adverse=True),
    RateSpec("list_abnormal", "list_abnormal_operation", per_year=0.050, beta_g=1.0, beta_h_sector=2.3,
             adverse=True),
    RateSpec("list_serious", "list_serious_dishonesty", per_year=0.0004, beta_g=1.6, adverse=True),
)

OTHER_RATES: tuple[RateSpec, ...] = (
    RateSpec("license", "admin_license", per_year=0.95, beta_size=0.3),
    RateSpec("check", "admin_check", per_year=0.60, beta_g=1.0, beta_size=0.2),
    RateSpec("confirmation", "admin_confirmation", per_year=0.15, beta_size=0.2),
    RateSpec("levy", "admin_levy", per_year=0.30, beta_size=0.3),
    RateSpec("payment", "admin_payment", per_year=0.10, beta_g=-0.2, beta_size=0.2),
    RateSpec("compensation", "admin_compensation", per_year=0.02),
    RateSpec("adjudication", "admin_adjudication", per_year=0.015, beta_g=0.3),
    RateSpec("reward", "admin_reward", per_year=0.06, beta_g=-0.8, beta_size=0.3),
    RateSpec("enforcement", "admin_enforcement", per_year=0.05, beta_g=1.5),
    RateSpec("penalty_minor", "admin_penalty", severity="minor", per_year=0.12, beta_g=1.6, beta_h_sector=0.7),
    RateSpec("penalty_general", "admin_penalty", severity="general", per_year=0.11, beta_g=1.6,
             beta_h_sector=0.8),
    RateSpec("list_key", "list_key_attention", per_year=0.0025, beta_g=1.4),
    RateSpec("list_debtor", "list_dishonest_debtor", per_year=0.004, beta_g=1.0),
    RateSpec("commitment", "commitment_made", per_year=0.40, beta_size=0.2),
    RateSpec("self_declared", "self_declared", per_year=0.50, beta_g=-0.4, beta_size=0.2),
    RateSpec("arrears_tax", "arrears", subkind="tax", per_year=0.12, beta_g=1.6),
    RateSpec("arrears_si", "arrears", subkind="social_insurance", per_year=0.10, beta_g=1.5),
    # driven by h and size only: informative about risk in section H; elsewhere they only track size
    # (bigger firms get more complaints and are slightly less risky)
    RateSpec("arrears_water", "arrears", subkind="water", per_year=0.15, beta_h_sector=1.8,
             beta_h_other=1.0, beta_size=0.5, h_section_mult=1.0),
    RateSpec("arrears_power", "arrears", subkind="power", per_year=0.15, beta_h_sector=1.8,
             beta_h_other=1.0, beta_size=0.5, h_section_mult=1.0),
    RateSpec("arrears_gas", "arrears", subkind="gas", per_year=0.10, beta_h_sector=1.8,
             beta_h_other=1.0, beta_size=0.5, h_section_mult=1.0),
    RateSpec("complaint", "complaint", per_year=1.00, beta_h_sector=2.0, beta_h_other=1.0, beta_size=0.5,
             h_section_mult=1.0),
)


@dataclass(frozen=True)
class InspectionBehaviour:
    """Double-random draws and their results.

    Draw rate ``per_year · exp(beta_g_draw · g)`` (risky subjects are drawn more often, as in tiered
    supervision); an inspection finds a problem with probability
    ``sigmoid(problem_intercept + beta_g_problem · g + beta_h_problem · h [section H only])``.
    """

    per_year: float = 0.065
    beta_g_draw: float = 0.5
    problem_intercept: float = -1.4
    beta_g_problem: float = 1.0
    beta_h_problem: float = 1.8
    case_opened_share: float = 0.3


@dataclass(frozen=True)
class LatentBehaviour:
    """Parameters of the latent paths g and h."""

    propensity_sd: float = 0.85
    drift_rho: float = 0.95
    drift_sd: float = 0.10
    h_sd: float = 1.0
    h_drift_rho: float = 0.95
    h_drift_sd: float = 0.15
    size_beta: float = -0.15
    young_boost: float = 0.6
    young_scale_years: float = 1.5
    shock: float = 1.0
    dereg_per_year: float = 0.012
    revoke_per_year: float = 0.003
    revoke_beta_g: float = 1.0

    @property
    def h_variance(self) -> float:
        """Stationary variance of h; used to centre its effect so a sector's mean rate stays put."""
        return self.h_sd**2 + self.h_drift_sd**2
