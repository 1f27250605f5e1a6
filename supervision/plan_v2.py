"""``tiers-draw-v2`` plans: commit, take the public salt, draw, publish the bundle, open per subject.

docs/draw-algorithm.md §12–§19. The service API (the CLI today; HTTP routes and pages next),
one call per step, each a pure function of its arguments (times are passed in, never read):

1. ``commit_v2(request, inputs, policy, seed=, nonce_key=, salt_source=, salt_pattern=, committed_at=)``
   → :class:`DrawCommitmentV2`, published at once; the caller keeps seed and nonce key secret.
2. ``accept_salt(commitment, value=, source=, known_at=, entered_at=, entered_by=)``
   → :class:`PublicSalt`, refused unless it became known after the commitment and, once NFKC-
   normalised and trimmed, matches the committed ``salt_pattern`` in full.
3. ``create_plan_v2(request, inputs, policy, seed=, nonce_key=, commitment=, salt=, drawn_at=)``
   → the full :class:`InspectionPlan` (``draw_v2`` set); refuses to run without the salt and
   unless the inputs reproduce the commitment.
4. ``publish_bundle(plan)`` → :class:`PublicBundle` (no grade, no undrawn subject); ``plan`` may
   be the full plan or just its :class:`PlanParts`.
5. ``subject_openings(plan, usccs)`` → ``{uscc: SubjectOpening}`` (each subject's private proof).

Checking is ``supervision.verify_v2``'s job (and ``verifier/tiers_draw_verify.py``'s).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict

from supervision.bundle import (
    BundleTask,
    DrawCommitmentV2,
    OpeningTask,
    PublicBundle,
    PublicSalt,
    SealedDraw,
    StratumCount,
    StratumOutcome,
    SubjectOpening,
    TaskCommitment,
    TaskOutcome,
    canonical_salt,
    parse_utc,
    salt_matches,
    task_key,
    utc_text,
)
from supervision.draw import STRATA, STRATUM_CODE, k_for_stratum, seed_commitment
from supervision.draw_v2 import (
    DRAW_ALGORITHM_V2,
    PoolLeaves,
    blind,
    drawn_leaves,
    nonces,
    pool_leaves,
    sealed_selection,
)
from supervision.inspection_policy import InspectionPolicy
from supervision.merkle import root_and_paths
from supervision.plan import (
    DrawCommitment,
    InspectionPlan,
    PlanCreate,
    PlanInputError,
    PlanInputs,
    PoolDraw,
    PreparedPools,
    TaskDraw,
    TaskPool,
    create_plan,
    prepare_pools,
    ratio_feed_of,
)
from supervision.ratios import RatioFeed, stratum_of


class DrawV2Error(ValueError):
    """A v2 step breaks a rule: no salt, a salt too early, inputs that do not reproduce the
    commitment, a v1 plan where v2 is needed. The message names the value and the rule;
    ``rule`` names which rule of the salt's was broken (``SALT_RULES``), for a caller that says
    it in its own words, and is None for the others."""

    def __init__(self, message: str, *, rule: str | None = None) -> None:
        super().__init__(message)
        self.rule = rule


# the rules a public salt is refused by (``DrawV2Error.rule``)
SALT_RULES = (
    "salt_source",
    "salt_format",
    "salt_known_before_commitment",
    "salt_entered_before_known",
    "salt_drawn_before_entered",
)


# --------------------------------------------------------------------------- pools


def pool_frame(td: TaskDraw) -> pd.DataFrame:
    """A plan task's published pool as a frame (uscc, grade, lead), uscc order."""
    frame = pd.DataFrame(td.pool, columns=["uscc", "grade", "lead"])
    frame["lead"] = frame["lead"].astype(bool)
    return frame


def stratum_codes(pool: pd.DataFrame) -> np.ndarray:
    """Stratum code (position in STRATA) of each pool row, from its grade and lead."""
    return stratum_of(pool["grade"], pool["lead"]).map(STRATUM_CODE).to_numpy(dtype=np.int64)


def task_pool_leaves(
    plan_id: str, department: str, item: str, pool: pd.DataFrame, nonce_key: bytes
) -> PoolLeaves:
    """Leaves and tree of one canonical pool (rows in uscc order)."""
    return pool_leaves(
        plan_id=plan_id,
        department=department,
        item=item,
        usccs=pool["uscc"].to_numpy(dtype="S18"),
        strata=stratum_codes(pool),
        nonce_key=nonce_key,
    )


