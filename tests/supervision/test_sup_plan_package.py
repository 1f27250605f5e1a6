"""The plan package's seams: prepared pools travel as named dataclasses, not tuples, and a plan
drawn from pools prepared once equals one drawn from scratch."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd

from supervision.plan import (
    PreparedPools,
    TaskPool,
    create_plan,
    load_plan_inputs,
    load_task,
    prepare_pools,
    publish_commitment,
    resolve_policy,
)

SEED = bytes(range(32))


def test_prepared_pools_are_named_and_reused(task_file: Path) -> None:
    task = load_task(task_file)
    inputs = load_plan_inputs(task, task_file.parent)
    policy = resolve_policy(task, task_file.parent)
    prepared = prepare_pools(task, inputs, policy)
    assert isinstance(prepared, PreparedPools) and dataclasses.is_dataclass(prepared)
    assert [p.task for p in prepared.pools] == list(task.tasks)
    for p in prepared.pools:
        assert isinstance(p, TaskPool)
        assert list(p.pool["uscc"]) == sorted(p.pool["uscc"])  # canonical order
        assert isinstance(p.pool, pd.DataFrame) and p.rules.key_item in (True, False)
        assert not set(p.ungraded) - set(p.pool["uscc"])
    assert prepared.model_version == "scorecard-v1"
    fresh = create_plan(task, inputs, policy, SEED)
    reused = create_plan(task, inputs, policy, SEED, prepared=prepared)
    assert reused.model_dump() == fresh.model_dump()
    assert publish_commitment(task, inputs, policy, SEED, prepared=prepared) == fresh.commitment
