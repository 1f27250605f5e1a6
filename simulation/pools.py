"""The static tables of a city: departments, inspection items and the inspector pool (执法检查人员名录库)."""

from __future__ import annotations

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


def inspectors_table(cfg: SimulationConfig, rng: np.random.Generator) -> pa.Table:
    """Inspectors of every department that has items: at least two per district, more for bigger cities.

    Each is qualified for a random subset (≥ 1) of the department's items; capacity is inspections per
    plan period.
    """
    districts = cfg.city.districts
    weights = np.array([d.weight for d in districts], dtype=float)
    weights /= weights.sum()
    rows: dict[str, list] = {k: [] for k in ("department", "district_code", "qualified_items", "capacity")}
    for dept in cfg.city.departments:
        items = [i.item_code for i in cfg.city.items if i.department == dept.code]
        if not items:
            continue
        total = max(2 * len(districts), round(cfg.n_subjects / 400 * len(items) / 4))
        per_district = np.maximum(2, np.round(weights * total).astype(int))
        for d, count in zip(districts, per_district.tolist(), strict=True):
            for _ in range(count):
                mask = rng.random(len(items)) < 0.8
                if not mask.any():
                    mask[rng.integers(0, len(items))] = True
                rows["department"].append(dept.code)
                rows["district_code"].append(d.code)
                rows["qualified_items"].append(";".join(it for it, m in zip(items, mask, strict=True) if m))
                rows["capacity"].append(int(rng.integers(20, 61)))
    n = len(rows["department"])
    return pa.table({
        "inspector_id": [f"INS{i + 1:06d}" for i in range(n)],
        "name": person_names(rng, n),
        "department": rows["department"],
        "district_code": rows["district_code"],
        "qualified_items": rows["qualified_items"],
        "capacity": pa.array(rows["capacity"], type=pa.int64()),
    })
