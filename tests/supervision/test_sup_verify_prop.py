"""Property: any single-subject change to any drawn list of a verified plan is detected."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from supervision.plan import create_plan, load_plan_inputs, load_task, resolve_policy, verify_plan


@pytest.fixture(scope="module")
def plan(tmp_path_factory: pytest.TempPathFactory, city_builder):
    make_city, write_city = city_builder
    task_file = write_city(tmp_path_factory.mktemp("city"), make_city(n_subjects=300, seed=11))
    task = load_task(task_file)
    return create_plan(
        task, load_plan_inputs(task, task_file.parent), resolve_policy(task, task_file.parent), bytes(32)
    )


@given(data=st.data())
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_any_single_swap_is_a_mismatch(plan, data) -> None:
    task_index = data.draw(st.integers(0, len(plan.tasks) - 1))
    td = plan.tasks[task_index]
    outsiders = [u for u, *_ in td.pool if u not in set(td.drawn)]
    if not td.drawn or not outsiders:
        return
    out_pos = data.draw(st.integers(0, len(td.drawn) - 1))
    newcomer = data.draw(st.sampled_from(outsiders))
    tampered = plan.model_copy(deep=True)
    drawn = list(td.drawn)
    drawn[out_pos] = newcomer
    tampered.tasks[task_index].drawn = sorted(drawn)
    result = verify_plan(tampered)
    assert not result.match
    assert newcomer in result.first_difference
