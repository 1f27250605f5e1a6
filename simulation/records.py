"""Sampling the public credit records of a chunk of subjects from their latent monthly rates."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulation.behaviour import ADVERSE_RATES, OTHER_RATES, InspectionBehaviour, RateSpec
from simulation.city import CityConfig
from simulation.config import SimulationConfig
from simulation.engine import (
    EPIDEMIC_END,
    EPIDEMIC_START,
    SECTIONS,
    RecordArrays,
    Subjects,
    TimeGrid,
    _choice_by_row,
    add_months,
    inspection_rate_of,
    inspection_rates,
    monthly_rate,
    rate_of,
    sample_poisson_months,
    sigmoid,
)
from simulation.vocab import EXEMPTIONS, KINDS, SEVERITIES, SUBKIND_INDEX

SEV = {s: i for i, s in enumerate(SEVERITIES)}
EXE = {s: i for i, s in enumerate(EXEMPTIONS)}

# fines and arrears (CNY): log-normal median, sigma
_AMOUNT = {
    "minor": (500, 0.8), "general": (20_000, 1.0), "serious": (200_000, 1.0), "tax": (20_000, 1.2),
    "social_insurance": (15_000, 1.0), "water": (800, 0.8), "power": (3_000, 0.9), "gas": (1_500, 0.8),
}


@dataclass(frozen=True)
class CityTables:
    """City configuration turned into lookup matrices for vectorised routing."""

    dept_codes: tuple[str, ...]
    kind_weights: dict[str, np.ndarray]  # kind → (n_sections, n_departments)
    arrears_dept: dict[str, int]
    item_codes: tuple[str, ...]
    item_dept: np.ndarray
    item_weights: np.ndarray  # (n_sections, n_items)

    @classmethod
    def build(cls, city: CityConfig) -> CityTables:
        """Who issues what for which section, from the city's departments and items."""
        codes = tuple(d.code for d in city.departments)
        kind_weights = {}
        for kind in KINDS:
            w = np.zeros((len(SECTIONS), len(codes)))
            for j, dept in enumerate(city.departments):
                weight = dept.kinds.get(kind, 0.0)
                if weight:
                    covered = [SECTIONS.index(s) for s in dept.industries] if dept.industries else range(len(SECTIONS))
                    w[list(covered), j] = weight
            kind_weights[kind] = w
        items = city.items
        iw = np.zeros((len(SECTIONS), len(items)))
        for j, item in enumerate(items):
            covered = [SECTIONS.index(s) for s in item.industries] if item.industries else range(len(SECTIONS))
            iw[list(covered), j] = 1.0
        return cls(
            dept_codes=codes,
            kind_weights=kind_weights,
            arrears_dept={k: codes.index(v) for k, v in city.arrears_departments.items()},
            item_codes=tuple(i.item_code for i in items),
            item_dept=np.array([codes.index(i.department) for i in items], dtype=np.int16),
            item_weights=iw,
        )

    def issuer_exists(self, kind: str) -> np.ndarray:
        """Per section, whether some department issues this kind there."""
        return self.kind_weights[kind].sum(axis=1) > 0

    def route(self, rng: np.random.Generator, kind: str, sections: np.ndarray) -> np.ndarray:
        """Issuing department index for records of ``kind`` on subjects of the given sections."""
        return _choice_by_row(rng, self.kind_weights[kind], sections)


@dataclass
class ChunkRecords:
    """Records of a chunk plus what the truth needs."""

    columns: dict[str, np.ndarray]
    adverse_rate: np.ndarray  # (n, T) summed monthly rate of adverse outcomes
    problem_prob: np.ndarray  # (n, T) probability an inspection finds a problem


def _lognormal(rng: np.random.Generator, key: str, k: int) -> np.ndarray:
    median, sigma = _AMOUNT[key]
    return np.round(median * np.exp(rng.normal(0, sigma, k)), -1 if median < 5000 else -2)


def _penalty_publicity(decision: np.ndarray, severity: np.ndarray, cfg: SimulationConfig) -> np.ndarray:
    pub = cfg.publicity
    months = np.where(severity == SEV["serious"], pub.serious_max_months, pub.general_max_months)
    out = add_months(decision, months)
    return np.where(severity == SEV["minor"], np.datetime64("NaT"), out)


