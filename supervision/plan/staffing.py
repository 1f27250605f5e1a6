"""Inspector teams for the drawn subjects, task after task: qualification, recusal, capacity, and
进一次门 (a department's team for one item stays for its other items on the same subject)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from supervision.assign import InspectorPool, assign_inspectors, forbidden_pairs
from supervision.draw import pcg64_at, stream_state
from supervision.inspection_policy import ItemRules
from supervision.plan.task import PlanInputError, PlanInputs, TaskItem
from supervision.ratios import stratum_of
from supervision.tables import split_codes

# Stratum priority for staffing when inspector capacity runs short.
STRATUM_PRIORITY = {"D": 4, "C": 3, "A_lead": 2, "B": 1, "A": 0}


def inspector_pool(inspectors: pd.DataFrame, task: TaskItem) -> InspectorPool:
    """The task's department's inspectors qualified for its item, with their capacity."""
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


def previous_inspectors(history: pd.DataFrame | None, period_start: dt.date) -> list[tuple[str, str]]:
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


@dataclass
class Staffing:
    """The teams of one plan, built task by task (the order of the plan's tasks).

    ``recused`` holds the (inspector_id, uscc) pairs never put together: declared conflicts and
    each subject's last team. Capacity used by earlier tasks counts against later ones.
    """

    inspectors: pd.DataFrame
    recused: list[tuple[str, str]]
    seed: bytes
    public_salt: str = ""
    loads: dict[str, int] = field(default_factory=dict)
    teams: dict[tuple[str, str], list[str]] = field(default_factory=dict)  # (uscc, task key) → ids
    unstaffed: dict[tuple[str, str], str] = field(default_factory=dict)  # (uscc, task key) → reason
    # department → uscc → task key → team
    department_teams: dict[str, dict[str, dict[str, list[str]]]] = field(default_factory=dict)

    @classmethod
    def for_plan(cls, inputs: PlanInputs, *, period_start: dt.date, seed: bytes, public_salt: str) -> Staffing:
        conflicts = (
            []
            if inputs.conflicts is None
            else list(zip(inputs.conflicts["inspector_id"], inputs.conflicts["uscc"], strict=True))
        )
        recused = [*conflicts, *previous_inspectors(inputs.history, period_start)]
        return cls(inspectors=inputs.inspectors, recused=recused, seed=seed, public_salt=public_salt)

    def staff(self, task: TaskItem, drawn: pd.DataFrame, rules: ItemRules) -> None:
        """Give each drawn subject of ``task`` a team, or record why it has none."""
        inspectors = inspector_pool(self.inspectors, task)
        # 进一次门: a subject already staffed by this department for an earlier item keeps that
        # team when every member is qualified for this item too (recusal is per subject, so it
        # still holds); the joint visit costs no extra capacity.
        qualified = set(inspectors.ids.tolist())
        reused: dict[str, list[str]] = {}
        for uscc in drawn["uscc"]:
            for team in self.department_teams.get(task.department, {}).get(uscc, {}).values():
                if len(team) == rules.inspectors_per_subject and set(team) <= qualified:
                    reused[uscc] = team
                    self.teams[(uscc, task.key)] = team
                    break
        to_staff = drawn[~drawn["uscc"].isin(reused)]
        strata = stratum_of(to_staff["grade"], to_staff["lead"])
        subject_ids = to_staff["uscc"].to_numpy()
        assignment = assign_inspectors(
            n_subjects=len(to_staff),
            subject_priority=strata.map(STRATUM_PRIORITY).to_numpy(),
            inspectors=inspectors,
            rng=_rng_for(self.seed, task, self.public_salt),
            per_subject=rules.inspectors_per_subject,
            forbidden=forbidden_pairs(self.recused, subject_ids, inspectors.ids),
            subject_districts=to_staff["district_code"].astype(str).to_numpy(),
            recuse_same_district=rules.recuse_same_district,
            loads=np.array([self.loads.get(i, 0) for i in inspectors.ids], dtype=np.int64),
        )
        for inspector_id, load in zip(inspectors.ids, assignment.loads, strict=True):
            self.loads[inspector_id] = int(load)
        for pos, uscc in enumerate(subject_ids):
            if pos in assignment.unstaffed:
                self.unstaffed[(uscc, task.key)] = assignment.unstaffed[pos]
            else:
                team = [str(inspectors.ids[i]) for i in assignment.team[pos]]
                self.teams[(uscc, task.key)] = team
                self.department_teams.setdefault(task.department, {}).setdefault(uscc, {})[task.key] = team
