"""The plan request: what to inspect (``PlanCreate``), the task file that adds the input tables
(``PlanTask``), and those tables once read (``PlanInputs``)."""

from __future__ import annotations

import datetime as dt
import re
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from configfile import parse_toml
from supervision.bundle import MAX_TASKS, OptionalText, TaskNamed, Text
from supervision.inspection_policy import InspectionPolicy, load_policy
from supervision.tables import read_table
from uscc import valid_uscc_mask


class PlanInputError(ValueError):
    """A task file or input table breaks a rule; the message names field, value and rule."""


class TaskItem(TaskNamed):
    """One department's inspection item within a plan."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class PlanCreate(BaseModel):
    """A plan request without data locations (the body of ``POST /api/v1/plans``)."""

    model_config = ConfigDict(extra="forbid")

    plan_id: str = Field(min_length=1, max_length=100, pattern=r"^[\w.\-]+$")
    period_start: dt.date
    period_end: dt.date
    as_of: dt.date = Field(description="as-of date of the grades to use")
    policy: Text = "default"
    seed_hex: str | None = Field(default=None, description="64 hex chars; generated when absent")
    public_salt: OptionalText = Field(default="", description="public randomness published after the commitment")
    tasks: list[TaskItem] = Field(min_length=1, max_length=MAX_TASKS)

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
    is_json = path.suffix.lower() == ".json"
    raw = None if is_json else parse_toml(text, f"task file {path}", PlanInputError)
    try:
        return PlanTask.model_validate_json(text) if is_json else PlanTask.model_validate(raw)
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
