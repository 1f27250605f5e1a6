"""Thin service API for the HTTP routes (serving/) and the CLI: one call per endpoint.

- ``GET  /api/v1/inspection-ratios`` → :func:`inspection_ratios_for` → ``InspectionRatiosOut``
- ``POST /api/v1/plans``             → :func:`create_plan` (body ``PlanCreate``) → :func:`plan_out`

Routes load the tables (``PlanInputs``) and the policy from settings; nothing here reads
settings, files or the environment.
"""

from __future__ import annotations

import datetime as dt

from pydantic import Field

from supervision.inspection_policy import InspectionPolicy
from supervision.plan import (
    GradeSummary,
    InspectionPlan,
    PlanCreate,
    PlanHeader,
    PlanInputs,
    TaskItem,
    create_plan,
    prepare_pools,
    ratio_feed_of,
)
from supervision.ratios import InProcessRatioFeed, InspectionRatiosOut


def ratio_feed_for(request: PlanCreate, inputs: PlanInputs, policy: InspectionPolicy) -> InProcessRatioFeed:
    """The in-process ratio feed over exactly the pools ``create_plan`` would draw from."""
    return ratio_feed_of(prepare_pools(request, inputs, policy), policy, request.as_of)


def inspection_ratios_for(
    inputs: PlanInputs,
    policy: InspectionPolicy,
    *,
    department: str,
    item: str,
    as_of: dt.date,
    period_start: dt.date | None = None,
) -> InspectionRatiosOut:
    """Ratio table for one department and item with the grades of ``as_of`` (the GET endpoint).

    ``period_start`` (default: the day after ``as_of``) places the lead and frequency windows.
    """
    start = period_start or as_of + dt.timedelta(days=1)
    request = PlanCreate(
        plan_id="ratios",
        period_start=start,
        period_end=start,
        as_of=as_of,
        tasks=[TaskItem(department=department, item=item)],
    )
    return ratio_feed_for(request, inputs, policy).inspection_ratios(
        department=department, item=item, as_of=as_of
    )


class PlanOut(PlanHeader):
    """What a created plan looks like in an API response (the full plan is downloadable)."""

    draws_total: int = Field(ge=0)
    visits: int = Field(ge=0)
    visits_saved: int = Field(ge=0)
    joint_visits: int = Field(ge=0)
    unstaffed_visits: int = Field(ge=0)
    per_grade: list[GradeSummary]


def plan_out(plan: InspectionPlan) -> PlanOut:
    """Summary of a plan for responses and listings."""
    return PlanOut(
        **{name: getattr(plan, name) for name in PlanHeader.model_fields},
        draws_total=plan.draws_total,
        visits=len(plan.visits),
        visits_saved=plan.visits_saved,
        joint_visits=plan.joint_visits,
        unstaffed_visits=sum(bool(v.unstaffed) for v in plan.visits),
        per_grade=plan.summary,
    )


__all__ = [
    "PlanOut",
    "create_plan",
    "inspection_ratios_for",
    "plan_out",
    "ratio_feed_for",
]
