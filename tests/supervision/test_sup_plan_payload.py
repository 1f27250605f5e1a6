"""The stored form of a plan (``serving.services.plans.plan_json``) is its JSON dump, key for key and
in order, though dumped a piece at a time (issue 22: one dump of a city's pool held the GIL for a
minute and the server's supervisor killed the worker)."""

from __future__ import annotations

import json
from pathlib import Path

from serving.services.plans import plan_json, plan_summary
from supervision.plan import create_plan, load_plan_inputs, load_task, resolve_policy
from supervision.service import plan_out


def test_a_v1_plans_stored_form_is_its_json_dump(task_file: Path) -> None:
    task = load_task(task_file)
    inputs = load_plan_inputs(task, task_file.parent)
    plan = create_plan(task, inputs, resolve_policy(task, task_file.parent), bytes(range(32)))
    assert plan.tasks and plan.visits and any(t.pool for t in plan.tasks)
    assert json.dumps(plan_json(plan)) == json.dumps(plan.model_dump(mode="json"))
    assert plan_summary(plan_json(plan)) == plan_out(plan)  # read without validating the pools


def test_a_v2_plans_stored_form_is_its_json_dump(v2_plan) -> None:
    _commitment, _salt, plan = v2_plan
    assert plan.draw_v2 is not None
    assert json.dumps(plan_json(plan)) == json.dumps(plan.model_dump(mode="json"))
    assert plan_summary(plan_json(plan)) == plan_out(plan)  # read without validating the pools
