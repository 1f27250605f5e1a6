"""Checks of ``tiers-draw-v2`` documents (docs/draw-algorithm.md §18): the same named checks, in
the same order, as the standard-library verifier ``verifier/tiers_draw_verify.py``.

- :func:`verify_bundle`      — anyone, with the public bundle (and the commitment seen earlier);
- :func:`verify_opening`     — a subject, with the bundle and its private opening;
- :func:`verify_sealed_plan` — an auditor, with the full plan (grades and the nonce key);
  :func:`audit_plan` checks a full plan of either version.

Each returns a :class:`PlanVerification`: MATCH when every check passes, otherwise the first
failing check's name and what is wrong.
"""

from __future__ import annotations

import bisect
import datetime as dt
import itertools
import json

import numpy as np

from supervision.bundle import (
    DrawCommitmentV2,
    PublicBundle,
    PublicSalt,
    SubjectOpening,
    TaskCommitment,
    task_key,
)
from supervision.draw import STRATA, STRATUM_CODE, DrawInputError, k_for_stratum, seed_commitment
from supervision.draw_v2 import (
    DRAW_ALGORITHM_V2,
    drawn_digest,
    drawn_leaf,
    leaf_data,
    salt_digest,
    seal,
    sealed_selection,
    selection_keys,
    stratum_offsets,
    task_digest,
)
from supervision.inspection_policy import InspectionPolicy, PolicyError, strict_policy
from supervision.merkle import leaf_hash, verify_inclusion
from supervision.plan import DrawCommitment, InspectionPlan, PlanVerification, VerificationCheck, verify_plan
from supervision.plan_v2 import (
    policy_hash_v2,
    pool_frame,
    publish_bundle,
    salt_problems,
    task_pool_leaves,
)
from supervision.ratios import inspection_ratios
from uscc import valid_uscc_mask


class _Checks:
    """Named checks in the order they ran."""

    def __init__(self) -> None:
        self.done: list[VerificationCheck] = []

    def __call__(self, name: str, ok: bool, detail: str = "") -> bool:
        self.done.append(VerificationCheck(name=name, ok=bool(ok), detail="" if ok else detail))
        return bool(ok)

    def result(self, plan_id: str) -> PlanVerification:
        failing = next((c for c in self.done if not c.ok), None)
        return PlanVerification(
            plan_id=plan_id,
            match=failing is None,
            first_difference=None if failing is None else f"{failing.name}: {failing.detail}",
            checks=self.done,
        )


# --------------------------------------------------------------------------- shared checks


def _check_seed(check: _Checks, seed_hex: str, commitment: DrawCommitmentV2) -> None:
    try:
        ok = seed_commitment(bytes.fromhex(seed_hex)) == commitment.seed_commitment
    except (ValueError, DrawInputError):
        ok = False
    check("seed_commitment", ok, "SHA-256 of the revealed seed ≠ the committed seed_commitment")


def _check_policy(check: _Checks, policy_json: str, commitment: DrawCommitmentV2) -> InspectionPolicy | None:
    check(
        "policy_hash",
        policy_hash_v2(policy_json) == commitment.policy_hash,
        "SHA-256 of the embedded policy bytes ≠ the committed policy_hash",
    )
    try:
        policy = strict_policy(json.loads(policy_json))
    except (ValueError, PolicyError) as exc:
        check("policy", False, f"the embedded policy is not a valid policy: {exc}")
        return None
    check("policy", True)
    return policy


def _check_salt(check: _Checks, commitment: DrawCommitmentV2, salt: PublicSalt, drawn_at: str) -> None:
    problems = salt_problems(commitment, salt, drawn_at)
    for name in ("salt_source", "salt_format"):
        check(name, name not in problems, problems.pop(name, ""))
    # what is left is the timeline's one broken rule, if any
    check("salt_time", not problems, next(iter(problems.values()), ""))


