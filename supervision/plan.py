"""Inspection plans: build the task pools, commit, draw, assign inspectors, merge joint visits, verify.

The service API the CLI and HTTP routes call:

- ``load_task(path) -> PlanTask`` and ``load_plan_inputs(task, base_dir) -> PlanInputs``
- ``publish_commitment(task, inputs, policy, seed) -> DrawCommitment`` (before the draw)
- ``create_plan(task, inputs, policy, seed, feed=None) -> InspectionPlan``
- ``verify_plan(plan, published=None) -> PlanVerification``
"""

from __future__ import annotations

import datetime as dt
import re
import tomllib
from collections.abc import Callable, Sequence
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_serializer, model_validator

from supervision.assign import InspectorPool, assign_inspectors, forbidden_pairs
from supervision.bundle import DrawCommitmentV2, SealedDraw
from supervision.draw import (
    DRAW_ALGORITHM,
    STRATA,
    STRATUM_CODE,
    canonical_order,
    draw_stratified,
    k_for_stratum,
    pcg64_at,
    pool_hash,
    seed_commitment,
    stream_state,
    subject_keys,
)
from supervision.leads import open_leads
from supervision.policy import GRADES, InspectionPolicy, ItemRules, load_policy, policy_from_dict
from supervision.ratios import (
    InProcessRatioFeed,
    InspectionRatiosOut,
    RatioFeed,
    inspection_ratios,
    stratum_of,
)
from supervision.tables import as_bool, read_table, split_codes
from uscc import valid_uscc_mask

# Visit order within a district: highest risk first.
GRADE_VISIT_RANK = {"D": 0, "C": 1, "B": 2, "A": 3}
# Stratum priority for staffing when inspector capacity runs short.
STRATUM_PRIORITY = {"D": 4, "C": 3, "A_lead": 2, "B": 1, "A": 0}
FREQUENCY_LIMIT = "frequency_limit_12m"


class PlanInputError(ValueError):
    """A task file or input table breaks a rule; the message names field, value and rule."""


# --------------------------------------------------------------------------- task file


class TaskItem(BaseModel):
    """One department's inspection item within a plan."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    department: str = Field(min_length=1, pattern=r"^[^\x00]+$")
    item: str = Field(min_length=1, pattern=r"^[^\x00]+$")

    @property
    def key(self) -> str:
        return f"{self.department}/{self.item}"


class PlanCreate(BaseModel):
    """A plan request without data locations (the body of ``POST /api/v1/plans``)."""

    model_config = ConfigDict(extra="forbid")

    plan_id: str = Field(min_length=1, max_length=100, pattern=r"^[\w.\-]+$")
    period_start: dt.date
    period_end: dt.date
    as_of: dt.date = Field(description="as-of date of the grades to use")
    policy: str = "default"
    seed_hex: str | None = Field(default=None, description="64 hex chars; generated when absent")
    public_salt: str = Field(default="", description="public randomness published after the commitment")
    tasks: list[TaskItem] = Field(min_length=1)

    @field_validator("seed_hex")
    @classmethod
    def _seed_is_hex(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[0-9a-fA-F]{64}", value):
            raise ValueError(f"seed_hex {value!r} must be exactly 64 hexadecimal characters (32 bytes)")
        return value.lower() if value else value

    @model_validator(mode="after")
    def _check(self) -> PlanCreate:
        if self.period_end < self.period_start:
            raise ValueError(f"period_end {self.period_end} is before period_start {self.period_start}")
        keys = [t.key for t in self.tasks]
        if len(set(keys)) != len(keys):
            raise ValueError(f"tasks list a department/item twice: {keys}")
        return self


class PlanTask(PlanCreate):
    """A plan request with its input files (the ``--task`` file); paths relative to that file."""

    subjects: str
    grades: str
    items: str
    inspectors: str
    conflicts: str | None = None
    leads: str | None = None
    history: str | None = None


def load_task(path: str | Path) -> PlanTask:
    """Read and validate a task file (TOML or JSON)."""
    path = Path(path)
    if not path.is_file():
        raise PlanInputError(f"task file {path} does not exist")
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix.lower() == ".json":
            return PlanTask.model_validate_json(text)
        return PlanTask.model_validate(tomllib.loads(text))
    except tomllib.TOMLDecodeError as exc:
        raise PlanInputError(f"task file {path}: not valid TOML ({exc})") from exc
    except ValueError as exc:
        raise PlanInputError(f"task file {path}: {exc}") from exc


class PlanInputs(BaseModel):
    """The tables a plan is built from, already read."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    subjects: pd.DataFrame
    grades: pd.DataFrame
    items: pd.DataFrame
    inspectors: pd.DataFrame
    conflicts: pd.DataFrame | None = None
    leads: pd.DataFrame | None = None
    history: pd.DataFrame | None = None

    @cached_property
    def subject_uscc_valid(self) -> np.ndarray:
        """Per subject row: is its USCC valid (GB 32100-2015 check character)? Computed once,
        vectorised, at the input boundary; every task and the commitment reuse it."""
        return valid_uscc_mask(self.subjects["uscc"])


