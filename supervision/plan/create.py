"""``create_plan``: draw every task's pool, staff the drawn subjects, merge joint visits, and put
it all in one verifiable ``InspectionPlan``."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from pydantic import BaseModel, Field, model_serializer

from supervision.bundle import SealedDraw, task_key
from supervision.draw import seed_commitment
from supervision.inspection_policy import InspectionPolicy
from supervision.plan.pools import (
    DrawCommitment,
    PoolDraw,
    PreparedPools,
    TaskDraw,
    TaskPool,
    draw_task,
    pool_hash_of,
    prepare_pools,
    ratio_feed_of,
)
from supervision.plan.staffing import Staffing
from supervision.plan.task import PlanCreate, PlanInputs
from supervision.plan.visits import GradeSummary, Visit, grade_summary, merge_joint_visits
from supervision.ratios import RatioFeed


class PlanHeader(BaseModel):
    """What every form of a plan starts with: its id, period, grades and published commitment."""

    plan_id: str
    period_start: dt.date
    period_end: dt.date
    grades_as_of: dt.date
    model_version: str
    commitment: DrawCommitment


class InspectionPlan(PlanHeader):
    """A drawn plan with its commitment, revealed seed and everything needed to verify it."""

    draw_seed_hex: str = Field(description="revealed after the draw")
    policy: dict
    inspectors_per_subject: dict[str, int]
    tasks: list[TaskDraw]
    visits: list[Visit]
    draws_total: int = Field(description="subject draws summed over tasks")
    visits_saved: int = Field(description="draws_total − visits: visits spared by joint inspection")
    joint_visits: int = Field(description="visits covering more than one department")
    summary: list[GradeSummary]
    # tiers-draw-v2 (supervision/plan_v2.py): the commitment, salt, secret nonce key and seals.
    draw_v2: SealedDraw | None = Field(default=None, description="tiers-draw-v2 data; None for v1 plans")

    @model_serializer(mode="wrap")
    def _v1_plans_unchanged(self, handler):
        """A v1 plan serialises exactly as before draw_v2 existed (no ``draw_v2: null``)."""
        data = handler(self)
        if self.draw_v2 is None and isinstance(data, dict):
            data.pop("draw_v2", None)
        return data


# How one task's subjects are drawn: (the task's prepared pool, ppm per stratum) → drawn rows and k
# per stratum. Default: the v1 key stream (draw_task); tiers-draw-v2 passes its sealed draw.
SubjectDraw = Callable[[TaskPool, dict[str, int]], PoolDraw]


def create_plan(
    task: PlanCreate,
    inputs: PlanInputs,
    policy: InspectionPolicy,
    seed: bytes,
    *,
    feed: RatioFeed | None = None,
    progress: Callable[[int, int], None] | None = None,
    prepared: PreparedPools | None = None,
    subject_draw: SubjectDraw | None = None,
) -> InspectionPlan:
    """Draw subjects per task, assign inspectors, merge joint visits; reproducible from the inputs.

    ``feed`` gives the ratios (default: computed in-process from the same pools); ``progress``,
    if given, is called with (step, total) after each task; ``prepared`` reuses the pools of
    :func:`prepare_pools` on the same inputs (e.g. those the commitment was published from);
    ``subject_draw`` replaces the v1 subject draw (``plan_v2.create_plan_v2`` passes its own).
    """
    prepared = prepared if prepared is not None else prepare_pools(task, inputs, policy)
    if feed is None:
        feed = ratio_feed_of(prepared, policy, task.as_of)
    staffing = Staffing.for_plan(inputs, period_start=task.period_start, seed=seed, public_salt=task.public_salt)
    task_draws: list[TaskDraw] = []
    subject_info: dict[str, dict] = {}
    per_subject: dict[str, int] = {}
    for step, prepared_pool in enumerate(prepared.pools, start=1):
        t, pool, rules = prepared_pool.task, prepared_pool.pool, prepared_pool.rules
        ratios = feed.inspection_ratios(department=t.department, item=t.item, as_of=task.as_of)
        if subject_draw is not None:
            drawn_rows = subject_draw(prepared_pool, ratios.ppm_by_stratum())
        else:
            drawn_rows = draw_task(
                pool,
                ratios.ppm_by_stratum(),
                seed=seed,
                department=t.department,
                item=t.item,
                public_salt=task.public_salt,
            )
        drawn = pool.iloc[drawn_rows.rows]
        per_subject[t.key] = rules.inspectors_per_subject
        staffing.staff(t, drawn, rules)
        for record in drawn.itertuples(index=False):
            subject_info.setdefault(record.uscc, record._asdict())
        task_draws.append(
            TaskDraw(
                department=t.department,
                item=t.item,
                key_item=rules.key_item,
                pool_hash=pool_hash_of(pool),
                pool=list(zip(pool["uscc"], pool["grade"], pool["lead"].astype(int), strict=True)),
                ungraded=prepared_pool.ungraded,
                excluded=prepared_pool.excluded,
                ratios=ratios,
                k_per_stratum=drawn_rows.k_per_stratum,
                drawn=sorted(drawn["uscc"]),
            )
        )
        if progress is not None:
            progress(step, len(prepared.pools))

    visits = merge_joint_visits(task_draws, subject_info, staffing.teams, staffing.unstaffed)
    draws_total = sum(len(td.drawn) for td in task_draws)
    return InspectionPlan(
        plan_id=task.plan_id,
        period_start=task.period_start,
        period_end=task.period_end,
        grades_as_of=task.as_of,
        model_version=prepared.model_version,
        commitment=DrawCommitment(
            plan_id=task.plan_id,
            draw_seed_commitment=seed_commitment(seed),
            policy_hash=policy.policy_hash(),
            pool_hashes={task_key(td.department, td.item): td.pool_hash for td in task_draws},
            public_salt=task.public_salt,
        ),
        draw_seed_hex=seed.hex(),
        policy=policy.model_dump(mode="json"),
        inspectors_per_subject=per_subject,
        tasks=task_draws,
        visits=visits,
        draws_total=draws_total,
        visits_saved=draws_total - len(visits),
        joint_visits=sum(len(v.departments) > 1 for v in visits),
        summary=grade_summary(task_draws),
    )