def policy_hash_v2(policy_json: str) -> str:
    """v2's policy hash: SHA-256 of exactly the embedded policy text's UTF-8 bytes."""
    return hashlib.sha256(policy_json.encode("utf-8")).hexdigest()


# --------------------------------------------------------------------------- 1. commit


def commit_v2(
    request: PlanCreate,
    inputs: PlanInputs,
    policy: InspectionPolicy,
    *,
    seed: bytes,
    nonce_key: bytes,
    salt_source: str,
    salt_pattern: str,
    committed_at: dt.datetime,
    feed: RatioFeed | None = None,
    prepared: PreparedPools | None = None,
) -> DrawCommitmentV2:
    """What is published before the draw: seed hash, policy hash, where the salt will come from
    and the exact format its value will be written in (``salt_pattern``, §16.1), and per task the
    pool's Merkle root and per-stratum size, ratio and number to draw."""
    if request.public_salt:
        raise PlanInputError(
            "public_salt is set in the task; rule: tiers-draw-v2 takes the salt after the commitment "
            "is published (tiers plan salt), so the task must not fix one"
        )
    prepared = prepared if prepared is not None else prepare_pools(request, inputs, policy)
    feed = feed if feed is not None else ratio_feed_of(prepared, policy, request.as_of)
    tasks = []
    for prepared_pool in prepared.pools:
        t, pool, rules = prepared_pool.task, prepared_pool.pool, prepared_pool.rules
        leaves = task_pool_leaves(request.plan_id, t.department, t.item, pool, nonce_key)
        ratios = feed.inspection_ratios(department=t.department, item=t.item, as_of=request.as_of)
        fed_sizes = [s.pool_size for s in ratios.strata]
        if fed_sizes != list(leaves.counts) or [s.stratum for s in ratios.strata] != list(STRATA):
            raise DrawV2Error(
                f"{t.key}: the ratio feed counts {fed_sizes} subjects per stratum, the pool {list(leaves.counts)}; "
                "rule: ratios must come from the pool being committed"
            )
        ppm = ratios.ppm_by_stratum()
        tasks.append(
            TaskCommitment(
                department=t.department,
                item=t.item,
                key_item=rules.key_item,
                pool_size=len(pool),
                pool_root=leaves.root.hex(),
                strata=[
                    StratumCount(stratum=s, pool_size=n, ratio_ppm=ppm[s], draw=k_for_stratum(n, ppm[s]))
                    for s, n in zip(STRATA, leaves.counts, strict=True)
                ],
            )
        )
    return DrawCommitmentV2(
        plan_id=request.plan_id,
        period_start=request.period_start.isoformat(),
        period_end=request.period_end.isoformat(),
        grades_as_of=request.as_of.isoformat(),
        committed_at=utc_text(committed_at),
        seed_commitment=seed_commitment(seed),
        policy_hash=policy_hash_v2(policy.policy_json()),
        salt_source=salt_source,
        salt_pattern=salt_pattern,
        tasks=tasks,
    )


# --------------------------------------------------------------------------- 2. salt


def salt_problems(commitment: DrawCommitmentV2, salt: PublicSalt, drawn_at: str | None) -> dict[str, str]:
    """The rules of ``SALT_RULES`` the salt breaks, each with the sentence saying so, in that order
    (empty: none): the source the commitment named, its ``salt_pattern`` in full, and the order
    committed_at < known_at ≤ entered_at [≤ drawn_at] (of which only the first broken is named).
    The one statement of the salt's rules: its entry, the draw and the auditor's check read it."""
    problems = {}
    if salt.source != commitment.salt_source:
        problems["salt_source"] = (
            f"salt source {salt.source!r} is not the source named in the commitment ({commitment.salt_source!r}); "
            "rule: the salt comes from the source announced before the draw"
        )
    if not salt_matches(commitment.salt_pattern, salt.value):
        problems["salt_format"] = (
            f"salt value {salt.value!r} is not written as the commitment fixed it (salt_pattern "
            f"{commitment.salt_pattern!r}); rule: the salt has one spelling, named before the draw"
        )
    broken = _salt_timeline_rule(commitment, salt, drawn_at)
    if broken:
        problems[broken[0]] = broken[1]
    return problems


