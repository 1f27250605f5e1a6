"""预警: which changes in a subject's file mean its risk rose — the pure rule, no database.

After each ingest the service hands the records it wrote (:class:`RecordEvent`), after each
grading the subjects' previous and new grades (:class:`GradeChange`); :func:`detect_record_warnings`
and :func:`detect_grade_warnings` return the warnings they raise, each with its cause, a Chinese
sentence and the records behind it. The rules are TOML (``supervision/warnings.toml``), read by
:func:`load_warning_rules` through ``configfile``. Storing, de-duplicating (one open warning per
subject and cause) and showing them is the service's (``serving.services.warnings``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from configfile import load_toml_file

Cause = Literal["serious_record", "list_entry", "grade_drop", "probability_rise", "commitment_broken"]
CAUSE_LABELS_ZH: dict[str, str] = {
    "serious_record": "新增严重失信记录",
    "list_entry": "新列入名单",
    "grade_drop": "信用等级下降",
    "probability_rise": "风险概率上升",
    "commitment_broken": "违反信用承诺",
}
GRADE_ORDER = {"A": 0, "B": 1, "C": 2, "D": 3}  # lowest risk first


class WarningRulesError(ValueError):
    """The warning rules file is missing, not TOML, or breaks a rule (named with the field)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RecordRule(_Strict):
    cause: Literal["serious_record", "list_entry", "commitment_broken"]
    kinds: tuple[str, ...] = Field(min_length=1)
    severities: tuple[Literal["minor", "general", "serious"], ...] = ()
    max_age_days: int = Field(default=180, ge=0, le=3650)

    def matches(self, kind: str, severity: str | None) -> bool:
        return kind in self.kinds and (not self.severities or severity in self.severities)


class GradeDropRule(_Strict):
    enabled: bool = True
    min_steps: int = Field(default=1, ge=1, le=3)


class ProbabilityRiseRule(_Strict):
    enabled: bool = True
    min_increase: float = Field(default=0.05, gt=0, le=1)
    min_probability: float = Field(default=0.0, ge=0, le=1)


class WarningRules(_Strict):
    version: str = Field(min_length=1, max_length=60)
    record_rules: tuple[RecordRule, ...] = ()
    grade_drop: GradeDropRule = GradeDropRule()
    probability_rise: ProbabilityRiseRule = ProbabilityRiseRule()


def load_warning_rules(path: Path | str | None = None) -> WarningRules:
    """The rules at ``path`` (the packaged ``supervision/warnings.toml`` when None)."""
    return load_toml_file(WarningRules, path, package="supervision", name="warnings.toml", label="warning rules",
                          error=WarningRulesError)


@dataclass(frozen=True)
class RecordEvent:
    """A record version an ingest wrote; ``previous`` is the (kind, severity) of the version it
    replaced (None for a new record)."""

    uscc: str
    record_id: str
    kind: str
    severity: str | None
    department: str
    decision_date: dt.date
    revoked: bool = False
    repaired: bool = False
    previous: tuple[str, str | None] | None = None


@dataclass(frozen=True)
class GradeChange:
    """A subject's grade before and after a grading (``old_*`` None: never graded before)."""

    uscc: str
    as_of: dt.date
    new_grade: str
    new_probability: float
    old_grade: str | None
    old_probability: float | None
    record_ids: tuple[str, ...] = ()  # the records behind the new grade's adverse reasons


@dataclass(frozen=True)
class WarningCandidate:
    """A warning to raise: one per subject and cause (the service keeps one open of each)."""

    uscc: str
    cause: str
    message_zh: str
    department: str | None = None  # the department whose record raised it (None for a grading)
    record_ids: tuple[str, ...] = ()
    evidence: dict[str, object] = field(default_factory=dict)


def detect_record_warnings(events: Iterable[RecordEvent], rules: WarningRules, today: dt.date,
                           department_name: Callable[[str], str] = str) -> list[WarningCandidate]:
    """One candidate per (subject, cause) over the records of one ingest, listing every record that
    raised it. A record raises a cause when a rule matches it, its previous version did not, it
    counts (not revoked, not repaired) and it is recent (``max_age_days`` before ``today``). The
    message names the departments by ``department_name`` (code → what a person reads)."""
    found: dict[tuple[str, str], list[RecordEvent]] = {}
    for event in events:
        if event.revoked or event.repaired:
            continue
        for rule in rules.record_rules:
            if not rule.matches(event.kind, event.severity):
                continue
            if event.previous is not None and rule.matches(*event.previous):
                continue  # already matched before this version: not a rise
            if (today - event.decision_date).days > rule.max_age_days:
                continue
            found.setdefault((event.uscc, rule.cause), []).append(event)
    out = []
    for (uscc, cause), events_of in sorted(found.items()):
        ids = tuple(dict.fromkeys(e.record_id for e in events_of))
        departments = sorted({e.department for e in events_of})
        message = f"{CAUSE_LABELS_ZH[cause]}：记录 {'、'.join(ids)}（{'、'.join(map(department_name, departments))}）"
        out.append(WarningCandidate(uscc=uscc, cause=cause, message_zh=message, department=departments[0],
                                    record_ids=ids, evidence={"kinds": sorted({e.kind for e in events_of})}))
    return out