def _penalty_min_months(decision: np.ndarray, severity: np.ndarray, cfg: SimulationConfig) -> np.ndarray:
    pub = cfg.publicity
    new_rules = decision >= np.datetime64(pub.rules_change_on)
    serious = np.where(new_rules, pub.serious_min_months, pub.serious_min_months_before)
    return np.where(severity == SEV["serious"], serious, pub.general_min_months)


def sample_records(
    rng: np.random.Generator, cfg: SimulationConfig, grid: TimeGrid, subj: Subjects, tables: CityTables
) -> ChunkRecords:
    """All records of the chunk, clean and as they truly happened (scenarios and dirt come later)."""
    n_months = grid.n_months
    end = grid.end
    out = RecordArrays()
    section = subj.industry

    def stream(spec: RateSpec, horizon: int = n_months) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        lam = monthly_rate(spec, subj, horizon)
        if spec.kind != "arrears":  # no record where no department issues this kind for the section
            lam *= tables.issuer_exists(spec.kind)[section][:, None]
        s, m = sample_poisson_months(rng, lam[:, :n_months])
        return s, grid.random_day(rng, m), lam

    # --- adverse outcomes: their summed rate over all T months is the truth ---
    adverse_rate = np.zeros_like(subj.g)
    for spec in ADVERSE_RATES:
        s, d, lam = stream(spec, grid.n_total)
        adverse_rate += lam
        dept = tables.route(rng, spec.kind, section[s])
        if spec.kind == "admin_penalty":
            sev = np.full(len(s), SEV["serious"])
            out.add(s, "admin_penalty", d, dept, severity=sev, true_severity=sev,
                    amount=_lognormal(rng, "serious", len(s)), adverse=True)
        else:
            out.add(s, spec.kind, d, dept, adverse=True)

    q, r = inspection_rates(subj, grid.n_total)
    adverse_rate += q * r
    ib = InspectionBehaviour()
    for found in (True, False):
        lam = q * r if found else q * (1 - r)
        s, m = sample_poisson_months(rng, lam[:, :n_months])
        d = grid.random_day(rng, m)
        item = _choice_by_row(rng, tables.item_weights, section[s])
        if found:
            sub = np.where(rng.random(len(s)) < ib.case_opened_share, SUBKIND_INDEX["case_opened"],
                           SUBKIND_INDEX["corrected"])
        else:
            sub = np.full(len(s), SUBKIND_INDEX["no_problem"])
        out.add(s, "inspection", d, tables.item_dept[item], subkind=sub, item=item, adverse=found)

    # --- everything else ---
    for spec in OTHER_RATES:
        s, d, _ = stream(spec)
        k = len(s)
        if k == 0:
            continue
        if spec.kind == "arrears":
            dept = np.full(k, tables.arrears_dept[spec.subkind])
        else:
            dept = tables.route(rng, spec.kind, section[s])
        if spec.kind == "admin_penalty":
            sev = np.full(k, SEV[spec.severity])
            out.add(s, "admin_penalty", d, dept, severity=sev, true_severity=sev,
                    amount=_lognormal(rng, spec.severity, k), exemption=_exemptions(rng, d, sev, subj, s))
        elif spec.kind == "arrears":
            # risky subjects settle later and less often, so unsettled arrears say something about them
            g_then = subj.g[s, grid.month_of(d)]
            settled = d + (5 + rng.exponential(60, k) * np.exp(0.5 * (g_then - 0.3))).astype(np.int64)
            p_settle = sigmoid(1.6 - 1.0 * (g_then - 0.3))
            settled = np.where((rng.random(k) < p_settle) & (settled <= end), settled, np.datetime64("NaT"))
            exe = np.where((d >= EPIDEMIC_START) & (d <= EPIDEMIC_END) & (rng.random(k) < 0.4),
                           EXE["force_majeure"], EXE[""])
            out.add(s, "arrears", d, dept, subkind=SUBKIND_INDEX[spec.subkind], end_date=settled,
                    amount=_lognormal(rng, spec.subkind, k), exemption=exe)
        elif spec.kind == "self_declared":
            sub = rng.choice([SUBKIND_INDEX[x] for x in ("qualification", "contract_performance", "public_welfare")],
                             size=k, p=[0.5, 0.35, 0.15])
            on = grid.add_workdays(d, rng.integers(1, 6, k))
            ok = (rng.random(k) < 0.85) & (on <= end)  # a verification after the data end has not happened yet
            out.add(s, "self_declared", d, dept, subkind=sub, verified=ok.astype(np.int8),
                    verified_on=np.where(ok, on, np.datetime64("NaT")))
        elif spec.kind == "complaint":
            sub = np.where(rng.random(k) < 0.8, SUBKIND_INDEX["complaint"], SUBKIND_INDEX["report"])
            sev = np.where(rng.random(k) < 0.3, rng.choice([1, 2, 3], size=k, p=[0.6, 0.3, 0.1]), 0)
            out.add(s, "complaint", d, dept, subkind=sub, severity=sev, true_severity=sev)
        elif spec.kind == "commitment_made":
            sub = rng.choice([SUBKIND_INDEX[x] for x in ("application", "industry", "repair")], size=k,
                             p=[0.7, 0.2, 0.1])
            due = d + rng.integers(90, 366, k)
            out.add(s, "commitment_made", d, dept, subkind=sub, end_date=due)
        else:
            out.add(s, spec.kind, d, dept)

    base = out.finish()
    if cfg.scenario == "severity_recoding":
        # the department starts coding general penalties as serious: the feed changes, the truth does not
        recoded = (
            (base["kind"] == KINDS.index("admin_penalty"))
            & (base["department"] == tables.dept_codes.index(cfg.recoded_department))
            & (base["severity"] == SEV["general"])
            & (base["decision"] >= np.datetime64(cfg.scenario_date))
        )
        base["severity"][recoded] = SEV["serious"]
        _overwrite_prefix(out.parts["severity"], base["severity"])
    _derived(rng, cfg, grid, subj, base, out)
    return ChunkRecords(columns=out.finish(), adverse_rate=adverse_rate, problem_prob=r)


