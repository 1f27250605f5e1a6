"""Grade drift: shares per grade, points moved, and the migration matrix between two as-of dates."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from models.meta import GRADES  # SAMR's four classes, lowest risk first


@dataclass(frozen=True)
class GradeShares:
    """Share of subjects per grade on each side and the move in percentage points (current − ref)."""

    grades: list[str]
    reference: dict[str, float]
    current: dict[str, float]
    points_moved: dict[str, float]


@dataclass(frozen=True)
class GradeMigration:
    """Migration of the subjects graded on both dates.

    ``counts[i][j]`` is the number of subjects graded ``grades[i]`` at the reference and
    ``grades[j]`` now; each row of ``row_shares`` sums to 1 (or is all 0 for an empty grade).
    Subjects only in the current cohort are ``entering`` (new registrations), subjects only in
    the reference cohort are ``leaving`` (deregistered, revoked, no longer graded).
    """

    grades: list[str]
    counts: list[list[int]]
    row_shares: list[list[float]]
    cohort_size: int
    entering: int
    leaving: int
    entering_by_grade: dict[str, int]
    leaving_by_grade: dict[str, int]


def _check_grades(grades: pd.Series, allowed: Sequence[str], side: str) -> None:
    unknown = sorted(set(grades.dropna().astype(str)) - set(allowed))
    if unknown:
        raise ValueError(f"{side} grade values {unknown} are not among the grades {list(allowed)}")


def grade_shares(
    reference: pd.Series, current: pd.Series, *, grades: Sequence[str] = GRADES
) -> GradeShares:
    """Share of each grade in ``reference`` and ``current`` and the points it moved."""
    _check_grades(reference, grades, "reference")
    _check_grades(current, grades, "current")
    ref = reference.astype(str).value_counts(normalize=True).reindex(list(grades), fill_value=0.0)
    cur = current.astype(str).value_counts(normalize=True).reindex(list(grades), fill_value=0.0)
    return GradeShares(
        grades=list(grades),
        reference={g: float(ref[g]) for g in grades},
        current={g: float(cur[g]) for g in grades},
        points_moved={g: float(100.0 * (cur[g] - ref[g])) for g in grades},
    )


def grade_migration(
    reference: pd.DataFrame, current: pd.DataFrame, *, grades: Sequence[str] = GRADES
) -> GradeMigration:
    """Migration matrix between two frames with columns ``uscc`` and ``grade`` (one row per subject)."""
    for side, frame in (("reference", reference), ("current", current)):
        for col in ("uscc", "grade"):
            if col not in frame.columns:
                raise ValueError(f"{side} frame has no column {col!r} (needed for grade migration)")
        if frame["uscc"].duplicated().any():
            dup = frame.loc[frame["uscc"].duplicated(), "uscc"].iloc[0]
            raise ValueError(f"{side} frame has uscc {dup} twice; one grade per subject is required")
        _check_grades(frame["grade"], grades, side)
    grades = list(grades)
    merged = reference[["uscc", "grade"]].merge(
        current[["uscc", "grade"]], on="uscc", how="outer", suffixes=("_ref", "_cur"), indicator=True
    )
    both = merged[merged["_merge"] == "both"]
    counts = (
        pd.crosstab(both["grade_ref"].astype(str), both["grade_cur"].astype(str))
        .reindex(index=grades, columns=grades, fill_value=0)
        .astype(int)
    )
    row_totals = counts.sum(axis=1)
    shares = counts.div(row_totals.where(row_totals > 0, 1), axis=0)
    entering = merged[merged["_merge"] == "right_only"]["grade_cur"].astype(str).value_counts()
    leaving = merged[merged["_merge"] == "left_only"]["grade_ref"].astype(str).value_counts()
    return GradeMigration(
        grades=grades,
        counts=counts.to_numpy().tolist(),
        row_shares=shares.to_numpy().round(6).tolist(),
        cohort_size=len(both),
        entering=int(entering.sum()),
        leaving=int(leaving.sum()),
        entering_by_grade={g: int(entering.get(g, 0)) for g in grades},
        leaving_by_grade={g: int(leaving.get(g, 0)) for g in grades},
    )
