"""Inspection plans: build the task pools, commit, draw, assign inspectors, merge joint visits, verify.

One module per step: ``task`` (the request and its tables), ``pools`` (eligible pools, the
commitment, the draw of one pool), ``staffing`` (inspector teams), ``visits`` (joint visits and
the per-grade summary), ``create`` (the plan), ``verify`` (anyone's check of a published plan).

The service API the CLI and HTTP routes call:

- ``load_task(path) -> PlanTask`` and ``load_plan_inputs(task, base_dir) -> PlanInputs``
- ``publish_commitment(task, inputs, policy, seed) -> DrawCommitment`` (before the draw)
- ``create_plan(task, inputs, policy, seed, feed=None) -> InspectionPlan``
- ``verify_plan(plan, published=None) -> PlanVerification``
"""

from supervision.plan.create import InspectionPlan, PlanHeader, SubjectDraw, create_plan
from supervision.plan.pools import (
    FREQUENCY_LIMIT,
    DrawCommitment,
    ExcludedSubject,
    PoolDraw,
    PreparedPools,
    TaskDraw,
    TaskPool,
    build_task_pool,
    draw_task,
    pool_hash_of,
    prepare_pools,
    publish_commitment,
    ratio_feed_of,
)
from supervision.plan.staffing import STRATUM_PRIORITY, Staffing
from supervision.plan.task import (
    PlanCreate,
    PlanInputError,
    PlanInputs,
    PlanTask,
    TaskItem,
    load_plan_inputs,
    load_task,
    resolve_policy,
)
from supervision.plan.verify import PlanVerification, VerificationCheck, verify_plan
from supervision.plan.visits import GRADE_VISIT_RANK, GradeSummary, Visit, grade_summary, merge_joint_visits

__all__ = [
    "FREQUENCY_LIMIT",
    "GRADE_VISIT_RANK",
    "STRATUM_PRIORITY",
    "DrawCommitment",
    "ExcludedSubject",
    "GradeSummary",
    "InspectionPlan",
    "PlanCreate",
    "PlanHeader",
    "PlanInputError",
    "PlanInputs",
    "PlanTask",
    "PlanVerification",
    "PoolDraw",
    "PreparedPools",
    "Staffing",
    "SubjectDraw",
    "TaskDraw",
    "TaskItem",
    "TaskPool",
    "VerificationCheck",
    "Visit",
    "build_task_pool",
    "create_plan",
    "draw_task",
    "grade_summary",
    "load_plan_inputs",
    "load_task",
    "merge_joint_visits",
    "pool_hash_of",
    "prepare_pools",
    "publish_commitment",
    "ratio_feed_of",
    "resolve_policy",
    "verify_plan",
]
