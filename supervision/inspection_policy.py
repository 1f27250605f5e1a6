"""Inspection policy tables: grade ratios, floor, caps, frequency limits, per department and item.

Policies are TOML files (``supervision/policies/*.toml``) validated with pydantic. Every value
that is local practice (docs/domain.md §5) lives in such a file; code only enforces the rules.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from configfile import parse_toml

GRADES: tuple[str, ...] = ("A", "B", "C", "D")
POLICY_DIR = Path(__file__).parent / "policies"
# Rules added after policy hashes were first published, with the value every earlier policy
# implied. The hash leaves them out while they hold it, so plans committed before a rule existed
# still verify (docs/draw-algorithm.md §4).
IMPLIED_BEFORE_ADDED: dict[str, object] = {"lead_window_days": 365}

Grade = Literal["A", "B", "C", "D"]


def canonical_json(data: object) -> str:
    """The JSON whose bytes the draw hashes: keys sorted, separators ``,`` and ``:``, non-ASCII
    escaped as ``\\uXXXX`` (so the text is ASCII and its bytes are unambiguous)."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


class PolicyError(ValueError):
    """A policy file or override breaks a rule; the message names the field, value and rule."""


class RuleOverrides(BaseModel):
    """Any subset of the rules; used for department and item overrides."""

    model_config = ConfigDict(extra="forbid")

    floor_ratio: float | None = Field(default=None, gt=0, le=1)
    general_cap: float | None = Field(default=None, gt=0, le=1)
    a_with_lead_ratio: float | None = Field(default=None, gt=0, le=1)
    a_no_visit_without_lead: bool | None = None
    lead_window_days: int | None = Field(default=None, ge=1, le=3650)
    max_inspections_12m: int | None = Field(default=None, ge=1)
    inspectors_per_subject: int | None = Field(default=None, ge=1, le=10)
    recuse_same_district: bool | None = None
    ungraded_grade: Grade | None = None
    publication_days: int | None = Field(default=None, ge=1, le=365)
    publication_day_basis: Literal["working", "natural"] | None = None
    grade_ratios: dict[Grade, float] | None = None
    key_item: bool | None = None


class ItemRules(BaseModel):
    """The effective, fully specified rules for one department and inspection item."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    floor_ratio: float = Field(gt=0, le=1)
    general_cap: float = Field(gt=0, le=1)
    a_with_lead_ratio: float = Field(gt=0, le=1)
    a_no_visit_without_lead: bool = True
    lead_window_days: int = Field(default=365, ge=1, le=3650)
    max_inspections_12m: int = Field(ge=1)
    inspectors_per_subject: int = Field(ge=1, le=10)
    recuse_same_district: bool
    ungraded_grade: Grade
    publication_days: int = Field(ge=1, le=365)
    publication_day_basis: Literal["working", "natural"]
    grade_ratios: dict[Grade, float]
    key_item: bool = False

    @model_validator(mode="after")
    def _check_ratios(self) -> ItemRules:
        missing = [g for g in GRADES if g not in self.grade_ratios]
        if missing:
            raise ValueError(f"grade_ratios is missing grades {missing}; rule: one ratio for each of A–D")
        for grade, ratio in self.grade_ratios.items():
            if not (self.floor_ratio <= ratio <= 1):
                raise ValueError(
                    f"grade_ratios.{grade} = {ratio} is outside [floor_ratio={self.floor_ratio}, 1]; "
                    "rule: no subject is exempt (不免抽), so every ratio is at least the floor"
                )
        ordered = [self.grade_ratios[g] for g in GRADES]
        if ordered != sorted(ordered):
            raise ValueError(
                f"grade_ratios {dict(zip(GRADES, ordered, strict=True))} decrease with risk; "
                "rule: higher-risk grades are inspected at least as often (A ≤ B ≤ C ≤ D)"
            )
        if self.a_no_visit_without_lead and self.grade_ratios["A"] != self.floor_ratio:
            raise ValueError(
                f"grade_ratios.A = {self.grade_ratios['A']} differs from floor_ratio = {self.floor_ratio}; "
                "rule: with a_no_visit_without_lead (无事不扰) A subjects without a lead are drawn "
                "only at the floor rate"
            )
        if self.a_with_lead_ratio < self.floor_ratio:
            raise ValueError(
                f"a_with_lead_ratio = {self.a_with_lead_ratio} is below floor_ratio = {self.floor_ratio}"
            )
        return self


class InspectionPolicy(BaseModel):
    """A whole policy file: defaults plus per-department and per-item overrides."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    version: str = Field(min_length=1)
    defaults: ItemRules
    departments: dict[str, RuleOverrides] = Field(default_factory=dict)
    items: dict[str, RuleOverrides] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check_overrides(self) -> InspectionPolicy:
        # Validate every override combination now, so a bad file fails at load, not mid-draw.
        for dept in [None, *self.departments]:
            for item in [None, *self.items]:
                self.rules_for(dept, item)
        return self

    def rules_for(self, department: str | None, item: str | None, *, key_item: bool = False) -> ItemRules:
        """Effective rules: defaults ← department override ← item override (later wins).

        ``key_item`` comes from the items file unless the policy's item override sets it.
        """
        merged = self.defaults.model_dump()
        merged["key_item"] = key_item
        for layer in (self.departments.get(department or ""), self.items.get(item or "")):
            if layer is None:
                continue
            for field, value in layer.model_dump(exclude_none=True).items():
                if field == "grade_ratios":
                    merged["grade_ratios"] = {**merged["grade_ratios"], **value}
                else:
                    merged[field] = value
        try:
            return ItemRules(**merged)
        except ValidationError as exc:
            where = f"department={department!r}, item={item!r}"
            raise PolicyError(f"policy {self.name!r} rules for {where}: {exc}") from exc

    def policy_json(self) -> str:
        """The whole policy as canonical JSON, every rule included: what ``tiers-draw-v2`` embeds in
        a bundle and hashes byte for byte (no rule is left out, unlike :meth:`policy_hash`)."""
        return canonical_json(self.model_dump(mode="json"))

    def policy_hash(self) -> str:
        """``tiers-draw-v1``'s policy hash: SHA-256 of the canonical JSON of the policy.

        Rules of :data:`IMPLIED_BEFORE_ADDED` are left out of the defaults while they hold their
        implied value, and out of an override while it does not set them.
        """
        data = self.model_dump(mode="json")
        for field, implied in IMPLIED_BEFORE_ADDED.items():
            if data["defaults"].get(field) == implied:
                del data["defaults"][field]
            for override in (*data["departments"].values(), *data["items"].values()):
                if override.get(field) is None:
                    override.pop(field, None)
        return hashlib.sha256(canonical_json(data).encode("utf-8")).hexdigest()


def load_policy(source: str | Path = "default") -> InspectionPolicy:
    """Load and validate a policy: a bundled name (``"default"``) or a path to a TOML file."""
    path = Path(source)
    if not path.suffix:
        path = POLICY_DIR / f"{source}.toml"
    if not path.is_file():
        raise PolicyError(f"policy {str(source)!r}: file {path} does not exist")
    data = parse_toml(path.read_text(encoding="utf-8"), f"policy file {path}", PolicyError)
    return policy_from_dict(data, origin=str(path))


def policy_from_dict(data: dict, *, origin: str = "<dict>") -> InspectionPolicy:
    """Validate a policy given as a dict (e.g. embedded in a plan file)."""
    try:
        return InspectionPolicy.model_validate(data)
    except (ValidationError, PolicyError) as exc:
        raise PolicyError(f"policy {origin}: {exc}") from exc
