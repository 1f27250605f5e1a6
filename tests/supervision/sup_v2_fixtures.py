"""Helpers for the tiers-draw-v2 tests: small inputs, a fixed-time draw, tampered bundles, and the
standard-library verifier loaded as a module. Imported by name (``from sup_v2_fixtures import …``),
as the other test folders' ``*_fixtures.py``; also usable from a plain script (the worked
example's regeneration)."""

from __future__ import annotations

import copy
import datetime as dt
import importlib.util
import json
from pathlib import Path

import pandas as pd
from stdnum.cn import uscc as stdnum_uscc

from supervision.bundle import parse_utc
from supervision.inspection_policy import InspectionPolicy
from supervision.plan import PlanCreate, PlanInputs, load_plan_inputs, load_task, resolve_policy
from supervision.plan_v2 import accept_salt, commit_v2, create_plan_v2, publish_bundle

REPO = Path(__file__).resolve().parents[2]
T0 = dt.datetime(2026, 11, 20, 8, 0, tzinfo=dt.UTC)  # commitments published
SALT_SOURCE = "福彩3D 第2026325期开奖号码"
SALT_PATTERN = r"\d \d \d"  # three digits, one space between


def usccs(n: int) -> list[str]:
    """n valid USCCs, ascending: 91320102MA1 + a 6-digit number + the check character."""
    stems = [f"91320102MA1{i:06d}" for i in range(n)]
    return [s + stdnum_uscc.calc_check_digit(s) for s in stems]


def small_inputs(
    codes: list[str], grades: list[str], with_lead: list[str], items: list[tuple[str, str, bool]]
) -> PlanInputs:
    """Inputs of a small city: every subject active and in every item's industries; items as
    (department, item, key_item); three inspectors per department; a complaint lead for each of
    ``with_lead`` (dated within the lead window of a December 2026 plan)."""
    departments = sorted({d for d, _, _ in items})
    return PlanInputs(
        subjects=pd.DataFrame(
            {
                "uscc": codes,
                "name": [f"示例企业{i}" for i in range(len(codes))],
                "industry": "F",
                "district_code": "320102",
                "district_name": "玄武区",
                "status": "active",
            }
        ),
        grades=pd.DataFrame({"uscc": codes, "grade": grades, "as_of": "2026-09-30", "model_version": "m1"}),
        items=pd.DataFrame(
            {
                "item_code": [t for _, t, _ in items],
                "department": [d for d, _, _ in items],
                "name_zh": [f"检查{t}" for _, t, _ in items],
                "name_en": [t for _, t, _ in items],
                "key_item": [str(k).lower() for _, _, k in items],
                "industries": "",
            }
        ),
        inspectors=pd.DataFrame(
            {
                "inspector_id": [f"I{d}{i}" for d in departments for i in range(3)],
                "name": [f"检查员{d}{i}" for d in departments for i in range(3)],
                "department": [d for d in departments for _ in range(3)],
                "district_code": "320104",
                "qualified_items": [
                    ";".join(t for dd, t, _ in items if dd == d) for d in departments for _ in range(3)
                ],
                "capacity": "100",
            }
        ),
        leads=pd.DataFrame({"uscc": with_lead, "lead_type": "complaint", "lead_date": "2026-10-15"}),
    )


def draw_v2(
    request: PlanCreate,
    inputs: PlanInputs,
    policy: InspectionPolicy,
    *,
    seed: bytes = bytes(range(32)),
    nonce_key: bytes = bytes(range(32, 64)),
    salt_value: str = "5 8 1",
    salt_pattern: str = SALT_PATTERN,
):
    """(commitment, salt, plan): committed at T0, salt known 13 h 15 later, entered at 13 h 30,
    drawn at 14 h."""
    commitment = commit_v2(
        request,
        inputs,
        policy,
        seed=seed,
        nonce_key=nonce_key,
        salt_source=SALT_SOURCE,
        salt_pattern=salt_pattern,
        committed_at=T0,
    )
    salt = accept_salt(
        commitment,
        value=salt_value,
        source=SALT_SOURCE,
        known_at=T0 + dt.timedelta(hours=13, minutes=15),
        entered_at=T0 + dt.timedelta(hours=13, minutes=30),
        entered_by="复核员 李四",
    )
    plan = create_plan_v2(
        request,
        inputs,
        policy,
        seed=seed,
        nonce_key=nonce_key,
        commitment=commitment,
        salt=salt,
        drawn_at=T0 + dt.timedelta(hours=14),
    )
    return commitment, salt, plan


def draw_v2_plan(task_file: Path, **secrets):
    """:func:`draw_v2` of a task file (its fixed seed_hex is dropped: v2 draws its own secrets)."""
    task = load_task(task_file).model_copy(update={"seed_hex": None})
    return draw_v2(
        task, load_plan_inputs(task, task_file.parent), resolve_policy(task, task_file.parent), **secrets
    )


def stdlib_verifier():
    """verifier/tiers_draw_verify.py loaded as a module (it is a script, not a package)."""
    spec = importlib.util.spec_from_file_location(
        "tiers_draw_verify", REPO / "verifier" / "tiers_draw_verify.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --------------------------------------------------------------------------- tampered bundles


def task_members(plan, index: int = 0):
    """(drawn, undrawn) pool USCCs of one task, and each pool subject's stratum."""
    td = plan.tasks[index]
    stratum = {u: ("A_lead" if g == "A" and lead else g) for u, g, lead in td.pool}
    drawn = list(td.drawn)
    return drawn, [u for u in stratum if u not in set(drawn)], stratum


def swap(plan):
    """A drawn subject of task 0 swapped for an undrawn one: (tampered bundle, out, in)."""
    drawn, undrawn, _ = task_members(plan)
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
    return (parse_utc(text) - dt.timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def tampered_bundles(plan) -> dict[str, tuple[dict, str | None]]:
    """name → (tampered bundle, the public check that must fail without --commitment, or None
    when only subjects and auditors can see it)."""
    b = json.loads(publish_bundle(plan).model_dump_json())
    key = f"{plan.tasks[0].department}/{plan.tasks[0].item}"
    swapped, _, _ = swap(plan)
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
