"""Double-random (双随机) inspection scheduling: policy tables, the ratio feed, the verifiable
stratified draw, inspector assignment with recusal, joint visits, and results fed back as records.

Imports nothing else of ours: grades arrive as plain tables (uscc, grade, as_of, model_version).
"""

from supervision.draw import DRAW_ALGORITHM, STRATA, new_draw_seed, seed_commitment
from supervision.inspection_policy import InspectionPolicy, ItemRules, PolicyError, load_policy
from supervision.plan import (
    DrawCommitment,
    InspectionPlan,
    PlanCreate,
    PlanInputError,
    PlanInputs,
    PlanTask,
    PlanVerification,
    create_plan,
    load_plan_inputs,
    load_task,
    publish_commitment,
    verify_plan,
)
from supervision.ratios import HttpRatioFeed, InProcessRatioFeed, InspectionRatiosOut, RatioFeed
from supervision.results import InspectionResult, publication_deadline, results_to_records

__all__ = [
    "DRAW_ALGORITHM",
    "STRATA",
    "DrawCommitment",
    "HttpRatioFeed",
    "InProcessRatioFeed",
    "InspectionPlan",
    "InspectionPolicy",
    "InspectionRatiosOut",
    "InspectionResult",
    "ItemRules",
    "PlanCreate",
    "PlanInputError",
    "PlanInputs",
    "PlanTask",
    "PlanVerification",
    "PolicyError",
    "RatioFeed",
    "create_plan",
    "load_plan_inputs",
    "load_policy",
    "load_task",
    "new_draw_seed",
    "publication_deadline",
    "publish_commitment",
    "results_to_records",
    "seed_commitment",
    "verify_plan",
]
