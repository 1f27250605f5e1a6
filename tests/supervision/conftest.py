"""Small seeded synthetic cities for the scheduler tests (written under tmp_path)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from stdnum.cn import uscc as stdnum_uscc

ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
DISTRICTS = {"320102": "玄武区", "320104": "秦淮区", "320105": "建邺区", "320106": "鼓楼区"}


def make_usccs(n: int, rng: np.random.Generator) -> list[str]:
    """n distinct valid USCCs (mostly 91…, some A…/N…/Y… that stdnum alone rejects)."""
    out: set[str] = set()
    while len(out) < n:
        head = rng.choice(["91", "92", "93", "A1", "N1", "Y1"], p=[0.7, 0.15, 0.05, 0.04, 0.03, 0.03])
        body = "".join(rng.choice(list(ALPHABET), size=15))
        base = f"{head}{rng.choice(list(DISTRICTS))[:6]}{body}"[:17]
        out.add(base + stdnum_uscc.calc_check_digit(base))
    return sorted(out)


def make_city(n_subjects: int = 400, n_inspectors: int = 30, seed: int = 7) -> dict[str, pd.DataFrame]:
    """A tiny city: subjects, grades (as of 2026-09-30), items, inspectors, conflicts, leads, history."""
    rng = np.random.default_rng(seed)
    usccs = make_usccs(n_subjects, rng)
    districts = rng.choice(list(DISTRICTS), size=n_subjects)
    subjects = pd.DataFrame(
        {
            "uscc": usccs,
            "name": [f"测试企业{i:04d}有限公司" for i in range(n_subjects)],
            "industry": rng.choice(list("CFHI"), size=n_subjects),
            "district_code": districts,
            "district_name": [DISTRICTS[d] for d in districts],
            "status": np.where(rng.random(n_subjects) < 0.95, "active", "deregistered"),
        }
    )
    grades = pd.DataFrame(
        {
            "uscc": usccs,
            "grade": rng.choice(list("ABCD"), size=n_subjects, p=[0.6, 0.25, 0.1, 0.05]),
            "as_of": "2026-09-30",
            "model_version": "scorecard-v1",
        }
    )
    items = pd.DataFrame(
        {
            "item_code": ["MKT-01", "MKT-02", "FIRE-01"],
            "department": ["market", "market", "fire"],
            "name_zh": ["食品经营检查", "广告检查", "消防安全检查"],
            "name_en": ["food", "ads", "fire safety"],
            "key_item": ["false", "false", "true"],
            "industries": ["F;H", "", ""],
        }
    )
    depts = np.where(np.arange(n_inspectors) % 3 == 0, "fire", "market")
    inspectors = pd.DataFrame(
        {
            "inspector_id": [f"I{i:04d}" for i in range(n_inspectors)],
            "name": [f"检查员{i}" for i in range(n_inspectors)],
            "department": depts,
            "district_code": rng.choice(list(DISTRICTS), size=n_inspectors),
            "qualified_items": ["FIRE-01" if d == "fire" else "MKT-01;MKT-02" for d in depts],
            "capacity": rng.integers(10, 40, size=n_inspectors).astype(str),
        }
    )
    conflict_rows = rng.choice(n_subjects, size=n_subjects // 5, replace=False)
    conflicts = pd.DataFrame(
        {
            "inspector_id": [f"I{i:04d}" for i in rng.integers(0, n_inspectors, size=conflict_rows.size)],
            "uscc": [usccs[i] for i in conflict_rows],
            "reason": "relative",
        }
    )
    lead_rows = rng.choice(n_subjects, size=n_subjects // 20, replace=False)
    leads = pd.DataFrame(
        {"uscc": [usccs[i] for i in lead_rows], "lead_type": "complaint", "lead_date": "2026-10-15"}
    )
    hist_rows = rng.choice(n_subjects, size=n_subjects // 4)
    history = pd.DataFrame(
        {
            "uscc": [usccs[i] for i in hist_rows],
            "department": "market",
            "inspection_item": "MKT-01",
            "inspected_on": [
                str(dt.date(2026, 3, 1) + dt.timedelta(days=int(d)))
                for d in rng.integers(0, 200, hist_rows.size)
            ],
            "inspector_ids": [
                f"I{i:04d};I{j:04d}" for i, j in rng.integers(0, n_inspectors, (hist_rows.size, 2))
            ],
        }
    )
    return {
        "subjects": subjects,
        "grades": grades,
        "items": items,
        "inspectors": inspectors,
        "conflicts": conflicts,
        "leads": leads,
        "history": history,
    }


TASK_TOML = """
plan_id = "2026Q4-test"
period_start = 2026-12-01
period_end = 2026-12-31
as_of = 2026-09-30
policy = "default"
seed_hex = "{seed_hex}"
subjects = "subjects.csv"
grades = "grades.csv"
items = "items.csv"
inspectors = "inspectors.csv"
conflicts = "conflicts.csv"
leads = "leads.csv"
history = "history.csv"

[[tasks]]
department = "market"
item = "MKT-01"

[[tasks]]
department = "market"
item = "MKT-02"

[[tasks]]
department = "fire"
item = "FIRE-01"
"""


def write_city(directory: Path, city: dict[str, pd.DataFrame], seed_hex: str = "ab" * 32) -> Path:
    """Write the city tables as CSV and a task file; return the task file path."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, frame in city.items():
        frame.to_csv(directory / f"{name}.csv", index=False)
    task = directory / "task.toml"
    task.write_text(TASK_TOML.format(seed_hex=seed_hex), encoding="utf-8")
    return task


@pytest.fixture
def city() -> dict[str, pd.DataFrame]:
    return make_city()


@pytest.fixture
def task_file(tmp_path: Path, city: dict[str, pd.DataFrame]) -> Path:
    return write_city(tmp_path / "city", city)


@pytest.fixture(scope="session")
def city_builder():
    """(make_city, write_city) for tests that need their own city or a wider fixture scope."""
    return make_city, write_city


# ------------------------------------------------------------------ tiers-draw-v2 plans


@pytest.fixture(scope="session")
def v2_plan(tmp_path_factory: pytest.TempPathFactory):
    """(commitment, salt, plan) of the default test city drawn with tiers-draw-v2 (read-only)."""
    from sup_v2_fixtures import draw_v2_plan

    return draw_v2_plan(write_city(tmp_path_factory.mktemp("v2city"), make_city()))