def _refuse_broken_salt(commitment: DrawCommitmentV2, salt: PublicSalt, drawn_at: str | None) -> None:
    """DrawV2Error naming the first rule the salt breaks (`salt_problems`), if any."""
    for rule, sentence in salt_problems(commitment, salt, drawn_at).items():
        raise DrawV2Error(sentence, rule=rule)


def _salt_timeline_rule(
    commitment: DrawCommitmentV2, salt: PublicSalt, drawn_at: str | None
) -> tuple[str, str] | None:
    """The rule of ``SALT_RULES`` the salt's times break and the sentence saying so, or None."""
    committed, known, entered = (
        parse_utc(x) for x in (commitment.committed_at, salt.known_at, salt.entered_at)
    )
    if not known > committed:
        return "salt_known_before_commitment", (
            f"the salt became known at {salt.known_at}, not after the commitment ({commitment.committed_at}); "
            "rule: the salt must be unknown when the commitment is published"
        )
    if entered < known:
        return "salt_entered_before_known", (
            f"the salt was entered at {salt.entered_at}, before it became known at {salt.known_at}"
        )
    if drawn_at is not None and parse_utc(drawn_at) < entered:
        return "salt_drawn_before_entered", (
            f"the draw ran at {drawn_at}, before the salt was entered at {salt.entered_at}"
        )
    return None


def accept_salt(
    commitment: DrawCommitmentV2,
    *,
    value: str,
    source: str,
    known_at: dt.datetime,
    entered_at: dt.datetime,
    entered_by: str,
) -> PublicSalt:
    """The public salt, once it exists; refused if its source is not the one the commitment named,
    if its value (NFKC-normalised, surrounding white space removed) does not match the committed
    ``salt_pattern`` in full, or if it became known before the commitment was published. The
    value is recorded in that canonical form, the only one verifiers accept."""
    try:
        salt = PublicSalt(
            value=canonical_salt(value),
            source=source,
            known_at=utc_text(known_at),
            entered_at=utc_text(entered_at),
            entered_by=entered_by,
        )
    except ValueError as exc:
        raise DrawV2Error(f"salt: {exc}") from exc
    _refuse_broken_salt(commitment, salt, None)
    return salt


# --------------------------------------------------------------------------- 3. draw


def _check_secrets(commitment: DrawCommitmentV2, request: PlanCreate, seed: bytes, policy_json: str) -> None:
    if commitment.plan_id != request.plan_id:
        raise DrawV2Error(
            f"the commitment is for plan {commitment.plan_id!r}, the task for {request.plan_id!r}"
        )
    if [t.key for t in commitment.tasks] != [t.key for t in request.tasks]:
        raise DrawV2Error(
            f"the commitment lists tasks {[t.key for t in commitment.tasks]}, the request {[t.key for t in request.tasks]}"
        )
    if seed_commitment(seed) != commitment.seed_commitment:
        raise DrawV2Error("the seed is not the one committed to (SHA-256 of the seed ≠ seed_commitment)")
    if policy_hash_v2(policy_json) != commitment.policy_hash:
        raise DrawV2Error("the policy is not the one committed to (its hash ≠ policy_hash)")


