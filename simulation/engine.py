"""Vectorised generation of one chunk of subjects: attributes, latent risk, records, truth.

Pure: takes a config, a random generator and the calendar; returns numpy arrays. No I/O here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from simulation.behaviour import (
    SECTOR_EFFECT,
    InspectionBehaviour,
    LatentBehaviour,
    RateSpec,
)
from simulation.city import INDUSTRY_SECTIONS
from simulation.codes import make_resident_ids, make_uscc
from simulation.config import SimulationConfig
from simulation.names import person_names, subject_names
from simulation.vocab import (
    KIND_INDEX,
    LEGAL_FORMS,
)

SECTIONS = list(INDUSTRY_SECTIONS)
NAT = np.datetime64("NaT", "D")

# Legal-form mix and, per form, the industry mix (weights over SECTIONS) and size parameters.
_FORM_SHARE = {
    "llc": 0.55, "joint_stock": 0.02, "sole_proprietorship": 0.04, "partnership": 0.03,
    "individual_business": 0.27, "farmer_coop": 0.02, "branch": 0.05, "social_org": 0.02,
}
_ENTERPRISE_INDUSTRY = {
    "A": 2, "B": 0.3, "C": 11, "D": 0.6, "E": 5, "F": 28, "G": 4, "H": 7, "I": 6, "J": 1.5, "K": 3,
    "L": 10, "M": 8, "N": 1, "O": 4, "P": 1, "Q": 1, "R": 3, "S": 0.3, "T": 0.02,
}
_FORM_INDUSTRY = {
    "individual_business": {"F": 45, "H": 30, "O": 15, "G": 5, "C": 3, "R": 2},
    "farmer_coop": {"A": 95, "F": 5},
    "social_org": {"S": 40, "P": 25, "Q": 15, "R": 15, "M": 5},
}
# registered capital (万元): log-normal median and sigma; employees: median and sigma
_FORM_SIZE = {
    "llc": (100, 1.3, 8, 1.1), "joint_stock": (5000, 1.2, 150, 1.0), "sole_proprietorship": (10, 1.0, 3, 0.7),
    "partnership": (200, 1.5, 5, 0.9), "individual_business": (5, 1.0, 2, 0.6), "farmer_coop": (50, 1.0, 6, 0.8),
    "branch": (0, 0, 10, 1.0), "social_org": (10, 1.0, 5, 0.8),
}
# USCC prefixes (registering authority + entity type) per legal form, with weights
_FORM_PREFIX = {
    "llc": {"91": 1.0}, "joint_stock": {"91": 1.0}, "sole_proprietorship": {"91": 1.0},
    "partnership": {"91": 1.0}, "branch": {"91": 1.0}, "individual_business": {"92": 1.0},
    "farmer_coop": {"93": 0.85, "N2": 0.15},
    "social_org": {"51": 0.45, "52": 0.3, "53": 0.1, "A1": 0.05, "Y1": 0.1},
}

EPIDEMIC_START = np.datetime64("2022-03-01")
EPIDEMIC_END = np.datetime64("2022-12-31")


@dataclass
class TimeGrid:
    """Months of the simulation: ``n_months`` with records, plus 12 latent-only months for the truth."""

    start: np.datetime64
    n_months: int
    workdays: np.ndarray  # sorted datetime64[D] statutory working days covering the span (+ margin)
    month_starts: np.ndarray = field(init=False)
    days_in_month: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        months = np.datetime64(self.start, "M") + np.arange(self.n_months + 13)
        self.month_starts = months.astype("datetime64[D]")
        self.days_in_month = np.diff(self.month_starts).astype(np.int64)
        self.month_starts = self.month_starts[:-1]

    @property
    def n_total(self) -> int:
        """Months including the 12 latent-only months after the end."""
        return self.n_months + 12

    @property
    def end(self) -> np.datetime64:
        """Last day with records."""
        return self.month_starts[self.n_months] - 1

    def month_of(self, dates: np.ndarray) -> np.ndarray:
        """Month index (relative to start; may be negative) of datetime64[D] dates."""
        return (dates.astype("datetime64[M]") - np.datetime64(self.start, "M")).astype(np.int64)

    def random_day(self, rng: np.random.Generator, months: np.ndarray) -> np.ndarray:
        """A uniformly random day inside each given month index."""
        days = (rng.random(len(months)) * self.days_in_month[months]).astype(np.int64)
        return self.month_starts[months] + days

    def add_workdays(self, dates: np.ndarray, k: np.ndarray) -> np.ndarray:
        """The k-th statutory working day after each date."""
        pos = np.searchsorted(self.workdays, dates, side="right") + k - 1
        return self.workdays[np.minimum(pos, len(self.workdays) - 1)]


def add_months(dates: np.ndarray, months: np.ndarray | int) -> np.ndarray:
    """Same day ``months`` later, clipped to the month's last day (2024-01-31 + 1 month = 2024-02-29)."""
    month = dates.astype("datetime64[M]")
    day = (dates - month.astype("datetime64[D]")).astype(np.int64)
    target = month + np.asarray(months)
    last = ((target + 1).astype("datetime64[D]") - target.astype("datetime64[D]")).astype(np.int64) - 1
    return target.astype("datetime64[D]") + np.minimum(day, last)


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Logistic function."""
    return 1.0 / (1.0 + np.exp(-x))


def sample_poisson_months(rng: np.random.Generator, lam: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Events of independent Poisson(lam[s, t]) counts, as (subject, month) index arrays.

    Draws each subject's total count, then places the events in months proportionally to ``lam``;
    this is the same distribution as independent monthly Poisson draws, at the cost of one
    ``searchsorted`` instead of n·T Poisson draws.
    """
    n, t = lam.shape
    total = lam.sum(axis=1)
    counts = rng.poisson(total)
    subj = np.repeat(np.arange(n), counts)
    if len(subj) == 0:
        return subj, subj.copy()
    # only subjects with events need their cumulative profile (most have none for the rare kinds)
    rows = np.flatnonzero(counts)
    local = np.repeat(np.arange(len(rows)), counts[rows])
    flat = (np.cumsum(lam[rows], axis=1) / total[rows, None] + np.arange(len(rows))[:, None]).ravel()
    pos = np.searchsorted(flat, local + rng.random(len(subj)), side="right")
    month = np.clip(pos - local * t, 0, t - 1)
    return subj, month