def _check_counts(
    check: _Checks, task: TaskCommitment, policy: InspectionPolicy | None, commitment: DrawCommitmentV2
) -> None:
    key = task.key
    sizes = [s.pool_size for s in task.strata]
    check(
        f"pool_size {key}",
        sum(sizes) == task.pool_size,
        f"strata sizes {sizes} do not add up to {task.pool_size}",
    )
    committed_ppm = {s.stratum: s.ratio_ppm for s in task.strata}
    if policy is not None:
        expected = inspection_ratios(
            dict(zip(STRATA, sizes, strict=True)),
            # the committed key_item is final: an override's key_item cannot change it (§17)
            rules=policy.rules_for(task.department, task.item).model_copy(update={"key_item": task.key_item}),
            policy=policy,
            department=task.department,
            item=task.item,
            as_of=dt.date.fromisoformat(commitment.grades_as_of),
            model_version="",
        ).ppm_by_stratum()
        check(
            f"ratios {key}",
            expected == committed_ppm,
            f"ratios {committed_ppm} ≠ the policy's {expected} (ppm)",
        )
    wrong = [
        f"{s.stratum}: {s.draw} ≠ {k_for_stratum(s.pool_size, s.ratio_ppm)}"
        for s in task.strata
        if s.draw != k_for_stratum(s.pool_size, s.ratio_ppm)
    ]
    check(f"draw_counts {key}", not wrong, f"number to draw ≠ ceil(pool size × ratio): {'; '.join(wrong)}")


def _check_published(
    check: _Checks, commitment: DrawCommitmentV2, published: DrawCommitmentV2 | None
) -> None:
    if published is not None:
        check(
            "published_commitment",
            published.digest() == commitment.digest(),
            "the commitment differs from the one published before the draw",
        )


# --------------------------------------------------------------------------- public


def _public_checks(check: _Checks, bundle: PublicBundle, published: DrawCommitmentV2 | None) -> None:
    commitment = bundle.commitment
    _check_published(check, commitment, published)
    _check_seed(check, bundle.seed, commitment)
    policy = _check_policy(check, bundle.policy_json, commitment)
    _check_salt(check, commitment, bundle.salt, bundle.drawn_at)
    committed_keys, bundle_keys = [t.key for t in commitment.tasks], [t.key for t in bundle.tasks]
    check(
        "tasks",
        committed_keys == bundle_keys,
        f"the bundle lists tasks {bundle_keys}, the commitment {committed_keys}",
    )
    outcomes = {t.key: t for t in bundle.tasks}
    for task in commitment.tasks:
        key = task.key
        _check_counts(check, task, policy, commitment)
        outcome = outcomes.get(key)
        if outcome is None:
            continue
        check(
            f"seals {key}",
            sorted(outcome.seals) == sorted(STRATA),
            f"seals for {sorted(outcome.seals)}, need {list(STRATA)}",
        )
        drawn = outcome.drawn
        valid = valid_uscc_mask(drawn) if drawn else np.zeros(0, dtype=bool)
        ascending = all(a < b for a, b in itertools.pairwise(drawn))
        bad = [u for u, ok in zip(drawn, valid, strict=True) if not ok]
        check(
            f"drawn_list {key}",
            not bad and ascending,
            f"{bad[0]!r} is not a valid USCC"
            if bad
            else "the drawn USCCs are not strictly ascending (order or duplicates)",
        )
        expected = sum(s.draw for s in task.strata)
        check(f"drawn_count {key}", len(drawn) == expected, f"{len(drawn)} drawn ≠ {expected} to draw")


def verify_bundle(bundle: PublicBundle, published: DrawCommitmentV2 | None = None) -> PlanVerification:
    """Anyone's check: the bundle is bound to its commitment, its counts follow the policy, the salt
    came after the commitment, and the drawn lists are well formed and of the committed size.

    Who was drawn cannot be checked without an opening or the full plan (§18.4)."""
    check = _Checks()
    _public_checks(check, bundle, published)
    return check.result(bundle.commitment.plan_id)


# --------------------------------------------------------------------------- subject