def load_plan_inputs(task: PlanTask, base_dir: str | Path) -> PlanInputs:
    """Read every table the task names (paths relative to ``base_dir``)."""
    base = Path(base_dir)

    def opt(name: str) -> pd.DataFrame | None:
        value = getattr(task, name)
        return None if value is None else read_table(base / value, name)

    return PlanInputs(
        subjects=read_table(base / task.subjects, "subjects"),
        grades=read_table(base / task.grades, "grades"),
        items=read_table(base / task.items, "items"),
        inspectors=read_table(base / task.inspectors, "inspectors"),
        conflicts=opt("conflicts"),
        leads=opt("leads"),
        history=opt("history"),
    )


def resolve_policy(task: PlanTask, base_dir: str | Path) -> InspectionPolicy:
    """The task's policy: a bundled name or a TOML path relative to the task file."""
    candidate = Path(base_dir) / task.policy
    return load_policy(candidate if candidate.suffix and candidate.is_file() else task.policy)


# --------------------------------------------------------------------------- plan model


class ExcludedSubject(BaseModel):
    uscc: str
    reason: str


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


class DrawCommitment(BaseModel):
    """Published before the draw: nobody can change the seed, pool or policy afterwards unseen."""

    plan_id: str
    draw_algorithm: str = DRAW_ALGORITHM
    draw_seed_commitment: str = Field(pattern=r"^[0-9a-f]{64}$", description="SHA-256 of the secret seed")
    policy_hash: str
    pool_hashes: dict[str, str] = Field(description="department/item → SHA-256 of the canonical pool")
    public_salt: str = ""


class Visit(BaseModel):
    """One on-site visit: a subject with every item drawn for it (进一次门、查多项事)."""

    visit_order: int
    uscc: str
    name: str
    district_code: str
    district_name: str
    grade: str
    items: list[str]
    departments: list[str]
    inspectors: list[str]
    unstaffed: list[str] = Field(
        default_factory=list, description="'dept/item: reason' for items without a team"
    )


class GradeSummary(BaseModel):
    grade: str
    pool: int
    drawn: int
    expected: float = Field(description="Σ pool size × configured ratio (before rounding and caps)")
    configured_ratio: float
    realised_ratio: float


class InspectionPlan(BaseModel):
    """A drawn plan with its commitment, revealed seed and everything needed to verify it."""

    plan_id: str
    period_start: dt.date
    period_end: dt.date
    grades_as_of: dt.date
    model_version: str
    commitment: DrawCommitment
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


# --------------------------------------------------------------------------- pools


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
) -> tuple[pd.DataFrame, list[str], list[ExcludedSubject], ItemRules]:
    """The eligible pool of one task: active subjects the item applies to, with grade and lead.

    Returns (pool with columns uscc, grade, lead, name, district_code, district_name; ungraded
    USCCs; subjects excluded by the frequency limit; the item's rules).
    """
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
    return pool.reset_index(drop=True), ungraded, excluded, rules


def _canonical_pool(pool: pd.DataFrame) -> pd.DataFrame:
    codes = pool["uscc"].to_numpy(dtype="S18")
    order = canonical_order(codes)
    return pool.iloc[order].reset_index(drop=True)


def draw_task(
    pool: pd.DataFrame,
    ratio_ppm: dict[str, int],
    *,
    seed: bytes,
    department: str,
    item: str,
    public_salt: str = "",
) -> tuple[np.ndarray, dict[str, int]]:
    """Drawn row positions of a canonical pool, and k per stratum (docs/draw-algorithm.md)."""
    strata = stratum_of(pool["grade"], pool["lead"]).map(STRATUM_CODE).to_numpy(dtype=np.int64)
    counts = np.bincount(strata, minlength=len(STRATA))
    k = [k_for_stratum(int(counts[c]), ratio_ppm[s]) for c, s in enumerate(STRATA)]
    state, inc = stream_state(seed, department=department, item=item, public_salt=public_salt)
    keys = subject_keys(len(pool), state, inc)
    return draw_stratified(keys, strata, k), dict(zip(STRATA, k, strict=True))


