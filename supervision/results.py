"""Inspection results (一公开): recording, publication deadlines, the public table, and records.

Results become contract records of kind ``inspection`` so the next profiles use them: the loop
closes. The public table never shows a grade (grades are not published, docs/domain.md §3).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator

from supervision.workdays import add_working_days
from uscc import is_valid_uscc

Outcome = Literal["no_problem", "corrected", "case_opened"]
OUTCOME_ZH: dict[str, str] = {
    "no_problem": "未发现问题",
    "corrected": "发现问题已责令改正",
    "case_opened": "发现问题已立案",
}
# Contract `records` columns (docs/data-contract.md), in order.
RECORD_COLUMNS = (
    "record_id", "uscc", "kind", "subkind", "severity", "decision_date", "end_date", "publicity_end",
    "amount", "department", "document_no", "ref_record_id", "verified", "verified_on", "exemption",
    "inspection_item", "description",
)  # fmt: skip


class CalendarFallbackWarning(UserWarning):
    """A date lies outside the statutory calendar's years; Monday–Friday was used instead."""


class InspectionResult(BaseModel):
    """The outcome of one item inspected at one subject."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    plan_id: str = Field(min_length=1)
    uscc: str
    department: str = Field(min_length=1)
    inspection_item: str = Field(min_length=1)
    inspected_on: dt.date
    outcome: Outcome
    document_no: str = Field(default="", description="the inspection's document number, if any")
    description: str = ""
    published_on: dt.date | None = None

    @field_validator("uscc")
    @classmethod
    def _valid_uscc(cls, value: str) -> str:
        if not is_valid_uscc(value):
            raise ValueError(f"uscc {value!r} fails the GB 32100-2015 check; rule: valid 18-character code")
        return value

    @field_validator("published_on")
    @classmethod
    def _not_before(cls, value: dt.date | None, info) -> dt.date | None:
        inspected = info.data.get("inspected_on")
        if value is not None and inspected is not None and value < inspected:
            raise ValueError(f"published_on {value} is before inspected_on {inspected}")
        return value


def publication_deadline(
    inspected_on: dt.date, *, days: int = 20, basis: Literal["working", "natural"] = "natural"
) -> dt.date:
    """Last day to publish a result: ``days`` natural or working days after the inspection.

    Working days follow the Chinese statutory calendar (chinesecalendar), falling back to
    Monday–Friday with a ``CalendarFallbackWarning`` for years it does not cover.
    """
    if days < 1:
        raise ValueError(f"days = {days}; rule: at least 1")
    if basis == "natural":
        return inspected_on + dt.timedelta(days=days)
    day, approximate = add_working_days(inspected_on, days)
    if approximate:  # one warning per call, not one per day
        warnings.warn(f"{inspected_on} to {day}: the statutory calendar does not cover every year; counted "
                      "Monday–Friday as working days where it does not", CalendarFallbackWarning, stacklevel=2)
    return day


def publication_status(
    result: InspectionResult,
    *,
    today: dt.date,
    days: int = 20,
    basis: Literal["working", "natural"] = "natural",
) -> Literal["published", "published_late", "pending", "overdue"]:
    """Where a result stands against its publication deadline on ``today``."""
    deadline = publication_deadline(result.inspected_on, days=days, basis=basis)
    if result.published_on is not None:
        return "published" if result.published_on <= deadline else "published_late"
    return "pending" if today <= deadline else "overdue"


def publish_results(
    results: Iterable[InspectionResult], *, names: dict[str, str] | None = None
) -> pd.DataFrame:
    """The public table (一公开) of published results: no grade, no personal data."""
    names = names or {}
    rows = [
        {
            "uscc": r.uscc,
            "name": names.get(r.uscc, ""),
            "department": r.department,
            "inspection_item": r.inspection_item,
            "inspected_on": r.inspected_on.isoformat(),
            "outcome": r.outcome,
            "outcome_zh": OUTCOME_ZH[r.outcome],
            "document_no": r.document_no,
            "published_on": r.published_on.isoformat() if r.published_on else "",
        }
        for r in results
        if r.published_on is not None
    ]
    columns = ["uscc", "name", "department", "inspection_item", "inspected_on", "outcome", "outcome_zh",
               "document_no", "published_on"]  # fmt: skip
    return pd.DataFrame(rows, columns=columns).sort_values(["inspected_on", "uscc"], ignore_index=True)


def write_public_results_csv(
    results: Iterable[InspectionResult], path: str | Path, *, names: dict[str, str] | None = None
) -> Path:
    """Write the public table as UTF-8 CSV (with BOM, for Excel), cells neutralised against formula
    injection (``supervision.export.neutralise_cell``)."""
    from supervision.export import write_csv

    return write_csv(publish_results(results, names=names), path)


def inspection_record_id(result: InspectionResult) -> str:
    """Stable record id: ``RI`` + 12 hex of SHA-256(plan, uscc, department, item, date)."""
    key = "|".join(
        [result.plan_id, result.uscc, result.department, result.inspection_item, str(result.inspected_on)]
    )
    return "RI" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:12].upper()


def results_to_records(results: Iterable[InspectionResult]) -> pd.DataFrame:
    """Contract ``records`` rows of kind ``inspection`` (decision_date = inspection date)."""
    rows = []
    for r in results:
        row = dict.fromkeys(RECORD_COLUMNS, "")
        row.update(
            record_id=inspection_record_id(r),
            uscc=r.uscc,
            kind="inspection",
            subkind=r.outcome,
            decision_date=r.inspected_on.isoformat(),
            department=r.department,
            document_no=r.document_no,
            inspection_item=r.inspection_item,
            description=r.description or f"双随机抽查：{OUTCOME_ZH[r.outcome]}",
        )
        rows.append(row)
    frame = pd.DataFrame(rows, columns=list(RECORD_COLUMNS))
    if frame["record_id"].duplicated().any():
        dup = frame.loc[frame["record_id"].duplicated(), "record_id"].iloc[0]
        raise ValueError(f"record_id {dup} appears twice: the same inspection was recorded twice")
    return frame