def verify_opening(
    bundle: PublicBundle, opening: SubjectOpening, uscc: str, published: DrawCommitmentV2 | None = None
) -> PlanVerification:
    """A subject's check: the public checks, then for each task of its opening that it is in the
    committed pool in its stratum's range, drawn exactly when its key is at most the stratum's
    threshold, in the drawn-set tree if drawn, and that the stratum's seal opens."""
    check = _Checks()
    _public_checks(check, bundle, published)
    commitment = bundle.commitment
    check(
        "opening",
        opening.uscc == uscc
        and opening.plan_id == commitment.plan_id
        and opening.commitment_digest == commitment.digest(),
        f"the opening is for {opening.uscc} in plan {opening.plan_id!r} (commitment {opening.commitment_digest[:12]}…), "
        f"not for {uscc} in plan {commitment.plan_id!r} (commitment {commitment.digest()[:12]}…)",
    )
    committed = {t.key: t for t in commitment.tasks}
    outcomes = {t.key: t for t in bundle.tasks}
    seed, salt = bytes.fromhex(bundle.seed), salt_digest(bundle.salt.value)
    for entry in opening.tasks:
        key = entry.key
        task, outcome = committed.get(key), outcomes.get(key)
        if task is None or outcome is None:
            check(f"pool_membership {key}", False, f"the bundle has no task {key}")
            continue
        code = STRATUM_CODE[entry.stratum]
        digest = task_digest(commitment.plan_id, entry.department, entry.item)
        nonce = np.frombuffer(bytes.fromhex(entry.nonce), dtype=np.uint8).reshape(1, -1)
        leaf = leaf_hash(
            leaf_data(digest, np.array([uscc], dtype="S18"), np.array([code]), nonce)[0].tobytes()
        )
        start = stratum_offsets([s.pool_size for s in task.strata])[code]
        in_range = start <= entry.leaf_index < start + task.strata[code].pool_size
        proven = verify_inclusion(
            leaf,
            entry.leaf_index,
            task.pool_size,
            [bytes.fromhex(h) for h in entry.path],
            bytes.fromhex(task.pool_root),
        )
        check(
            f"pool_membership {key}",
            in_range and proven,
            "the leaf's path does not lead to the committed pool root"
            if not proven
            else f"leaf index {entry.leaf_index} is outside stratum {entry.stratum}'s range",
        )
        key_u = selection_keys(seed, salt, np.frombuffer(leaf, dtype=np.uint8).reshape(1, -1))[0].tobytes()
        k = task.strata[code].draw
        by_rule = k > 0 and entry.threshold is not None and key_u <= bytes.fromhex(entry.threshold)
        at = bisect.bisect_left(outcome.drawn, uscc)
        listed = at < len(outcome.drawn) and outcome.drawn[at] == uscc
        check(
            f"selection {key}",
            by_rule == listed,
            f"{uscc} is in the drawn list, but its key is above stratum {entry.stratum}'s threshold"
            if listed
            else f"{uscc}'s key is at or below stratum {entry.stratum}'s threshold, but it is not in the drawn list",
        )
        if listed:
            in_set = entry.drawn_index is not None and verify_inclusion(
                drawn_leaf(leaf),
                entry.drawn_index,
                k,
                [bytes.fromhex(h) for h in entry.drawn_path],
                bytes.fromhex(entry.drawn_root),
            )
        else:
            in_set = entry.drawn_index is None
        check(
            f"drawn_set {key}",
            in_set,
            f"{uscc}'s path does not lead to stratum {entry.stratum}'s drawn-set root of {k} subjects"
            if listed
            else "an undrawn subject has no place in a drawn set",
        )
        expected = seal(
            digest,
            code,
            None if entry.threshold is None else bytes.fromhex(entry.threshold),
            bytes.fromhex(entry.drawn_root),
            drawn_digest(outcome.drawn),
            salt,
            bytes.fromhex(entry.blind),
        )
        check(
            f"seal {key}",
            outcome.seals.get(entry.stratum) == expected.hex(),
            f"stratum {entry.stratum}'s seal does not open: the published drawn list, the salt, the threshold "
            "or the drawn-set root differ from those sealed at the draw",
        )
    return check.result(commitment.plan_id)


# --------------------------------------------------------------------------- auditor


def _first_bundle_difference(ours: PublicBundle, theirs: PublicBundle) -> str:
    a, b = ours.model_dump(mode="json"), theirs.model_dump(mode="json")
    for field in a:
        if field == "tasks":
            for mine, other in zip(a["tasks"], b["tasks"], strict=False):
                for name in mine:
                    if mine[name] != other.get(name):
                        return f"tasks {mine['department']}/{mine['item']}: {name} differs from the plan's"
            if len(a["tasks"]) != len(b["tasks"]):
                return "tasks: a different number of tasks"
        elif a[field] != b[field]:
            return f"{field} differs from the plan's"
    return ""


