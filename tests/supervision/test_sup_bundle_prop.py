"""Property (issue 18): for random pools and policies, the selection recomputed from the public
bundle plus each subject's opening equals the full plan's selection, and the bundle names no
undrawn subject and no subject's grade or stratum.

The recomputation uses the standard-library verifier's functions (verifier/tiers_draw_verify.py),
not the project's, so it also checks that the specification the verifier follows and the code
agree."""

from __future__ import annotations

import datetime as dt
import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sup_v2_fixtures import draw_v2, small_inputs, stdlib_verifier, usccs

from supervision.inspection_policy import load_policy, policy_from_dict
from supervision.plan import PlanCreate, TaskItem
from supervision.plan_v2 import publish_bundle, subject_openings
from supervision.verify_v2 import verify_bundle, verify_opening

stdlib = stdlib_verifier()
ITEMS = [("market", "MKT-01"), ("fire", "FIRE-01")]


@st.composite
def policies(draw):
    floor = draw(st.sampled_from([0.001, 0.01, 0.02, 0.05]))
    quiet_a = draw(st.booleans())
    steps = sorted(draw(st.lists(st.floats(floor, 1.0), min_size=4, max_size=4)))
    ratios = dict(zip("ABCD", steps, strict=True))
    if quiet_a:
        ratios["A"] = floor
    data = load_policy("default").model_dump(mode="json")
    data["defaults"].update(
        floor_ratio=floor,
        general_cap=draw(st.sampled_from([0.02, 0.1, 0.3, 1.0])),
        a_with_lead_ratio=draw(st.floats(floor, 1.0)),
        a_no_visit_without_lead=quiet_a,
        grade_ratios=ratios,
    )
    data["departments"], data["items"] = {}, {}
    return policy_from_dict(data)


@st.composite
def cities(draw):
    n = draw(st.integers(1, 60))
    codes = usccs(n)
    grades = draw(st.lists(st.sampled_from("AAAABBCD"), min_size=n, max_size=n))
    leads = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    key_items = draw(st.lists(st.booleans(), min_size=2, max_size=2))
    tasks = draw(st.sampled_from([[0], [1], [0, 1]]))
    items = [(dept, item, key) for (dept, item), key in zip(ITEMS, key_items, strict=True)]
    inputs = small_inputs(codes, grades, [u for u, lead in zip(codes, leads, strict=True) if lead], items)
    request = PlanCreate(
        plan_id="P-prop",
        period_start=dt.date(2026, 12, 1),
        period_end=dt.date(2026, 12, 31),
        as_of=dt.date(2026, 9, 30),
        tasks=[TaskItem(department=ITEMS[i][0], item=ITEMS[i][1]) for i in tasks],
    )
    return request, inputs


@given(city=cities(), policy=policies(), secrets=st.binary(min_size=64, max_size=64))
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_bundle_plus_openings_give_the_plans_selection_and_no_grade(city, policy, secrets) -> None:
    request, inputs = city
    commitment, _, plan = draw_v2(
        request,
        inputs,
        policy,
        seed=secrets[:32],
        nonce_key=secrets[32:],
        salt_value=secrets.hex()[:12],
        salt_pattern=r"[0-9a-f]{12}",
    )
    bundle = publish_bundle(plan)
    assert verify_bundle(bundle, commitment).match
    data = json.loads(bundle.model_dump_json())
    independent = stdlib.Checks()
    stdlib.public_checks(independent, stdlib.check_bundle(data), None)
    assert independent.first_failure() is None, independent.first_failure()
    pool = {u for td in plan.tasks for u, *_ in td.pool}
    openings = subject_openings(plan, pool)
    assert set(openings) == pool
    recomputed: dict[str, set[str]] = {f"{td.department}/{td.item}": set() for td in plan.tasks}
    seed = bytes.fromhex(data["seed"])
    tasks = {f"{t['department']}/{t['item']}": t for t in data["commitment"]["tasks"]}
    for uscc, opening in openings.items():
        assert verify_opening(bundle, opening, uscc, commitment).match
        for entry in json.loads(opening.model_dump_json())["tasks"]:
            key = f"{entry['department']}/{entry['item']}"
            code = stdlib.STRATA.index(entry["stratum"])
            digest = stdlib.task_digest(plan.plan_id, entry["department"], entry["item"])
            leaf = stdlib.subject_leaf(digest, uscc, code, bytes.fromhex(entry["nonce"]))
            k = tasks[key]["strata"][code]["draw"]
            key_u = stdlib.subject_key(seed, data["salt"]["value"], leaf)
            if k and entry["threshold"] and key_u <= bytes.fromhex(entry["threshold"]):
                recomputed[key].add(uscc)
    assert recomputed == {f"{td.department}/{td.item}": set(td.drawn) for td in plan.tasks}
    # The bytes: no undrawn subject anywhere; a USCC only inside a task's drawn list, which holds
    # nothing but USCCs; outside the drawn lists, no USCC at all.
    text = bundle.model_dump_json()
    drawn = {u for td in plan.tasks for u in td.drawn}
    assert not [u for u in pool - drawn if u in text]
    for task in data["tasks"]:
        assert set(task) == {"department", "item", "drawn", "seals"} and set(task["drawn"]) <= drawn
        task["drawn"] = []
    stripped = json.dumps(data, ensure_ascii=False)
    assert not [u for u in pool if u in stripped]
    # per stratum only counts: the same bundle shape whatever the grades of the drawn
    for task in data["commitment"]["tasks"]:
        assert all(set(s) == {"stratum", "pool_size", "ratio_ppm", "draw"} for s in task["strata"])
