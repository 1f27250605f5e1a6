"""Small seeded synthetic cities for the scheduler tests (written under tmp_path)."""

from __future__ import annotations

import copy
import datetime as dt
import json
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

T0 = dt.datetime(2026, 11, 20, 8, 0, tzinfo=dt.UTC)  # commitment published
SALT_SOURCE = "福彩3D 第2026325期开奖号码"


def draw_v2_plan(
    task_file: Path,
    *,
    seed: bytes = bytes(range(32)),
    nonce_key: bytes = bytes(range(32, 64)),
    salt_value: str = "5 8 1",
):
    """(commitment, salt, plan) of a v2 draw of the task: committed at T0, salt known 12 h later,
    entered at 13 h, drawn at 14 h."""
    from supervision.plan import load_plan_inputs, load_task, resolve_policy
    from supervision.plan_v2 import accept_salt, commit_v2, create_plan_v2

    task = load_task(task_file).model_copy(update={"seed_hex": None})
    inputs = load_plan_inputs(task, task_file.parent)
    policy = resolve_policy(task, task_file.parent)
    commitment = commit_v2(
        task, inputs, policy, seed=seed, nonce_key=nonce_key, salt_source=SALT_SOURCE, committed_at=T0
    )
    salt = accept_salt(
        commitment,
        value=salt_value,
        source=SALT_SOURCE,
        known_at=T0 + dt.timedelta(hours=12),
        entered_at=T0 + dt.timedelta(hours=13),
        entered_by="复核员 李四",
    )
    plan = create_plan_v2(
        task,
        inputs,
        policy,
        seed=seed,
        nonce_key=nonce_key,
        commitment=commitment,
        salt=salt,
        drawn_at=T0 + dt.timedelta(hours=14),
    )
    return commitment, salt, plan


@pytest.fixture(scope="session")
def v2_plan(tmp_path_factory: pytest.TempPathFactory):
    """(commitment, salt, plan) of the default test city drawn with tiers-draw-v2 (read-only)."""
    return draw_v2_plan(write_city(tmp_path_factory.mktemp("v2city"), make_city()))


@pytest.fixture(scope="session")
def v2_timeline() -> tuple[dt.datetime, str]:
    """(time the test commitments are published, the salt source they name)."""
    return T0, SALT_SOURCE


@pytest.fixture(scope="session")
def v2_builder():
    """draw_v2_plan, for tests that draw their own v2 plans."""
    return draw_v2_plan


# ------------------------------------------------------------------ tampered v2 bundles
# (imports inside: collecting the other tests must not import the v2 modules)


def _task_members(plan, index: int = 0):
    """(drawn, undrawn) pool USCCs of one task, and each pool subject's stratum."""
    td = plan.tasks[index]
    stratum = {u: ("A_lead" if g == "A" and lead else g) for u, g, lead in td.pool}
    drawn = list(td.drawn)
    return drawn, [u for u in stratum if u not in set(drawn)], stratum


def _swap(plan):
    """A drawn subject of task 0 swapped for an undrawn one: (tampered bundle, out, in)."""
    from supervision.plan_v2 import publish_bundle

    drawn, undrawn, _ = _task_members(plan)
    out, newcomer = drawn[0], undrawn[0]
    b = json.loads(publish_bundle(plan).model_dump_json())
    b["tasks"][0]["drawn"] = sorted([newcomer, *drawn[1:]])
    return b, out, newcomer


def _shift(b: dict, path: list, change) -> dict:
    b = copy.deepcopy(b)
    node = b
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = change(node[path[-1]])
    return b


def _earlier(text: str, hours: float) -> str:
    from supervision.bundle import parse_utc

    return (parse_utc(text) - dt.timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def tampered_bundles(plan) -> dict[str, tuple[dict, str | None]]:
    """name → (tampered bundle, the public check that must fail without --commitment, or None
    when only subjects and auditors can see it)."""
    from supervision.plan_v2 import publish_bundle

    b = json.loads(publish_bundle(plan).model_dump_json())
    key = f"{plan.tasks[0].department}/{plan.tasks[0].item}"
    swapped, _, _ = _swap(plan)
    policy = json.loads(b["policy_json"])
    policy["defaults"]["grade_ratios"]["D"] = 1.0
    return {
        "seed changed": (
            _shift(b, ["seed"], lambda s: ("0" if s[0] != "0" else "1") + s[1:]),
            "seed_commitment",
        ),
        "policy bytes changed": (_shift(b, ["policy_json"], lambda _: json.dumps(policy)), "policy_hash"),
        "count changed": (
            _shift(b, ["commitment", "tasks", 0, "strata", 3, "draw"], lambda k: k + 1),
            f"draw_counts {key}",
        ),
        "stratum size changed": (
            _shift(b, ["commitment", "tasks", 0, "strata", 2, "pool_size"], lambda n: n + 1),
            f"pool_size {key}",
        ),
        "ratio changed": (
            _shift(b, ["commitment", "tasks", 0, "strata", 2, "ratio_ppm"], lambda p: p + 1),
            f"ratios {key}",
        ),
        "salt dated before the commitment": (
            _shift(b, ["salt", "known_at"], lambda _: _earlier(b["commitment"]["committed_at"], 1)),
            "salt_time",
        ),
        "draw before the salt was entered": (
            _shift(b, ["drawn_at"], lambda _: _earlier(b["salt"]["entered_at"], 0.5)),
            "salt_time",
        ),
        "salt from another source": (_shift(b, ["salt", "source"], lambda _: "上证指数收盘"), "salt_source"),
        "drawn subject dropped": (_shift(b, ["tasks", 0, "drawn"], lambda d: d[1:]), f"drawn_count {key}"),
        "drawn list unsorted": (_shift(b, ["tasks", 0, "drawn"], lambda d: d[::-1]), f"drawn_list {key}"),
        "invalid USCC drawn": (
            _shift(
                b,
                ["tasks", 0, "drawn"],
                lambda d: sorted([d[0][:17] + ("0" if d[0][17] != "0" else "1"), *d[1:]]),
            ),
            f"drawn_list {key}",
        ),
        "task dropped": (_shift(b, ["tasks"], lambda t: t[1:]), "tasks"),
        "seal changed": (_shift(b, ["tasks", 0, "seals", "C"], lambda s: "0" * 64), None),
        "salt value changed": (_shift(b, ["salt", "value"], lambda _: "5 8 2"), None),
        "pool root changed": (_shift(b, ["commitment", "tasks", 0, "pool_root"], lambda _: "0" * 64), None),
        "drawn subject swapped": (swapped, None),
    }


@pytest.fixture(scope="session")
def bundle_tampers():
    """(tampered_bundles(plan), swap(plan), task_members(plan)) for the v2 tampering tests."""
    return tampered_bundles, _swap, _task_members
