"""A sector department's training policy: features to exclude, direct grading, target grade shares.

Read from a TOML file the department brings (``tiers train --policy FILE``) and validated with
pydantic, so a wrong file fails naming the field, the value and the rule. Example::

    sector = "H"
    min_positives = 300
    exclude_features = ["complaints_12m"]

    [target_shares]          # must sum to 1
    A = 0.65
    B = 0.25
    C = 0.08
    D = 0.02

    [[direct_grading]]       # 直接判级 (fields of models.grading.OverrideRule)
    rule_id = "serious_dishonesty"
    column = "on_serious_dishonesty_list"
    op = "truthy"
    grade = "D"              # or min_grade = "C": at least this bad
    reason_zh = "列入严重失信主体名单"
    reason_en = "on the serious dishonesty list"
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from configfile import load_toml
from features.schema import INDUSTRY_SECTIONS as GBT4754_SECTIONS  # GB/T 4754-2017 sections, one list
from models.grading import DEFAULT_SHARES, OverrideRule

# Default grade mix: Dandong 2023 (A 65.4 %, B 25.3 %, C 7.7 %, D 1.5 %), rounded (local practice).
DEFAULT_TARGET_SHARES: dict[str, float] = dict(DEFAULT_SHARES)


class PolicyFileError(ValueError):
    """The sector policy file is missing, not TOML, or breaks a rule of the schema."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DirectGrading(_Strict):
    rule_id: str = Field(min_length=1)
    column: str = Field(min_length=1)
    op: Literal[">", ">=", "<", "<=", "==", "!=", "in", "truthy"] = "truthy"
    value: float | bool | str | list[float | str] = True
    grade: Literal["A", "B", "C", "D"] | None = None
    min_grade: Literal["A", "B", "C", "D"] | None = None
    reason_zh: str = Field(min_length=1)
    reason_en: str = ""

    @model_validator(mode="after")
    def _one_grade(self) -> DirectGrading:
        if (self.grade is None) == (self.min_grade is None):
            raise ValueError(f"rule {self.rule_id!r}: set exactly one of grade / min_grade")
        return self


class TrainingPolicy(_Strict):
    """Validated training policy of one sector (or of the general model when ``sector`` is None)."""

    sector: str | None = None
    min_positives: int | None = Field(default=None, ge=1)
    exclude_features: tuple[str, ...] = ()
    target_shares: dict[Literal["A", "B", "C", "D"], float] = Field(
        default_factory=lambda: dict(DEFAULT_TARGET_SHARES)
    )
    direct_grading: tuple[DirectGrading, ...] = ()

    @field_validator("sector")
    @classmethod
    def _section(cls, value: str | None) -> str | None:
        if value is not None and value not in GBT4754_SECTIONS:
            raise ValueError(f"sector {value!r} is not a GB/T 4754-2017 section A–T")
        return value

    @field_validator("target_shares")
    @classmethod
    def _shares(cls, value: dict[str, float]) -> dict[str, float]:
        missing = {"A", "B", "C", "D"} - set(value)
        if missing:
            raise ValueError(f"target_shares lacks grades {sorted(missing)}")
        if any(v < 0 for v in value.values()):
            raise ValueError(f"target_shares {value} must all be ≥ 0")
        total = sum(value.values())
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"target_shares sum to {total:.4f}; they must sum to 1")
        return value

    def rules(self) -> tuple[OverrideRule, ...]:
        """The direct-grading rules as `models.grading.OverrideRule`."""
        out = []
        for r in self.direct_grading:
            fields = r.model_dump()
            if isinstance(fields["value"], list):
                fields["value"] = tuple(fields["value"])
            out.append(OverrideRule(**fields))
        return tuple(out)


def load_training_policy(path: str | Path) -> TrainingPolicy:
    """Read and validate a sector policy TOML file; errors name the field, the value and the rule."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise PolicyFileError(f"policy file {p} does not exist") from exc
    return load_toml(text, TrainingPolicy, f"policy file {p}", PolicyFileError)