def _pool_hash_of(pool: pd.DataFrame) -> str:
    return pool_hash(
        pool["uscc"].to_numpy(dtype="S18"), pool["grade"].to_numpy(dtype="S1"), pool["lead"].to_numpy()
    )


PreparedPools = tuple[list[tuple["TaskItem", pd.DataFrame, list[str], list["ExcludedSubject"], ItemRules]], str]
# How one task's subjects are drawn: (task, canonical pool, ppm per stratum) → (drawn rows, k per
# stratum). Default: the v1 key stream (draw_task); tiers-draw-v2 passes its sealed draw.
SubjectDraw = Callable[["TaskItem", pd.DataFrame, dict[str, int]], tuple[np.ndarray, dict[str, int]]]


def prepare_pools(task: PlanCreate, inputs: PlanInputs, policy: InspectionPolicy) -> PreparedPools:
    """Per task: (task item, canonical pool, ungraded, excluded, rules); and the grades' model version."""
    grades_at, model_version = _grades_at(inputs.grades, task.as_of)
    prepared = []
    for t in task.tasks:
        pool, ungraded, excluded, rules = build_task_pool(
            t,
            inputs,
            policy=policy,
            grades_at=grades_at,
            period_start=task.period_start,
            period_end=task.period_end,
        )
        prepared.append((t, _canonical_pool(pool), ungraded, excluded, rules))
    return prepared, model_version


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
    prepared_pools, _ = prepared if prepared is not None else prepare_pools(task, inputs, policy)
    return DrawCommitment(
        plan_id=task.plan_id,
        draw_seed_commitment=seed_commitment(seed),
        policy_hash=policy.policy_hash(),
        pool_hashes={t.key: _pool_hash_of(pool) for t, pool, *_ in prepared_pools},
        public_salt=task.public_salt,
    )


def ratio_feed_of(prepared: PreparedPools, policy: InspectionPolicy, as_of: dt.date) -> InProcessRatioFeed:
    """The in-process ratio feed over exactly these pools (the default feed of a plan)."""
    pools, model_version = prepared
    return InProcessRatioFeed(
        pools={(t.department, t.item): pool for t, pool, *_ in pools},
        policy=policy,
        key_items={t.item: rules.key_item for t, _, _, _, rules in pools},
        as_of=as_of,
        model_version=model_version,
    )


# --------------------------------------------------------------------------- create


def _inspector_pool(inspectors: pd.DataFrame, task: TaskItem) -> InspectorPool:
    mine = inspectors[inspectors["department"] == task.department]
    qualified = mine[mine["qualified_items"].map(lambda v: task.item in split_codes(v))]
    capacity = pd.to_numeric(qualified["capacity"], errors="coerce")
    if capacity.isna().any() or (capacity <= 0).any():
        bad = qualified.loc[capacity.isna() | (capacity <= 0)].iloc[0]
        raise PlanInputError(
            f"inspectors: {bad['inspector_id']} has capacity {bad['capacity']!r}; rule: int > 0"
        )
    return InspectorPool(
        ids=qualified["inspector_id"].astype(str).to_numpy(),
        districts=qualified["district_code"].astype(str).to_numpy(),
        capacity=capacity.astype(np.int64).to_numpy(),
    )


def _previous_inspectors(history: pd.DataFrame | None, period_start: dt.date) -> list[tuple[str, str]]:
    """(inspector_id, uscc) of each subject's most recent inspection before the period."""
    if history is None or history.empty or "inspector_ids" not in history.columns:
        return []
    hist = history.assign(_d=pd.to_datetime(history["inspected_on"], errors="coerce").dt.date)
    hist = hist[hist["_d"] < period_start]
    last = hist[hist["_d"] == hist.groupby("uscc")["_d"].transform("max")]
    return [
        (i, u) for u, ids in zip(last["uscc"], last["inspector_ids"], strict=True) for i in split_codes(ids)
    ]


