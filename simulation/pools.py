"""The static tables of a city: departments, inspection items and the inspector pool (执法检查人员名录库)."""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa

from simulation.config import SimulationConfig
from simulation.names import person_names


def departments_table(cfg: SimulationConfig) -> pa.Table:
    """departments: code, name_zh, name_en."""
    depts = cfg.city.departments
    return pa.table({
        "code": [d.code for d in depts], "name_zh": [d.name_zh for d in depts], "name_en": [d.name_en for d in depts],
    })


def items_table(cfg: SimulationConfig) -> pa.Table:
    """items: item_code, department, name_zh, name_en, key_item, industries (`;`-separated, empty = all)."""
    items = cfg.city.items
    return pa.table({
        "item_code": [i.item_code for i in items],
        "department": [i.department for i in items],
        "name_zh": [i.name_zh for i in items],
        "name_en": [i.name_en for i in items],
        "key_item": pa.array([i.key_item for i in items], type=pa.bool_()),
        "industries": pa.array([";".join(i.industries) or None for i in items], type=pa.string()),
    })


# Inspector headcount follows the workload of the bundled default inspection policy
# (supervision/policies/default.toml; the simulator imports nothing of ours, so it is modelled
# here): on the usual grade mix (A 65 %, B 25 %, C 8 %, D 2 %, docs/domain.md §3) it draws about 8 %
# of an item's pool per plan period (A 1 %, B 5 %, C 60 %, D 100 %; general items are capped at
# 10 %), two inspectors per visit. The earlier rule (one inspector per 400 subjects per four
# items) staffed only 15–32 % of those draws in cities of 100 k subjects and more.
DRAW_SHARE_PER_ITEM = 0.08
INSPECTORS_PER_VISIT = 2
CAPACITY_LOW, CAPACITY_HIGH = 20, 60  # inspections per plan period, uniform (mean 40)
# Spare capacity for recusal, partial qualification (each inspector holds ~80 % of the items)
# and uneven districts. Kept modest: real bureaus are not overstaffed, and at 1.1 the committed
# 2,000-subject sample keeps its 2-per-district minimum (it is already staffable).
STAFFING_HEADROOM = 1.1


def industry_shares() -> dict[str, float]:
    """Expected share of subjects per industry section, from the subject generator's own mix."""
    from simulation.engine import _ENTERPRISE_INDUSTRY, _FORM_INDUSTRY, _FORM_SHARE, SECTIONS

    enterprise = np.array([_ENTERPRISE_INDUSTRY.get(s, 0) for s in SECTIONS], dtype=float)
    total = sum(_FORM_SHARE.values())
    shares = np.zeros(len(SECTIONS))
    for form, weight in _FORM_SHARE.items():
        row = (np.array([_FORM_INDUSTRY[form].get(s, 0) for s in SECTIONS], dtype=float)
               if form in _FORM_INDUSTRY else enterprise)
        shares += weight / total * row / row.sum()
    return dict(zip(SECTIONS, shares.tolist(), strict=True))


def expected_visits(cfg: SimulationConfig, department: str, shares: dict[str, float] | None = None) -> float:
    """Inspector-visits per plan period the department's items need under the default policy."""
    shares = industry_shares() if shares is None else shares
    pool = sum(sum(shares.get(s, 0.0) for s in i.industries) if i.industries else 1.0
               for i in cfg.city.items if i.department == department)
    return DRAW_SHARE_PER_ITEM * INSPECTORS_PER_VISIT * cfg.n_subjects * pool


def inspectors_table(cfg: SimulationConfig, rng: np.random.Generator) -> pa.Table:
    """Inspectors of every department that has items: at least two per district, and enough
    capacity for the draws the default policy makes on the department's items (see above).

    Each is qualified for a random subset (≥ 1) of the department's items; capacity is inspections per
    plan period.
    """
    districts = cfg.city.districts
    weights = np.array([d.weight for d in districts], dtype=float)
    weights /= weights.sum()
    shares = industry_shares()
    mean_capacity = (CAPACITY_LOW + CAPACITY_HIGH) / 2
    rows: dict[str, list] = {k: [] for k in ("department", "district_code", "qualified_items", "capacity")}
    for dept in cfg.city.departments:
        items = [i.item_code for i in cfg.city.items if i.department == dept.code]
        if not items:
            continue
        needed = STAFFING_HEADROOM * expected_visits(cfg, dept.code, shares) / mean_capacity
        total = max(2 * len(districts), math.ceil(needed))
        per_district = np.maximum(2, np.round(weights * total).astype(int))
        for d, count in zip(districts, per_district.tolist(), strict=True):
            for _ in range(count):
                mask = rng.random(len(items)) < 0.8
                if not mask.any():
                    mask[rng.integers(0, len(items))] = True
                rows["department"].append(dept.code)
                rows["district_code"].append(d.code)
                rows["qualified_items"].append(";".join(it for it, m in zip(items, mask, strict=True) if m))
                rows["capacity"].append(int(rng.integers(CAPACITY_LOW, CAPACITY_HIGH + 1)))
    n = len(rows["department"])
    return pa.table({
        "inspector_id": [f"INS{i + 1:06d}" for i in range(n)],
        "name": person_names(rng, n),
        "department": rows["department"],
        "district_code": rows["district_code"],
        "qualified_items": rows["qualified_items"],
        "capacity": pa.array(rows["capacity"], type=pa.int64()),
    })