def _choice_by_row(rng: np.random.Generator, weights: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """For each entry of ``rows``, a column index drawn with probabilities ``weights[row]``."""
    cum = np.cumsum(weights, axis=1)
    cum = cum / np.where(cum[:, -1:] > 0, cum[:, -1:], 1.0)
    u = rng.random(len(rows))
    return np.minimum((cum[rows] < u[:, None]).sum(axis=1), weights.shape[1] - 1)


def _choice(rng: np.random.Generator, options: dict, n: int) -> np.ndarray:
    keys = list(options)
    p = np.array([options[k] for k in keys], dtype=float)
    return np.array(keys, dtype=object)[rng.choice(len(keys), size=n, p=p / p.sum())]


@dataclass
class Subjects:
    """Subject attributes and latent paths of one chunk (arrays of length n)."""

    uscc: np.ndarray
    name: list[str]
    legal_form: np.ndarray
    industry: np.ndarray  # index into SECTIONS
    district: np.ndarray  # index into city.districts
    registered_on: np.ndarray
    registered_capital: np.ndarray
    employees: np.ndarray
    status: np.ndarray
    status_date: np.ndarray
    legal_rep_name: list[str]
    legal_rep_id: np.ndarray
    alive: np.ndarray  # (n, T) bool
    reg_month: np.ndarray
    exit_month: np.ndarray
    g: np.ndarray  # (n, T) general latent risk
    h: np.ndarray  # (n, T) hygiene/operations latent
    size_z: np.ndarray
    u: np.ndarray  # (n, T) the AR(1) drift inside g (the part of g that is not known in advance)
    v: np.ndarray  # (n, T) the AR(1) drift inside h


def make_subjects(
    rng: np.random.Generator, cfg: SimulationConfig, grid: TimeGrid, serials: np.ndarray, shock_from: int | None
) -> Subjects:
    """Draw n subjects (n = len(serials)) with their latent monthly risk paths."""
    n = len(serials)
    city = cfg.city
    lat = LatentBehaviour()
    legal_form = _choice(rng, _FORM_SHARE, n)
    enterprise_w = np.array([_ENTERPRISE_INDUSTRY.get(s, 0) for s in SECTIONS], dtype=float)
    form_rows = {f: np.array([_FORM_INDUSTRY.get(f, {}).get(s, 0) for s in SECTIONS], dtype=float)
                 if f in _FORM_INDUSTRY else enterprise_w for f in LEGAL_FORMS}
    form_idx = np.array([LEGAL_FORMS.index(f) for f in legal_form])
    industry = _choice_by_row(rng, np.stack([form_rows[f] for f in LEGAL_FORMS]), form_idx)
    dw = np.array([d.weight for d in city.districts], dtype=float)
    district = rng.choice(len(dw), size=n, p=dw / dw.sum())

    # registration: a third registered during the span, the rest earlier (exponential age)
    end = grid.end
    span_days = int((end - grid.month_starts[0]).astype(np.int64))
    new = rng.random(n) < 0.33
    age_days = np.where(new, rng.random(n) * span_days, span_days + rng.exponential(8 * 365.25, n))
    registered_on = end - np.minimum(age_days, 45 * 365).astype(np.int64)
    reg_month = grid.month_of(registered_on)

    cap = np.zeros(n)
    emp = np.zeros(n, dtype=np.int64)
    for form, (cap_med, cap_sd, emp_med, emp_sd) in _FORM_SIZE.items():
        m = legal_form == form
        k = int(m.sum())
        if k == 0:
            continue
        if cap_med > 0:
            cap[m] = np.round(cap_med * np.exp(rng.normal(0, cap_sd, k)), 2)
        emp[m] = np.floor(emp_med * np.exp(rng.normal(0, emp_sd, k))).astype(np.int64)
    size_z = (np.log1p(emp) - 1.8) / 1.2

    prefix = np.empty(n, dtype=object)
    for form, options in _FORM_PREFIX.items():
        m = legal_form == form
        if m.any():
            prefix[m] = _choice(rng, options, int(m.sum()))
    division = np.array([int(city.districts[d].code) for d in district])
    uscc = make_uscc(prefix, division, serials)
    district_names = [city.districts[d].name for d in district]
    names = subject_names(rng, city.name_zh, district_names, [SECTIONS[i] for i in industry], list(legal_form))

    # legal representative: born 1958–2003, birthplace code valid for the birth year (python-stdnum checks it)
    birth_year = np.clip(np.round(rng.normal(1978, 9, n)), 1958, 2003).astype(np.int64)
    bp_codes = np.array([int(b.code) for b in city.birthplaces])
    years = np.arange(1958, 2004)
    valid = np.array([[b.first_year <= y <= b.last_year for b in city.birthplaces] for y in years], dtype=float)
    if (valid.sum(axis=1) == 0).any():
        missing = years[valid.sum(axis=1) == 0].tolist()
        raise ValueError(f"city birthplaces cover no code for birth years {missing}")
    birthplace = bp_codes[_choice_by_row(rng, valid, birth_year - 1958)]
    birth = (birth_year - 1970).astype("datetime64[Y]").astype("datetime64[D]") + rng.integers(0, 365, n)
    rep_ids = make_resident_ids(birthplace, birth, rng.integers(1, 1000, n))
    rep_names = person_names(rng, n)

    # latent paths over all T months
    t_total = grid.n_total
    z = rng.normal(0, 1, n)
    hz = rng.normal(0, 1, n)
    u = np.empty((n, t_total))
    v = np.empty((n, t_total))
    u[:, 0] = rng.normal(0, lat.drift_sd, n)
    v[:, 0] = rng.normal(0, lat.h_drift_sd, n)
    eps_u = rng.normal(0, 1, (n, t_total))
    eps_v = rng.normal(0, 1, (n, t_total))
    cu = lat.drift_sd * np.sqrt(1 - lat.drift_rho**2)
    cv = lat.h_drift_sd * np.sqrt(1 - lat.h_drift_rho**2)
    for t in range(1, t_total):
        u[:, t] = lat.drift_rho * u[:, t - 1] + cu * eps_u[:, t]
        v[:, t] = lat.h_drift_rho * v[:, t - 1] + cv * eps_v[:, t]
    age_years = (grid.month_starts[None, :t_total] - registered_on[:, None]).astype(np.float64) / 365.25
    sector = np.array([SECTOR_EFFECT[SECTIONS[i]] for i in industry])
    g = (sector + lat.size_beta * size_z + lat.propensity_sd * z)[:, None] + u
    g += lat.young_boost * np.exp(-np.clip(age_years, 0, None) / lat.young_scale_years)
    if shock_from is not None:
        shocked = industry == SECTIONS.index(cfg.shock_sector)
        g[np.ix_(shocked, np.arange(t_total) >= shock_from)] += lat.shock
    h = (lat.h_sd * hz)[:, None] + v

    # exits: deregistration (mildly risk-related) and revocation of the licence (strongly risk-related)
    months = np.arange(t_total)[None, :]
    could_exit = months > reg_month[:, None]
    haz_dereg, haz_revoke = exit_hazards(g)
    haz_dereg *= could_exit
    haz_revoke *= could_exit
    cum = np.cumsum(haz_dereg + haz_revoke, axis=1)
    e = rng.exponential(1.0, n)
    exit_month = (cum < e[:, None]).sum(axis=1)  # = t_total when no exit within the horizon
    exit_month = np.where(exit_month <= reg_month, reg_month + 1, exit_month)
    has_exit = exit_month < grid.n_months
    em = np.minimum(exit_month, t_total - 1)
    p_revoke = haz_revoke[np.arange(n), em] / np.maximum((haz_dereg + haz_revoke)[np.arange(n), em], 1e-12)
    revoked = has_exit & (rng.random(n) < p_revoke)
    status = np.where(has_exit, np.where(revoked, "revoked", "deregistered"), "active").astype(object)
    status_date = np.full(n, NAT)
    if has_exit.any():
        status_date[has_exit] = grid.random_day(rng, exit_month[has_exit])
        # a subject registered in its exit month leaves no earlier than it was registered
        status_date = np.where(has_exit, np.maximum(status_date, registered_on), status_date)
    alive = (months > reg_month[:, None]) & (months < exit_month[:, None])
    return Subjects(
        uscc=uscc, name=names, legal_form=legal_form, industry=industry, district=district,
        registered_on=registered_on, registered_capital=cap, employees=emp, status=status,
        status_date=status_date, legal_rep_name=rep_names, legal_rep_id=rep_ids, alive=alive,
        reg_month=reg_month, exit_month=exit_month, g=g, h=h, size_z=size_z, u=u, v=v,
    )


def exit_hazards(g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Monthly hazards (deregistration, revocation) of a subject with general risk g (any shape)."""
    lat = LatentBehaviour()
    return (lat.dereg_per_year / 12 * np.exp(0.2 * g),
            lat.revoke_per_year / 12 * np.exp(lat.revoke_beta_g * (g - 0.5)))


def rate_of(spec: RateSpec, g: np.ndarray, h: np.ndarray, is_h: np.ndarray, size_z: np.ndarray) -> np.ndarray:
    """λ of one record stream for latent values g, h of shape (n, ...) and per-subject is_h, size_z (n,).

    Alive or not is the caller's business: this is the rate of a subject on the register.
    """
    beta_h = np.where(is_h, spec.beta_h_sector, spec.beta_h_other)
    # per-subject part of the log-rate; the h effect is centred so it moves risk around inside a sector
    # without changing the sector's mean
    per_subject = np.log(spec.per_year / 12) + spec.beta_size * size_z - beta_h**2 * LatentBehaviour().h_variance / 2
    per_subject += np.where(is_h, np.log(spec.h_section_mult), 0.0)
    extra = (slice(None),) + (None,) * (g.ndim - 1)
    log_rate = np.broadcast_to(per_subject[extra], g.shape).copy()
    if spec.beta_g:
        log_rate += spec.beta_g * g
    if beta_h.any():
        log_rate += beta_h[extra] * h
    return np.exp(log_rate, out=log_rate)


def monthly_rate(spec: RateSpec, subj: Subjects, n_months: int) -> np.ndarray:
    """λ[s, t] of one record stream over the first ``n_months`` months (0 when the subject is not alive)."""
    is_h = subj.industry == SECTIONS.index("H")
    lam = rate_of(spec, subj.g[:, :n_months], subj.h[:, :n_months], is_h, subj.size_z)
    lam *= subj.alive[:, :n_months]
    return lam


def inspection_rate_of(g: np.ndarray, h: np.ndarray, is_h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(draw rate q, problem probability r) of double-random inspections for latent g, h of shape (n, ...)."""
    ib = InspectionBehaviour()
    extra = (slice(None),) + (None,) * (g.ndim - 1)
    q = ib.per_year / 12 * np.exp(ib.beta_g_draw * (g - 0.5))
    r = sigmoid(ib.problem_intercept + ib.beta_g_problem * (g - 0.5) + (ib.beta_h_problem * is_h)[extra] * h)
    return q, r


def inspection_rates(subj: Subjects, n_months: int) -> tuple[np.ndarray, np.ndarray]:
    """(draw rate q[s, t], problem probability r[s, t]) of double-random inspections."""
    is_h = subj.industry == SECTIONS.index("H")
    q, r = inspection_rate_of(subj.g[:, :n_months], subj.h[:, :n_months], is_h)
    return q * subj.alive[:, :n_months], r


# Every record column, in output order: (dtype, the value of a record that does not give one). The
# four that `RecordArrays.add` takes as arguments (subject, kind, decision date, department) have none.
RECORD_COLUMNS: dict[str, tuple[object, object]] = {
    "subj": (np.int64, None), "kind": (np.int16, None), "subkind": (np.int16, 0),
    "severity": (np.int8, 0),  # recorded severity
    "true_severity": (np.int8, 0), "decision": ("datetime64[D]", None), "end_date": ("datetime64[D]", NAT),
    "publicity_end": ("datetime64[D]", NAT), "amount": (np.float64, np.nan), "department": (np.int16, None),
    "ref": (np.int64, -1), "verified": (np.int8, -1), "verified_on": ("datetime64[D]", NAT),
    "exemption": (np.int8, 0), "item": (np.int16, -1), "adverse": (bool, False),
}


class RecordArrays:
    """Records of one chunk as parallel numpy arrays (codes index the vocabularies in ``vocab``):
    ``parts[column]`` is the list of arrays added so far, one per `add`, columns as `RECORD_COLUMNS`."""

    def __init__(self) -> None:
        self.parts: dict[str, list[np.ndarray]] = {name: [] for name in RECORD_COLUMNS}

    def add(self, subj: np.ndarray, kind: str, decision: np.ndarray, department: np.ndarray, **cols) -> None:
        """Append k records of one kind; unspecified columns get their empty value."""
        k = len(subj)
        if k == 0:
            return
        unknown = set(cols) - {name for name, (_, empty) in RECORD_COLUMNS.items() if empty is not None}
        if unknown:
            raise TypeError(f"unknown record columns {sorted(unknown)}")
        cols.update(subj=subj, kind=KIND_INDEX[kind], decision=decision, department=department)
        for name, (dtype, empty) in RECORD_COLUMNS.items():
            value = cols.get(name)
            arr = np.full(k, empty, dtype=dtype) if value is None else np.broadcast_to(np.asarray(value, dtype=dtype), (k,)).copy()
            self.parts[name].append(arr)

    def finish(self) -> dict[str, np.ndarray]:
        """Concatenate into one array per column."""
        return {name: np.concatenate(parts) if parts else np.empty(0) for name, parts in self.parts.items()}

    def __len__(self) -> int:
        return sum(len(p) for p in self.parts["subj"])
