"""Joint visits (进一次门、查多项事): one visit per drawn subject with every item drawn for it, and
the plan's summary per grade."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel, Field

from supervision.bundle import task_key
from supervision.inspection_policy import GRADES
from supervision.plan.pools import TaskDraw

# Visit order within a district: highest risk first.
GRADE_VISIT_RANK = {"D": 0, "C": 1, "B": 2, "A": 3}


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
    for (uscc, key), reason in unstaffed.items():
        unstaffed_by_subject.setdefault(uscc, []).append(f"{key}: {reason}")
    by_subject: dict[str, list[TaskDraw]] = {}
    for td in task_draws:
        for uscc in td.drawn:
            by_subject.setdefault(uscc, []).append(td)
    visits = []
    for uscc, tds in by_subject.items():
        info = subject_info[uscc]
        inspectors: list[str] = []
        for td in tds:
            for i in teams.get((uscc, task_key(td.department, td.item)), []):
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