def _register_problem(td, built) -> str:
    """How a plan task's pool differs from the pool the register gives (or "")."""
    if built is None:
        return "the register's task file has no such task"
    ours = {u: (g, bool(lead)) for u, g, lead in td.pool}
    theirs = {
        u: (g, bool(lead))
        for u, g, lead in zip(built["uscc"], built["grade"], built["lead"], strict=True)
    }
    left_out = sorted(set(theirs) - set(ours))
    if left_out:
        return f"{left_out[0]} is eligible by the register but not in the committed pool ({len(left_out)} left out)"
    invented = sorted(set(ours) - set(theirs))
    if invented:
        return f"{invented[0]} is in the committed pool but not eligible by the register ({len(invented)} such)"
    changed = sorted(u for u in ours if ours[u] != theirs[u])
    if changed:
        return f"{changed[0]}: grade/lead {ours[changed[0]]} in the plan, {theirs[changed[0]]} by the register"
    return ""


def _register_checks(check: _Checks, plan: InspectionPlan, policy: InspectionPolicy | None, register) -> None:
    """``register K``: each task's pool is exactly the eligible pool rebuilt (§3, the project's
    own pool rule) from the register — subjects, grades snapshot, items, leads — with the plan's
    committed policy: no eligible subject left out, none invented, every grade and lead as given."""
    from supervision.plan import prepare_pools

    request, inputs = register
    if policy is None:
        check("register", False, "the plan's policy is not valid, so its pools cannot be rebuilt")
        return
    request = request.model_copy(
        update={"as_of": dt.date.fromisoformat(plan.draw_v2.commitment.grades_as_of)}
    )
    prepared = prepare_pools(request, inputs, policy)
    built = {p.task.key: p.pool for p in prepared.pools}
    for td in plan.tasks:
        key = task_key(td.department, td.item)
        problem = _register_problem(td, built.get(key))
        check(f"register {key}", not problem, problem)