def create_plan_v2(
    request: PlanCreate,
    inputs: PlanInputs,
    policy: InspectionPolicy,
    *,
    seed: bytes,
    nonce_key: bytes,
    commitment: DrawCommitmentV2,
    salt: PublicSalt | None,
    drawn_at: dt.datetime,
    feed: RatioFeed | None = None,
    prepared: PreparedPools | None = None,
    progress=None,
) -> InspectionPlan:
    """Draw a committed plan with the public salt: subjects (sealed draw), inspectors, visits.

    Refuses without the salt, with a salt that breaks the timeline, and when the seed, policy,
    pools or ratios do not reproduce the commitment (the inputs changed since it was published).
    """
    if salt is None:
        raise DrawV2Error(
            "the draw needs the public salt: a value from the source named in the commitment "
            f"({commitment.salt_source!r}) that became known after the commitment was published"
        )
    drawn_at_text = utc_text(drawn_at)
    _refuse_broken_salt(commitment, salt, drawn_at_text)
    policy_json = policy.policy_json()
    _check_secrets(commitment, request, seed, policy_json)
    committed = {t.key: t for t in commitment.tasks}
    outcomes: dict[str, TaskOutcome] = {}

    def sealed_draw(prepared_pool: TaskPool, ppm: dict[str, int]) -> PoolDraw:
        task, pool = prepared_pool.task, prepared_pool.pool
        promised = committed[task.key]
        leaves = task_pool_leaves(request.plan_id, task.department, task.item, pool, nonce_key)
        if leaves.root.hex() != promised.pool_root:
            raise DrawV2Error(
                f"{task.key}: the pool's Merkle root {leaves.root.hex()[:16]}… ≠ the committed {promised.pool_root[:16]}…; "
                "rule: the draw uses exactly the committed pool (the inputs changed since the commitment)"
            )
        if ppm != {s.stratum: s.ratio_ppm for s in promised.strata}:
            raise DrawV2Error(f"{task.key}: the ratios {ppm} (ppm) differ from the committed ones")
        k = [s.draw for s in promised.strata]
        selection = sealed_selection(leaves, seed=seed, salt=salt.value, k_per_stratum=k, nonce_key=nonce_key)
        outcomes[task.key] = TaskOutcome(
            department=task.department,
            item=task.item,
            strata=[
                StratumOutcome(
                    stratum=STRATA[s.code],
                    threshold=None if s.threshold is None else s.threshold.hex(),
                    drawn_root=s.drawn_root.hex(),
                    seal=s.seal.hex(),
                )
                for s in selection.seals
            ],
        )
        return PoolDraw(rows=selection.rows, k_per_stratum=dict(zip(STRATA, k, strict=True)))

    plan = create_plan(
        # The salt also seeds the inspectors' stream (reproducible, not part of the audit).
        request.model_copy(update={"public_salt": salt.value}),
        inputs,
        policy,
        seed,
        feed=feed,
        progress=progress,
        prepared=prepared,
        subject_draw=sealed_draw,
    )
    roots = {t.key: t.pool_root for t in commitment.tasks}
    return plan.model_copy(
        update={
            "commitment": DrawCommitment(
                plan_id=plan.plan_id,
                draw_algorithm=DRAW_ALGORITHM_V2,
                draw_seed_commitment=commitment.seed_commitment,
                policy_hash=commitment.policy_hash,
                pool_hashes=roots,
                public_salt=salt.value,
            ),
            "tasks": [
                td.model_copy(update={"pool_hash": roots[task_key(td.department, td.item)]}) for td in plan.tasks
            ],
            "draw_v2": SealedDraw(
                commitment=commitment,
                policy_json=policy_json,
                nonce_key=nonce_key.hex(),
                salt=salt,
                drawn_at=drawn_at_text,
                tasks=[outcomes[t.key] for t in commitment.tasks],
            ),
        }
    )


# --------------------------------------------------------------------------- 4. publish


class _DrawnList(BaseModel):
    model_config = ConfigDict(extra="ignore")

    department: str
    item: str
    drawn: list[str]


class PlanParts(BaseModel):
    """The parts of a full plan its bundle is made of. Reading a plan file into this model skips
    the pools and visits (5× faster than the whole plan on a 10 M-subject pool)."""

    model_config = ConfigDict(extra="ignore")

    plan_id: str
    draw_seed_hex: str
    tasks: list[_DrawnList]
    draw_v2: SealedDraw | None = None


def _sealed(plan: InspectionPlan | PlanParts) -> SealedDraw:
    if plan.draw_v2 is None:
        raise DrawV2Error(
            f"plan {plan.plan_id!r} was drawn with tiers-draw-v1: only its full plan (which shows every "
            "grade) can be checked; draw new plans with tiers-draw-v2 to publish them"
        )
    return plan.draw_v2


