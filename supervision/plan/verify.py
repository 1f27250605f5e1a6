"""Anyone can verify a published plan: recompute every draw from the plan's own published inputs
(seed, policy, pools, ratios) and compare, check by check."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
from pydantic import BaseModel

from supervision.bundle import task_key
from supervision.draw import seed_commitment
from supervision.inspection_policy import policy_from_dict
from supervision.plan.create import InspectionPlan
from supervision.plan.pools import DrawCommitment, draw_task, pool_hash_of
from supervision.ratios import inspection_ratios, stratum_of


class VerificationCheck(BaseModel):
    name: str
    ok: bool
    detail: str = ""


class PlanVerification(BaseModel):
    """MATCH when every check passes; ``first_difference`` names the first failing check."""

    plan_id: str
    match: bool
    first_difference: str | None
    checks: list[VerificationCheck]

    @property
    def verdict(self) -> str:
        return "MATCH" if self.match else "MISMATCH"


def verify_plan(plan: InspectionPlan, published: DrawCommitment | None = None) -> PlanVerification:
    """Recompute every draw from the plan's published inputs and compare.

    Checks, in order: the published commitment (if given) equals the plan's; SHA-256(seed)
    equals the commitment; the policy hash; each pool hash; the ratios follow the policy; the
    drawn list equals the recomputed draw. Inspector teams are not re-derived here.
    A ``tiers-draw-v2`` plan is refused: ``supervision.verify_v2.audit_plan`` checks either kind.
    """
    if plan.draw_v2 is not None:
        raise ValueError(
            f"plan {plan.plan_id!r} was drawn with tiers-draw-v2: check it with supervision.verify_v2.audit_plan"
        )
    checks: list[VerificationCheck] = []

    def check(name: str, ok: bool, detail: str = "") -> None:
        checks.append(VerificationCheck(name=name, ok=ok, detail=detail))

    if published is not None:
        same = published.model_dump() == plan.commitment.model_dump()
        check(
            "published_commitment",
            same,
            "" if same else "the plan's commitment differs from the one published",
        )
    try:
        seed = bytes.fromhex(plan.draw_seed_hex)
        seed_ok = seed_commitment(seed) == plan.commitment.draw_seed_commitment
    except ValueError as exc:
        seed, seed_ok = b"", False
        check("seed", False, f"revealed seed is not 32 bytes of hex: {exc}")
    check(
        "seed_commitment", seed_ok, "" if seed_ok else "SHA-256 of the revealed seed ≠ draw_seed_commitment"
    )
    try:
        policy = policy_from_dict(plan.policy)
        policy_ok = policy.policy_hash() == plan.commitment.policy_hash
    except ValueError as exc:
        policy, policy_ok = None, False
        check("policy", False, str(exc))
    check(
        "policy_hash", policy_ok, "" if policy_ok else "hash of the embedded policy ≠ committed policy_hash"
    )

    for td in plan.tasks:
        key = task_key(td.department, td.item)
        pool = pd.DataFrame(td.pool, columns=["uscc", "grade", "lead"])
        pool["lead"] = pool["lead"].astype(bool)
        try:
            recomputed_hash = pool_hash_of(pool)
        except ValueError as exc:
            check(f"pool_hash {key}", False, str(exc))
            continue
        committed = plan.commitment.pool_hashes.get(key)
        check(
            f"pool_hash {key}",
            recomputed_hash == committed == td.pool_hash,
            "" if recomputed_hash == committed else "hash of the embedded pool ≠ committed pool hash",
        )
        if policy is not None:
            rules = policy.rules_for(td.department, td.item, key_item=td.key_item)
            counts = stratum_of(pool["grade"], pool["lead"]).value_counts().to_dict()
            expected = inspection_ratios(
                counts,
                rules=rules,
                policy=policy,
                department=td.department,
                item=td.item,
                as_of=td.ratios.as_of,
                model_version=td.ratios.model_version,
            ).ppm_by_stratum()
            ok = expected == td.ratios.ppm_by_stratum()
            check(
                f"ratios {key}",
                ok,
                "" if ok else f"ratios {td.ratios.ppm_by_stratum()} ≠ policy {expected} (ppm)",
            )
        if len(seed) != 32:
            continue
        redrawn = draw_task(
            pool,
            td.ratios.ppm_by_stratum(),
            seed=seed,
            department=td.department,
            item=td.item,
            public_salt=plan.commitment.public_salt,
        )
        recomputed = sorted(pool["uscc"].iloc[redrawn.rows])
        k = redrawn.k_per_stratum
        check(
            f"k_per_stratum {key}",
            k == td.k_per_stratum,
            "" if k == td.k_per_stratum else f"{td.k_per_stratum} ≠ {k}",
        )
        check(
            f"drawn {key}",
            recomputed == td.drawn,
            "" if recomputed == td.drawn else _first_list_difference(td.drawn, recomputed),
        )
    visit_items = sorted((v.uscc, i) for v in plan.visits for i in v.items)
    task_items = sorted((u, td.item) for td in plan.tasks for u in td.drawn)
    check(
        "visits_cover_draws",
        visit_items == task_items,
        "" if visit_items == task_items else _first_list_difference(task_items, visit_items),
    )
    failing = next((c for c in checks if not c.ok), None)
    return PlanVerification(
        plan_id=plan.plan_id,
        match=failing is None,
        first_difference=None if failing is None else f"{failing.name}: {failing.detail}",
        checks=checks,
    )


def _first_list_difference(published: Sequence, recomputed: Sequence) -> str:
    only_published = sorted(set(published) - set(recomputed))
    only_recomputed = sorted(set(recomputed) - set(published))
    parts = []
    if only_published:
        parts.append(f"{only_published[0]} is in the published list but not in the recomputed draw")
    if only_recomputed:
        parts.append(f"{only_recomputed[0]} is in the recomputed draw but not in the published list")
    return "; ".join(parts) or "same members, different order or duplicates"