def verify_sealed_plan(
    plan: InspectionPlan,
    published: DrawCommitment | DrawCommitmentV2 | None = None,
    bundle: PublicBundle | None = None,
    register=None,
) -> PlanVerification:
    """The auditor's check of a full v2 plan: everything the public and each subject can check,
    and the whole draw recomputed from the pools, grades and nonce key; optionally that a
    published bundle is the plan's."""
    sealed = plan.draw_v2
    if sealed is None:
        raise ValueError(f"plan {plan.plan_id!r} is not a tiers-draw-v2 plan")
    commitment = sealed.commitment
    check = _Checks()
    if isinstance(published, DrawCommitment):
        check(
            "published_commitment",
            published.model_dump() == plan.commitment.model_dump(),
            "the plan's commitment differs from the one published",
        )
    else:
        _check_published(check, commitment, published)
    summary = plan.commitment
    check(
        "plan_commitment",
        summary.draw_algorithm == DRAW_ALGORITHM_V2
        and summary.plan_id == commitment.plan_id == plan.plan_id
        and summary.draw_seed_commitment == commitment.seed_commitment
        and summary.policy_hash == commitment.policy_hash
        and summary.pool_hashes == {t.key: t.pool_root for t in commitment.tasks}
        and summary.public_salt == sealed.salt.value,
        "the plan's commitment summary differs from its v2 commitment",
    )
    _check_seed(check, plan.draw_seed_hex, commitment)
    policy = _check_policy(check, sealed.policy_json, commitment)
    check(
        "plan_policy",
        json.loads(sealed.policy_json) == plan.policy,
        "the plan's policy differs from the hashed policy bytes",
    )
    _check_salt(check, commitment, sealed.salt, sealed.drawn_at)
    keys = [t.key for t in commitment.tasks]
    plan_keys, outcome_keys = (
        [task_key(td.department, td.item) for td in plan.tasks],
        [t.key for t in sealed.tasks],
    )
    check(
        "tasks",
        keys == plan_keys == outcome_keys,
        f"tasks: committed {keys}, drawn {plan_keys}, sealed {outcome_keys}",
    )
    draws, outcomes = dict(zip(plan_keys, plan.tasks, strict=True)), {t.key: t for t in sealed.tasks}
    nonce_key, seed = bytes.fromhex(sealed.nonce_key), bytes.fromhex(plan.draw_seed_hex)
    for task in commitment.tasks:
        key = task.key
        _check_counts(check, task, policy, commitment)
        td, outcome = draws.get(key), outcomes.get(key)
        if td is None or outcome is None:
            continue
        frame = pool_frame(td)
        try:
            leaves = task_pool_leaves(commitment.plan_id, td.department, td.item, frame, nonce_key)
        except DrawInputError as exc:
            check(f"pool_root {key}", False, str(exc))
            continue
        counts = [s.pool_size for s in task.strata]
        root_ok = leaves.root.hex() == task.pool_root and list(leaves.counts) == counts
        check(
            f"pool_root {key}",
            root_ok,
            f"the pool's counts {list(leaves.counts)} / Merkle root differ from the committed {counts} / root",
        )
        draw = {s.stratum: s.draw for s in task.strata}
        ppm = {s.stratum: s.ratio_ppm for s in task.strata}
        check(
            f"k_per_stratum {key}",
            td.k_per_stratum == draw and td.ratios.ppm_by_stratum() == ppm,
            f"the plan draws {td.k_per_stratum} at {td.ratios.ppm_by_stratum()} ppm; committed {draw} at {ppm}",
        )
        if not root_ok:
            continue
        try:
            selection = sealed_selection(
                leaves,
                seed=seed,
                salt=sealed.salt.value,
                k_per_stratum=list(draw.values()),
                nonce_key=nonce_key,
            )
        except DrawInputError as exc:
            check(f"drawn {key}", False, str(exc))
            continue
        recomputed = [c.decode() for c in leaves.usccs[selection.rows]]
        only_listed = sorted(set(td.drawn) - set(recomputed))
        only_drawn = sorted(set(recomputed) - set(td.drawn))
        check(
            f"drawn {key}",
            recomputed == td.drawn,
            f"{only_listed[0]} is in the published list but not in the recomputed draw"
            if only_listed
            else (
                f"{only_drawn[0]} is in the recomputed draw but not in the published list"
                if only_drawn
                else "same members, different order or duplicates"
            ),
        )
        wrong = [
            STRATA[s.code]
            for s, stored in zip(selection.seals, outcome.strata, strict=True)
            if (s.threshold.hex() if s.threshold else None, s.drawn_root.hex(), s.seal.hex())
            != (stored.threshold, stored.drawn_root, stored.seal)
        ]
        check(
            f"outcomes {key}", not wrong, f"stored threshold, drawn-set root or seal of {wrong} ≠ recomputed"
        )
    visit_items = sorted((v.uscc, i) for v in plan.visits for i in v.items)
    task_items = sorted((u, td.item) for td in plan.tasks for u in td.drawn)
    check(
        "visits_cover_draws",
        visit_items == task_items,
        "the visits do not cover exactly the drawn (subject, item) pairs",
    )
    if bundle is not None:
        difference = _first_bundle_difference(publish_bundle(plan), bundle)
        check("bundle", not difference, difference)
    if register is not None:
        _register_checks(check, plan, policy, register)
    return check.result(plan.plan_id)


def audit_plan(
    plan: InspectionPlan,
    published: DrawCommitment | DrawCommitmentV2 | None = None,
    bundle: PublicBundle | None = None,
    register=None,
) -> PlanVerification:
    """The auditor's check of a full plan, whichever algorithm drew it (``tiers plan verify PLAN``).

    ``register``: ``(request, inputs)`` — a task (:class:`PlanCreate`) and the register it names
    (subjects, grades snapshot, items, leads; :class:`PlanInputs`): v2 plans then also pass
    ``register K`` only if every pool is exactly the eligible pool those inputs give."""
    if plan.draw_v2 is not None:
        return verify_sealed_plan(plan, published, bundle, register)
    if register is not None:
        raise ValueError(f"plan {plan.plan_id!r} was drawn with tiers-draw-v1: --register checks v2 plans")
    if bundle is not None:
        raise ValueError(f"plan {plan.plan_id!r} was drawn with tiers-draw-v1, which has no bundle")
    if isinstance(published, DrawCommitmentV2):
        check = _Checks()
        check("published_commitment", False, "a tiers-draw-v2 commitment, but a tiers-draw-v1 plan")
        return check.result(plan.plan_id)
    return verify_plan(plan, published)


__all__ = ["audit_plan", "verify_bundle", "verify_opening", "verify_sealed_plan"]