def publish_bundle(plan: InspectionPlan | PlanParts) -> PublicBundle:
    """The public bundle of a v2 plan: commitment, policy bytes, seed, salt, times, and per task
    the drawn USCCs and the strata's seals. Reads only what the plan stored (no pool pass)."""
    sealed = _sealed(plan)
    drawn = {task_key(td.department, td.item): td.drawn for td in plan.tasks}
    return PublicBundle(
        commitment=sealed.commitment,
        policy_json=sealed.policy_json,
        seed=plan.draw_seed_hex,
        salt=sealed.salt,
        drawn_at=sealed.drawn_at,
        tasks=[
            BundleTask(
                department=outcome.department,
                item=outcome.item,
                drawn=drawn.get(outcome.key, []),
                seals={s.stratum: s.seal for s in outcome.strata},
            )
            for outcome in sealed.tasks
        ],
    )


# --------------------------------------------------------------------------- 5. openings


def subject_openings(plan: InspectionPlan, usccs: Iterable[str]) -> dict[str, SubjectOpening]:
    """Each given subject's private opening: one entry per task whose pool holds it.

    One pass over each pool's tree serves every subject asked for; subjects in no pool of the
    plan are left out of the result.
    """
    sealed = _sealed(plan)
    nonce_key = bytes.fromhex(sealed.nonce_key)
    wanted = np.array(sorted(set(usccs)), dtype="S18")
    outcomes = {o.key: o for o in sealed.tasks}
    entries: dict[str, list[OpeningTask]] = {}
    for td in plan.tasks:
        frame = pool_frame(td)
        codes = frame["uscc"].to_numpy(dtype="S18")
        at = np.minimum(np.searchsorted(codes, wanted), max(codes.size - 1, 0))
        positions = sorted({int(p) for p in at[codes[at] == wanted]}) if codes.size else []
        if not positions:
            continue
        leaves = task_pool_leaves(plan.plan_id, td.department, td.item, frame, nonce_key)
        paths = leaves.paths(positions)
        drawn_positions = np.searchsorted(codes, np.array(td.drawn, dtype="S18"))
        drawn_paths: dict[int, tuple[int, list[bytes]]] = {}  # position → (index, path) in its drawn-set tree
        asked_for = set(positions)
        for code in {int(leaves.strata[p]) for p in positions}:
            members = drawn_positions[leaves.strata[drawn_positions] == code]
            asked = {p: i for i, p in enumerate(members.tolist()) if p in asked_for}
            if asked:
                _, tree_paths = root_and_paths(drawn_leaves(leaves, members), asked.values())
                drawn_paths.update({p: (i, tree_paths[i]) for p, i in asked.items()})
        outcome = outcomes[task_key(td.department, td.item)]
        subject_nonces = nonces(nonce_key, leaves.digest, codes[positions])
        for position, nonce in zip(positions, subject_nonces, strict=True):
            code = int(leaves.strata[position])
            index, path = paths[position]
            drawn_index, drawn_path = drawn_paths.get(position, (None, []))
            stratum = outcome.strata[code]
            entries.setdefault(codes[position].decode(), []).append(
                OpeningTask(
                    department=td.department,
                    item=td.item,
                    stratum=STRATA[code],
                    nonce=nonce.tobytes().hex(),
                    leaf_index=index,
                    path=[h.hex() for h in path],
                    threshold=stratum.threshold,
                    drawn_root=stratum.drawn_root,
                    blind=blind(nonce_key, leaves.digest, code).hex(),
                    drawn_index=drawn_index,
                    drawn_path=[h.hex() for h in drawn_path],
                )
            )
    digest = sealed.commitment.digest()
    return {
        uscc: SubjectOpening(plan_id=plan.plan_id, commitment_digest=digest, uscc=uscc, tasks=tasks)
        for uscc, tasks in entries.items()
    }


def subject_opening(plan: InspectionPlan, uscc: str) -> SubjectOpening:
    """One subject's opening; refused if no pool of the plan holds it."""
    opening = subject_openings(plan, [uscc]).get(uscc)
    if opening is None:
        raise DrawV2Error(f"uscc {uscc} is in no pool of plan {plan.plan_id!r}: it has nothing to open")
    return opening


__all__ = [
    "DrawV2Error",
    "PlanParts",
    "accept_salt",
    "commit_v2",
    "create_plan_v2",
    "pool_frame",
    "publish_bundle",
    "salt_problems",
    "stratum_codes",
    "subject_opening",
    "subject_openings",
    "task_pool_leaves",
]
