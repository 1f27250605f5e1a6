"""Per task, the eligible pool in canonical order; the commitment published from the pools before
the draw; and the draw of one pool (docs/draw-algorithm.md)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
from pydantic import BaseModel, Field

from supervision.draw import (
    DRAW_ALGORITHM,
    STRATA,
    STRATUM_CODE,
    canonical_order,
    draw_stratified,
    k_for_stratum,
    pool_hash,
    seed_commitment,
    stream_state,
    subject_keys,
)
from supervision.inspection_policy import GRADES, InspectionPolicy, ItemRules
from supervision.leads import open_leads
from supervision.plan.task import PlanCreate, PlanInputError, PlanInputs, TaskItem
from supervision.ratios import InProcessRatioFeed, InspectionRatiosOut, stratum_of
from supervision.tables import as_bool, split_codes

FREQUENCY_LIMIT = "frequency_limit_12m"


class ExcludedSubject(BaseModel):
    uscc: str
    reason: str


class DrawCommitment(BaseModel):
    """Published before the draw: nobody can change the seed, pool or policy afterwards unseen."""

    plan_id: str
    draw_algorithm: str = DRAW_ALGORITHM
    draw_seed_commitment: str = Field(pattern=r"^[0-9a-f]{64}$", description="SHA-256 of the secret seed")
    policy_hash: str
    pool_hashes: dict[str, str] = Field(description="department/item → SHA-256 of the canonical pool")
    public_salt: str = ""


class TaskDraw(BaseModel):
    """One department/item draw: the published pool, the ratios and the drawn list."""

    department: str
    item: str
    key_item: bool
    pool_hash: str
    pool: list[tuple[str, str, int]] = Field(
        description="canonical pool: (uscc, grade, lead 0/1), uscc ascending"
    )
    ungraded: list[str] = Field(description="subjects without a grade, drawn as the policy's ungraded_grade")
    excluded: list[ExcludedSubject] = Field(description="left out of the pool before the draw, with the rule")
    ratios: InspectionRatiosOut
    k_per_stratum: dict[str, int]
    drawn: list[str] = Field(description="drawn USCCs, ascending")


@dataclass(frozen=True, eq=False)
class TaskPool:
    """One task's eligible pool and what was left out of it.

    ``pool`` has the columns uscc, name, district_code, district_name, grade, lead;
    ``ungraded`` lists pool members without a grade (drawn as the policy's ungraded grade);
    ``excluded`` the subjects left out before the draw, with the rule.
    """

    task: TaskItem
    pool: pd.DataFrame
    ungraded: list[str]
    excluded: list[ExcludedSubject]
    rules: ItemRules


@dataclass(frozen=True, eq=False)
class PreparedPools:
    """Every task's pool in canonical order, and the model version(s) of the grades used."""

    pools: list[TaskPool] = field(default_factory=list)
    model_version: str = ""


def _grades_at(grades: pd.DataFrame, as_of: dt.date) -> tuple[pd.DataFrame, str]:
    dates = pd.to_datetime(grades["as_of"], errors="coerce").dt.date
    chosen = grades[dates == as_of]
    if chosen.empty:
        available = sorted({str(d) for d in dates.dropna().unique()})[-5:]
        raise PlanInputError(f"as_of {as_of}: no grades with that date; latest available {available}")
    bad = chosen[~chosen["grade"].isin(GRADES)]
    if not bad.empty:
        row = bad.iloc[0]
        raise PlanInputError(
            f"grades: uscc {row['uscc']} has grade {row['grade']!r}; rule: one of A, B, C, D"
        )
    versions = sorted(chosen["model_version"].astype(str).unique())
    if chosen["uscc"].duplicated().any():
        dup = chosen.loc[chosen["uscc"].duplicated(), "uscc"].iloc[0]
        raise PlanInputError(
            f"grades: uscc {dup} has two grades as of {as_of}; rule: one per subject and date"
        )
    return chosen.set_index("uscc"), ";".join(versions)


def _item_row(items: pd.DataFrame, task: TaskItem) -> pd.Series:
    rows = items[items["item_code"] == task.item]
    if rows.empty:
        raise PlanInputError(f"tasks: item {task.item!r} is not in the items file")
    row = rows.iloc[0]
    if str(row["department"]) != task.department:
        raise PlanInputError(
            f"tasks: item {task.item!r} belongs to department {row['department']!r}, not {task.department!r}"
        )
    return row


def build_task_pool(
    task: TaskItem,
    inputs: PlanInputs,
    *,
    policy: InspectionPolicy,
    grades_at: pd.DataFrame,
    period_start: dt.date,
    period_end: dt.date,
) -> TaskPool:
    """The eligible pool of one task: active subjects the item applies to, with grade and lead
    (in input order; :func:`prepare_pools` puts it in canonical order)."""
    item = _item_row(inputs.items, task)
    key_item = bool(as_bool(pd.Series([item["key_item"]])).iloc[0])
    rules = policy.rules_for(task.department, task.item, key_item=key_item)
    subjects = inputs.subjects
    in_pool = (subjects["status"].astype(str) == "active").to_numpy()
    industries = split_codes(item["industries"])
    if industries:
        in_pool &= subjects["industry"].isin(industries).to_numpy()
    pool = subjects[in_pool]
    # Dirty subject rows are quarantined with the rule they break, never silently dropped.
    # Codes were checked once for the whole subjects table (PlanInputs), not once per task.
    invalid = pd.Series(~inputs.subject_uscc_valid[in_pool], index=pool.index)
    duplicate = pool["uscc"].duplicated(keep="first") & ~invalid
    quarantined = [ExcludedSubject(uscc=str(u), reason="uscc_invalid") for u in pool.loc[invalid, "uscc"]]
    quarantined += [
        ExcludedSubject(uscc=str(u), reason="duplicate_subject_row") for u in pool.loc[duplicate, "uscc"]
    ]
    pool = pool[~invalid & ~duplicate]
    pool = pool[["uscc", "name", "district_code", "district_name"]].copy()
    pool["grade"] = pool["uscc"].map(grades_at["grade"])
    ungraded = sorted(pool.loc[pool["grade"].isna(), "uscc"])
    pool["grade"] = pool["grade"].fillna(rules.ungraded_grade)

    pool["lead"] = pool["uscc"].isin(
        open_leads(
            inputs.leads,
            inputs.history,
            department=task.department,
            period_start=period_start,
            period_end=period_end,
            window_days=rules.lead_window_days,
        )
    )

    excluded: list[ExcludedSubject] = quarantined
    if inputs.history is not None and not rules.key_item and not inputs.history.empty:
        hist = inputs.history
        dates = pd.to_datetime(hist["inspected_on"], errors="coerce").dt.date
        recent = hist[
            (hist["department"] == task.department)
            & (dates > period_start - dt.timedelta(days=365))
            & (dates < period_start)
        ]
        counts = recent["uscc"].value_counts()
        over = set(counts[counts >= rules.max_inspections_12m].index) & set(pool["uscc"])
        excluded += [ExcludedSubject(uscc=u, reason=FREQUENCY_LIMIT) for u in sorted(over)]
        pool = pool[~pool["uscc"].isin(over)]
    return TaskPool(task=task, pool=pool.reset_index(drop=True), ungraded=ungraded, excluded=excluded, rules=rules)


def _canonical_pool(pool: pd.DataFrame) -> pd.DataFrame:
    codes = pool["uscc"].to_numpy(dtype="S18")
    order = canonical_order(codes)
    return pool.iloc[order].reset_index(drop=True)


def prepare_pools(task: PlanCreate, inputs: PlanInputs, policy: InspectionPolicy) -> PreparedPools:
    """Every task's pool in canonical order, and the grades' model version."""
    grades_at, model_version = _grades_at(inputs.grades, task.as_of)
    pools = []
    for t in task.tasks:
        built = build_task_pool(t, inputs, policy=policy, grades_at=grades_at, period_start=task.period_start,
                                period_end=task.period_end)
        pools.append(replace(built, pool=_canonical_pool(built.pool)))
    return PreparedPools(pools=pools, model_version=model_version)


def pool_hash_of(pool: pd.DataFrame) -> str:
    """SHA-256 of a canonical pool (columns uscc, grade, lead)."""
    return pool_hash(
        pool["uscc"].to_numpy(dtype="S18"), pool["grade"].to_numpy(dtype="S1"), pool["lead"].to_numpy()
    )


def publish_commitment(
    task: PlanCreate,
    inputs: PlanInputs,
    policy: InspectionPolicy,
    seed: bytes,
    *,
    prepared: PreparedPools | None = None,
) -> DrawCommitment:
    """What is published before the draw: seed commitment, policy hash and one hash per pool.

    ``prepared`` (from :func:`prepare_pools` on the same inputs) saves building the pools twice
    when the caller draws right after committing.
    """
    prepared = prepared if prepared is not None else prepare_pools(task, inputs, policy)
    return DrawCommitment(
        plan_id=task.plan_id,
        draw_seed_commitment=seed_commitment(seed),
        policy_hash=policy.policy_hash(),
        pool_hashes={p.task.key: pool_hash_of(p.pool) for p in prepared.pools},
        public_salt=task.public_salt,
    )


def ratio_feed_of(prepared: PreparedPools, policy: InspectionPolicy, as_of: dt.date) -> InProcessRatioFeed:
    """The in-process ratio feed over exactly these pools (the default feed of a plan)."""
    return InProcessRatioFeed(
        pools={(p.task.department, p.task.item): p.pool for p in prepared.pools},
        policy=policy,
        key_items={p.task.item: p.rules.key_item for p in prepared.pools},
        as_of=as_of,
        model_version=prepared.model_version,
    )


@dataclass(frozen=True, eq=False)
class PoolDraw:
    """The drawn row positions of a canonical pool and the draw size per stratum."""

    rows: np.ndarray
    k_per_stratum: dict[str, int]


def draw_task(
    pool: pd.DataFrame,
    ratio_ppm: dict[str, int],
    *,
    seed: bytes,
    department: str,
    item: str,
    public_salt: str = "",
) -> PoolDraw:
    """Drawn row positions of a canonical pool, and k per stratum (docs/draw-algorithm.md)."""
    strata = stratum_of(pool["grade"], pool["lead"]).map(STRATUM_CODE).to_numpy(dtype=np.int64)
    counts = np.bincount(strata, minlength=len(STRATA))
    k = [k_for_stratum(int(counts[c]), ratio_ppm[s]) for c, s in enumerate(STRATA)]
    state, inc = stream_state(seed, department=department, item=item, public_salt=public_salt)
    keys = subject_keys(len(pool), state, inc)
    return PoolDraw(rows=draw_stratified(keys, strata, k), k_per_stratum=dict(zip(STRATA, k, strict=True)))