def _exemptions(rng: np.random.Generator, d: np.ndarray, sev: np.ndarray, subj: Subjects, s: np.ndarray) -> np.ndarray:
    """Exemptions on minor/general penalties: an epidemic force-majeure wave plus scattered lenient cases."""
    k = len(d)
    u = rng.random(k)
    epidemic = (d >= EPIDEMIC_START) & (d <= EPIDEMIC_END)
    exe = np.full(k, EXE[""], dtype=np.int8)
    exe[epidemic & (u < 0.4)] = EXE["force_majeure"]
    exe[~epidemic & (sev == SEV["minor"]) & (u < 0.2)] = EXE["first_minor_unintentional"]
    individual = subj.legal_form[s] == "individual_business"
    exe[~epidemic & individual & (u > 0.995)] = EXE["minor_person"]
    return exe


def _derived(rng: np.random.Generator, cfg: SimulationConfig, grid: TimeGrid, subj: Subjects,
             base: dict[str, np.ndarray], out: RecordArrays) -> None:
    """Records that follow earlier records: publicity, list exits, repairs, commitment outcomes, revocations."""
    end = grid.end
    # nothing follows a subject after it left the register: derived records stop at the exit date
    last_day = np.where(np.isnat(subj.status_date), end, subj.status_date)[base["subj"]]
    kind = base["kind"]
    decision = base["decision"]
    nat = np.datetime64("NaT")
    kidx = {k: i for i, k in enumerate(KINDS)}

    # publicity of penalties (recorded severity decides publication)
    pen = np.flatnonzero(kind == kidx["admin_penalty"])
    pub_all = np.concatenate(out.parts["publicity_end"])
    pub_all[pen] = _penalty_publicity(decision[pen], base["severity"][pen], cfg)

    # penalty repairs, only after the minimum publicity period and before the maximum
    gen_ser = pen[base["severity"][pen] >= SEV["general"]]
    min_m = _penalty_min_months(decision[gen_ser], base["severity"][gen_ser], cfg)
    earliest = add_months(decision[gen_ser], min_m)
    when = earliest + rng.exponential(120, len(gen_ser)).astype(np.int64)
    # compliant firms correct and apply for repair; risky ones less often (their penalties stay visible)
    g_then = subj.g[base["subj"][gen_ser], grid.month_of(decision[gen_ser])]
    p_repair = sigmoid(np.where(base["severity"][gen_ser] == SEV["serious"], -1.1, -0.6) - 0.8 * (g_then - 0.3))
    ok = (rng.random(len(gen_ser)) < p_repair) & (when <= pub_all[gen_ser]) & (when <= last_day[gen_ser])
    rep = gen_ser[ok]
    out.add(base["subj"][rep], "repair", when[ok], base["department"][rep], ref=rep)

    # list exits (end_date) and repairs
    end_all = np.concatenate(out.parts["end_date"])
    for list_kind, (min_months, max_months) in cfg.publicity.lists.items():
        idx = np.flatnonzero(kind == kidx[list_kind])
        if len(idx) == 0:
            continue
        entry = decision[idx]
        pub_end = add_months(entry, max_months)
        pub_all[idx] = pub_end
        p_early = {"list_serious_dishonesty": 0.5, "list_key_attention": 0.8,
                   "list_abnormal_operation": 0.75, "list_dishonest_debtor": 0.6}[list_kind]
        early = add_months(entry, min_months) + (1 + rng.exponential(150, len(idx))).astype(np.int64)
        is_early = (rng.random(len(idx)) < p_early) & (early < pub_end)
        exit_on = np.where(is_early, early, pub_end)
        end_all[idx] = np.where(exit_on <= end, exit_on, nat)
        if list_kind in ("list_serious_dishonesty", "list_key_attention"):
            repaired = is_early & (exit_on <= last_day[idx]) & (rng.random(len(idx)) < 0.6)
            r_idx = idx[repaired]
            out.add(base["subj"][r_idx], "repair", exit_on[repaired], base["department"][r_idx], ref=r_idx)

    # commitment outcomes: kept at the due date or broken before it (risky subjects break more)
    com = np.flatnonzero(kind == kidx["commitment_made"])
    due = base["end_date"][com]
    done = due <= last_day[com]
    com, due = com[done], due[done]
    m = grid.month_of(decision[com])
    p_break = sigmoid(-2.6 + 2.0 * subj.g[base["subj"][com], m])
    broken = rng.random(len(com)) < p_break
    span = (due - decision[com]).astype(np.int64)
    broken_on = decision[com] + 1 + (rng.random(len(com)) * span).astype(np.int64)
    out.add(base["subj"][com[broken]], "commitment_broken", broken_on[broken], base["department"][com[broken]],
            ref=com[broken])
    out.add(base["subj"][com[~broken]], "commitment_kept", due[~broken], base["department"][com[~broken]],
            ref=com[~broken])

    # revocations of non-adverse negative records (an adverse outcome stays a fact of the truth)
    candidates = np.flatnonzero(
        ((kind == kidx["admin_penalty"]) & (base["true_severity"] < SEV["serious"]))
        | np.isin(kind, [kidx["admin_enforcement"], kidx["list_key_attention"], kidx["list_dishonest_debtor"]])
    )
    pick = candidates[rng.random(len(candidates)) < 0.02]
    on = decision[pick] + rng.integers(15, 181, len(pick))
    keep = on <= last_day[pick]
    pick, on = pick[keep], on[keep]
    sub = rng.choice([SUBKIND_INDEX[x] for x in ("court", "department", "objection")], size=len(pick),
                     p=[0.3, 0.3, 0.4])
    out.add(base["subj"][pick], "revocation", on, base["department"][pick], subkind=sub, ref=pick)

    # write the updated publicity and end dates back over the base rows (derived rows come after them)
    n_base = len(kind)
    _overwrite_prefix(out.parts["publicity_end"], pub_all[:n_base])
    _overwrite_prefix(out.parts["end_date"], end_all[:n_base])


def _overwrite_prefix(parts: list[np.ndarray], values: np.ndarray) -> None:
    """Replace the first len(values) entries across the list of arrays with ``values``."""
    pos = 0
    for arr in parts:
        take = min(len(arr), len(values) - pos)
        if take <= 0:
            break
        arr[:take] = values[pos:pos + take]
        pos += take


def adverse_rate_of(tables: CityTables, section: np.ndarray, size_z: np.ndarray, g: np.ndarray,
                    h: np.ndarray) -> np.ndarray:
    """Summed monthly rate of adverse outcomes for latent g, h of shape (n, ...) of subjects on the register.

    The same rates ``sample_records`` draws the adverse records from (including the rule that no record
    exists where no department issues the kind for the section), so the truth built on it is calibrated.
    """
    is_h = section == SECTIONS.index("H")
    extra = (slice(None),) + (None,) * (g.ndim - 1)
    total = np.zeros(g.shape)
    for spec in ADVERSE_RATES:
        lam = rate_of(spec, g, h, is_h, size_z)
        if spec.kind != "arrears":
            lam *= tables.issuer_exists(spec.kind)[section][extra]
        total += lam
    q, r = inspection_rate_of(g, h, is_h)
    return total + q * r
