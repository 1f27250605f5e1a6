"""Metadata the models receive as arguments: feature descriptions and the records behind them.

`models/` never imports `features/`; the training layer converts `FEATURE_SPECS` and
`records_behind(...)` into these small dataclasses.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

GRADES: tuple[str, ...] = ("A", "B", "C", "D")
GRADE_LABELS_ZH: dict[str, str] = {"A": "信用风险低", "B": "信用风险一般", "C": "信用风险较高", "D": "信用风险高"}
GRADE_LABELS_EN: dict[str, str] = {"A": "low risk", "B": "average risk", "C": "elevated risk", "D": "high risk"}


@dataclass(frozen=True)
class FeatureMeta:
    """One feature as the models see it.

    `monotone` is the declared direction of risk: +1 = a higher value never lowers the risk,
    -1 = a higher value never raises it, 0 = no constraint. `reason` says why (shown to
    reviewers). `template_zh` / `template_en` render a reason code; they may use the fields
    `{value}`, `{effect}` (raises or lowers the credit risk, in the template's language),
    `{yes_no}` (for 0/1 flags), `{percent}` (for shares); `missing_zh` / `missing_en` (with
    `{effect}`) say what a missing value means, `{label_zh}`, `{label_en}`. `actionable` = the subject can change it itself
    (repair, commitments, settling arrears); only actionable features appear in what-if.
    """

    name: str
    label_zh: str
    label_en: str
    monotone: int = 0
    reason: str = ""
    actionable: bool = False
    categorical: bool = False
    template_zh: str | None = None
    template_en: str | None = None
    missing_zh: str | None = None
    missing_en: str | None = None

    def __post_init__(self) -> None:
        if self.monotone not in (-1, 0, 1):
            raise ValueError(f"FeatureMeta {self.name!r}: monotone={self.monotone!r} must be -1, 0 or +1")


@dataclass(frozen=True)
class Evidence:
    """A public credit record behind a feature value (cited in a reason code)."""

    record_id: str
    kind: str
    decision_date: str
    department: str
    document_no: str = ""

    @classmethod
    def from_mapping(cls, row: Mapping[str, Any]) -> Evidence:
        """Build from a dict such as a row of `records_behind(...)`; missing fields become ''."""
        return cls(
            record_id=str(row.get("record_id", "")),
            kind=str(row.get("kind", "")),
            decision_date=str(row.get("decision_date", "") or ""),
            department=str(row.get("department", "") or ""),
            document_no=str(row.get("document_no", "") or ""),
        )


def as_evidence(items: Iterable[Evidence | Mapping[str, Any]] | None) -> list[Evidence]:
    """Normalise evidence given as dataclasses or dicts."""
    if not items:
        return []
    return [it if isinstance(it, Evidence) else Evidence.from_mapping(it) for it in items]


def monotone_map(metas: Iterable[FeatureMeta] | None) -> dict[str, int]:
    """Feature name → declared direction."""
    return {m.name: m.monotone for m in metas or ()}