def detect_grade_warnings(changes: Iterable[GradeChange], rules: WarningRules) -> list[WarningCandidate]:
    """Candidates for the subjects whose grade dropped by ``min_steps`` or whose probability rose
    by ``min_increase`` to at least ``min_probability``; a first grade raises nothing. The rule is
    :func:`grade_warnings`' (over columns), here over one grading's changes."""
    changes = [c for c in changes if c.old_grade is not None]
    if not changes:
        return []
    return grade_warnings(GradeChanges(
        uscc=[c.uscc for c in changes], as_of=[c.as_of for c in changes],
        new_grade=[c.new_grade for c in changes], new_probability=[c.new_probability for c in changes],
        old_grade=[c.old_grade for c in changes],
        old_probability=[np.nan if c.old_probability is None else c.old_probability for c in changes],
        record_ids=[c.record_ids for c in changes]), rules)


@dataclass(frozen=True)
class GradeChanges:
    """Changes of graded subjects as columns (position i: one subject), every one with an old grade;
    ``old_probability`` NaN where unknown. ``record_ids`` (the records behind each new grade's
    adverse reasons) may be a callable: position → ids, asked only for the subjects that raise a
    warning (a bulk load parses the reasons of those alone)."""

    uscc: Sequence[str]
    as_of: Sequence[dt.date]
    new_grade: Sequence[str]
    new_probability: Sequence[float]
    old_grade: Sequence[str]
    old_probability: Sequence[float]
    record_ids: Sequence[tuple[str, ...]] | Callable[[int], tuple[str, ...]] = ()


@dataclass(frozen=True)
class GradeWarningRows:
    """The warnings a grading raises, as columns (row k: one warning): ``at`` the position of its
    subject in the ``GradeChanges``, ``cause``, ``message_zh`` and ``evidence`` (a subject's two
    warnings share one evidence dict). Its record ids are the changes' (``record_ids`` at ``at``)."""

    at: list[int]
    cause: list[str]
    message_zh: list[str]
    evidence: list[dict[str, object]]


def grade_warning_rows(changes: GradeChanges, rules: WarningRules) -> GradeWarningRows:
    """The one rule of the warnings a grading raises, over columns (one comparison per column, a
    Python object only per warning raised): ``grade_drop`` when the new grade is at least
    ``min_steps`` grades riskier than the old one; ``probability_rise`` when the probability rose
    by at least ``min_increase`` to at least ``min_probability``. Rows in subject order, a
    subject's grade drop before its probability rise."""
    out = GradeWarningRows([], [], [], [])
    n = len(changes.uscc)
    if not n:
        return out
    order = pd.Series(GRADE_ORDER)
    steps = (pd.Series(changes.new_grade, dtype=object).map(order).fillna(0).to_numpy()
             - pd.Series(changes.old_grade, dtype=object).map(order).fillna(0).to_numpy())
    new_p = np.asarray(changes.new_probability, dtype=float)
    old_p = np.asarray(changes.old_probability, dtype=float)
    drop = np.full(n, rules.grade_drop.enabled) & (steps >= rules.grade_drop.min_steps)
    rise = rules.probability_rise
    with np.errstate(invalid="ignore"):  # NaN (unknown old probability) compares False: no rise
        rose = (np.full(n, rise.enabled) & ~np.isnan(old_p) & (new_p - old_p >= rise.min_increase - 1e-12)
                & (new_p >= rise.min_probability))
    threshold = f"{rise.min_increase:.1%}"
    at, cause, message, evidence = out.at, out.cause, out.message_zh, out.evidence
    raised = drop | rose
    for i, dropped, rose_i, old, new in zip(np.flatnonzero(raised).tolist(), drop[raised].tolist(),
                                            rose[raised].tolist(), old_p[raised].tolist(), new_p[raised].tolist(),
                                            strict=True):
        as_of = changes.as_of[i].isoformat()
        old_grade, new_grade = changes.old_grade[i], changes.new_grade[i]
        shown = {"as_of": as_of, "old_grade": old_grade, "new_grade": new_grade,
                 "old_probability": None if old != old else old, "new_probability": new}  # (NaN: unknown)
        if dropped:
            at.append(i)
            cause.append("grade_drop")
            message.append(f"信用等级由 {old_grade} 降为 {new_grade}（评价基准日 {as_of}）")
            evidence.append(shown)
        if rose_i:
            at.append(i)
            cause.append("probability_rise")
            message.append(f"风险概率由 {old:.1%} 升至 {new:.1%}（阈值 {threshold}，评价基准日 {as_of}）")
            evidence.append(shown)
    return out


def grade_warnings(changes: GradeChanges, rules: WarningRules) -> list[WarningCandidate]:
    """The candidates of :func:`grade_warning_rows` (the rule), each with its records."""
    rows = grade_warning_rows(changes, rules)
    ids = changes.record_ids if callable(changes.record_ids) else (
        changes.record_ids.__getitem__ if len(changes.record_ids) else lambda _i: ())
    return [WarningCandidate(uscc=changes.uscc[i], cause=cause, record_ids=tuple(ids(i)), evidence=evidence,
                             message_zh=message)
            for i, cause, message, evidence in zip(rows.at, rows.cause, rows.message_zh, rows.evidence, strict=True)]
