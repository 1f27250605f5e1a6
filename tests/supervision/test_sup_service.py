"""The service API the HTTP routes call: ratios and plan summary; a plan verifies after a JSON round trip."""

from __future__ import annotations

from pathlib import Path

from supervision.plan import (
    DrawCommitment,
    InspectionPlan,
    PlanCreate,
    create_plan,
    load_plan_inputs,
    load_task,
    resolve_policy,
    verify_plan,
)
from supervision.service import inspection_ratios_for, plan_out


def test_service_ratios_plan_and_verify(task_file: Path) -> None:
    task = load_task(task_file)
    inputs = load_plan_inputs(task, task_file.parent)
    policy = resolve_policy(task, task_file.parent)
    request = PlanCreate.model_validate(task.model_dump(include=set(PlanCreate.model_fields)))
    plan = create_plan(request, inputs, policy, bytes(range(32)))
    for td in plan.tasks:
        served = inspection_ratios_for(
            inputs,
            policy,
            department=td.department,
            item=td.item,
            as_of=task.as_of,
            period_start=task.period_start,
        )
        assert served == td.ratios  # the feed says exactly what the draw used
    out = plan_out(plan)
    assert out.visits + out.visits_saved == out.draws_total
    assert out.unstaffed_visits == sum(bool(v.unstaffed) for v in plan.visits)
    published = InspectionPlan.model_validate_json(plan.model_dump_json())
    assert verify_plan(published, DrawCommitment.model_validate_json(plan.commitment.model_dump_json())).match
    tampered = InspectionPlan.model_validate(plan.model_dump())
    tampered.tasks[-1].drawn = tampered.tasks[-1].drawn[1:]
    assert not verify_plan(tampered).match