def _rng_for(seed: bytes, task: TaskItem, salt: str) -> np.random.Generator:
    state, inc = stream_state(
        seed, department=task.department, item=task.item, public_salt=salt, purpose="inspectors"
    )
    return np.random.Generator(pcg64_at(state, inc))


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
    feed = feed if feed is not None else ratio_feed_of(prepared, policy, task.as_of)
    prepared, model_version = prepared
    conflicts = (
        []
        if inputs.conflicts is None
        else list(zip(inputs.conflicts["inspector_id"], inputs.conflicts["uscc"], strict=True))
    )
    previous = _previous_inspectors(inputs.history, task.period_start)
    loads: dict[str, int] = {}
    task_draws: list[TaskDraw] = []
    teams: dict[tuple[str, str], list[str]] = {}  # (uscc, task key) → inspector ids
    unstaffed: dict[tuple[str, str], str] = {}
    subject_info: dict[str, dict] = {}
    per_subject: dict[str, int] = {}
    department_teams: dict[str, dict[str, dict[str, list[str]]]] = {}  # dept → uscc → task key → team
    for step, (t, pool, ungraded, excluded, rules) in enumerate(prepared, start=1):
        ratios = feed.inspection_ratios(department=t.department, item=t.item, as_of=task.as_of)
        if subject_draw is not None:
            rows, k = subject_draw(t, pool, ratios.ppm_by_stratum())
        else:
            rows, k = draw_task(
                pool,
                ratios.ppm_by_stratum(),
                seed=seed,
                department=t.department,
                item=t.item,
                public_salt=task.public_salt,
            )
        drawn = pool.iloc[rows]
        per_subject[t.key] = rules.inspectors_per_subject
        inspectors = _inspector_pool(inputs.inspectors, t)
        # 进一次门: a subject already staffed by this department for an earlier item keeps that
        # team when every member is qualified for this item too (recusal is per subject, so it
        # still holds); the joint visit costs no extra capacity.
        qualified = set(inspectors.ids.tolist())
        reused: dict[str, list[str]] = {}
        for uscc in drawn["uscc"]:
            for team in department_teams.get(t.department, {}).get(uscc, {}).values():
                if len(team) == rules.inspectors_per_subject and set(team) <= qualified:
                    reused[uscc] = team
                    teams[(uscc, t.key)] = team
                    break
        to_staff = drawn[~drawn["uscc"].isin(reused)]
        strata = stratum_of(to_staff["grade"], to_staff["lead"])
        subject_ids = to_staff["uscc"].to_numpy()
        assignment = assign_inspectors(
            n_subjects=len(to_staff),
            subject_priority=strata.map(STRATUM_PRIORITY).to_numpy(),
            inspectors=inspectors,
            rng=_rng_for(seed, t, task.public_salt),
            per_subject=rules.inspectors_per_subject,
            forbidden=forbidden_pairs([*conflicts, *previous], subject_ids, inspectors.ids),
            subject_districts=to_staff["district_code"].astype(str).to_numpy(),
            recuse_same_district=rules.recuse_same_district,
            loads=np.array([loads.get(i, 0) for i in inspectors.ids], dtype=np.int64),
        )
        for inspector_id, load in zip(inspectors.ids, assignment.loads, strict=True):
            loads[inspector_id] = int(load)
        for record in drawn.itertuples(index=False):
            subject_info.setdefault(record.uscc, record._asdict())
        for pos, uscc in enumerate(subject_ids):
            if pos in assignment.unstaffed:
                unstaffed[(uscc, t.key)] = assignment.unstaffed[pos]
            else:
                team = [str(inspectors.ids[i]) for i in assignment.team[pos]]
                teams[(uscc, t.key)] = team
                department_teams.setdefault(t.department, {}).setdefault(uscc, {})[t.key] = team
        task_draws.append(
            TaskDraw(
                department=t.department,
                item=t.item,
                key_item=rules.key_item,
                pool_hash=_pool_hash_of(pool),
                pool=list(zip(pool["uscc"], pool["grade"], pool["lead"].astype(int), strict=True)),
                ungraded=ungraded,
                excluded=excluded,
                ratios=ratios,
                k_per_stratum=k,
                drawn=sorted(drawn["uscc"]),
            )
        )
        if progress is not None:
            progress(step, len(prepared))

    visits = merge_joint_visits(task_draws, subject_info, teams, unstaffed)
    draws_total = sum(len(td.drawn) for td in task_draws)
    return InspectionPlan(
        plan_id=task.plan_id,
        period_start=task.period_start,
        period_end=task.period_end,
        grades_as_of=task.as_of,
        model_version=model_version,
        commitment=DrawCommitment(
            plan_id=task.plan_id,
            draw_seed_commitment=seed_commitment(seed),
            policy_hash=policy.policy_hash(),
            pool_hashes={f"{td.department}/{td.item}": td.pool_hash for td in task_draws},
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


# --------------------------------------------------------------------------- joint visits


def merge_joint_visits(
    task_draws: Sequence[TaskDraw],
    subject_info: dict[str, dict],
    teams: dict[tuple[str, str], list[str]],
    unstaffed: dict[tuple[str, str], str],
) -> list[Visit]:
    """One visit per drawn subject with every item drawn for it, ordered by district then risk.

    Every (subject, item) pair of every task appears in exactly one visit: items are never lost.
    """
    unstaffed_by_subject: dict[str, list[str]] = {}
    for (uscc, task_key), reason in unstaffed.items():
        unstaffed_by_subject.setdefault(uscc, []).append(f"{task_key}: {reason}")
    by_subject: dict[str, list[TaskDraw]] = {}
    for td in task_draws:
        for uscc in td.drawn:
            by_subject.setdefault(uscc, []).append(td)
    visits = []
    for uscc, tds in by_subject.items():
        info = subject_info[uscc]
        inspectors: list[str] = []
        for td in tds:
            for i in teams.get((uscc, f"{td.department}/{td.item}"), []):
                if i not in inspectors:
                    inspectors.append(i)
        visits.append(
            Visit(
                visit_order=0,
                uscc=uscc,
                name=str(info["name"]),
                district_code=str(info["district_code"]),
                district_name=str(info["district_name"]),
                grade=str(info["grade"]),
                items=[td.item for td in tds],
                departments=sorted({td.department for td in tds}),
                inspectors=inspectors,
                unstaffed=unstaffed_by_subject.get(uscc, []),
            )
        )
    visits.sort(key=lambda v: (v.district_code, GRADE_VISIT_RANK[v.grade], v.uscc))
    for order, visit in enumerate(visits, start=1):
        visit.visit_order = order
    return visits


def grade_summary(task_draws: Sequence[TaskDraw]) -> list[GradeSummary]:
    """Per grade, summed over tasks: pool, drawn, expected (unrounded) and realised ratio."""
    out = []
    for grade in GRADES:
        pool = drawn = 0
        expected = 0.0
        for td in task_draws:
            for s in td.ratios.strata:
                if s.grade == grade:
                    pool += s.pool_size
                    expected += s.pool_size * s.configured_ratio
                    drawn += td.k_per_stratum.get(s.stratum, 0)
        out.append(
            GradeSummary(
                grade=grade,
                pool=pool,
                drawn=drawn,
                expected=round(expected, 3),
                configured_ratio=round(expected / pool, 6) if pool else 0.0,
                realised_ratio=round(drawn / pool, 6) if pool else 0.0,
            )
        )
    return out


# --------------------------------------------------------------------------- verify


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


def verify_plan(
    plan: InspectionPlan, published: DrawCommitment | DrawCommitmentV2 | None = None
) -> PlanVerification:
    """Recompute every draw from the plan's published inputs and compare.

    Checks, in order: the published commitment (if given) equals the plan's; SHA-256(seed)
    equals the commitment; the policy hash; each pool hash; the ratios follow the policy; the
    drawn list equals the recomputed draw. Inspector teams are not re-derived here.
    A ``tiers-draw-v2`` plan is checked by :func:`supervision.verify_v2.verify_sealed_plan`.
    """
    if plan.draw_v2 is not None:
        from supervision.verify_v2 import verify_sealed_plan  # imports this module

        return verify_sealed_plan(plan, published)
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
        key = f"{td.department}/{td.item}"
        pool = pd.DataFrame(td.pool, columns=["uscc", "grade", "lead"])
        pool["lead"] = pool["lead"].astype(bool)
        try:
            recomputed_hash = _pool_hash_of(pool)
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
        rows, k = draw_task(
            pool,
            td.ratios.ppm_by_stratum(),
            seed=seed,
            department=td.department,
            item=td.item,
            public_salt=plan.commitment.public_salt,
        )
        recomputed = sorted(pool["uscc"].iloc[rows])
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


__all__ = [
    "DrawCommitment",
    "GradeSummary",
    "InspectionPlan",
    "PlanCreate",
    "PlanInputError",
    "PlanInputs",
    "PlanTask",
    "PlanVerification",
    "PreparedPools",
    "SubjectDraw",
    "TaskDraw",
    "TaskItem",
    "Visit",
    "build_task_pool",
    "create_plan",
    "draw_task",
    "grade_summary",
    "load_plan_inputs",
    "load_task",
    "merge_joint_visits",
    "prepare_pools",
    "publish_commitment",
    "ratio_feed_of",
    "resolve_policy",
    "verify_plan",
]
