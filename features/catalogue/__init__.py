"""The catalogue policy: which record kinds count, how much, for how long, and what exempts them.

The policy is dated, versioned configuration in TOML (``features/catalogue/default.toml``), validated
with pydantic when loaded so a wrong file fails with the field, the value and the rule. Everything
in ``features`` that depends on policy takes a :class:`Policy` argument; nothing reads it globally.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import pandas as pd
from dateutil.relativedelta import relativedelta
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from configfile import describe, load_toml
from features.schema import INDUSTRY_SECTIONS as GBT4754_SECTIONS  # GB/T 4754-2017 sections, one list
from features.schema import SEVERITY_VALUES as SEVERITIES

Severity = Literal["minor", "general", "serious"]
SEVERITY_RANK = {"minor": 1, "general": 2, "serious": 3}


class PolicyError(ValueError):
    """The policy file is missing, not TOML, or breaks a rule of the policy schema."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PublicityPeriod(_Strict):
    """Publicity of one penalty severity under one set of rules, in months from the decision date."""

    published: bool = True
    min_months: int = Field(ge=0, le=120)
    max_months: int = Field(ge=0, le=120)

    @model_validator(mode="after")
    def _min_not_after_max(self) -> PublicityPeriod:
        if self.min_months > self.max_months:
            raise ValueError(f"min_months {self.min_months} is greater than max_months {self.max_months}")
        return self


class PublicityRule(_Strict):
    """The publicity periods that apply to decisions taken on or after ``effective_from``."""

    effective_from: date
    name: str
    minor: PublicityPeriod
    general: PublicityPeriod
    serious: PublicityPeriod

    def period(self, severity: str) -> PublicityPeriod:
        return getattr(self, severity)


class KindRule(_Strict):
    """How one record kind of the catalogue is treated."""

    polarity: Literal["negative", "positive", "neutral"]
    weight: float = Field(default=0.0, ge=0)
    legal_basis_required: bool = False
    severity_required: bool = False
    # How long a record without a statutory publicity period counts (None: until it ends).
    window_months: int | None = Field(default=None, ge=1, le=120)
    repairable: bool = False
    # Earliest repair, in months after the decision, for kinds without a publicity rule.
    repair_min_months: int | None = Field(default=None, ge=0, le=120)


class Policy(_Strict):
    """A validated catalogue policy. Use :func:`load_policy` to read one."""

    version: str
    issued_on: date
    description: str = ""
    decay_half_life_days: float = Field(gt=0)
    thin_file_min_records: int = Field(ge=0)
    repaired_counts: bool = False
    minor_penalty_counts: bool = False
    self_declared_requires_verification: bool = True
    commitment_fulfilment_allowed: bool = False
    exemption_reasons: tuple[str, ...]
    severity_weights: dict[Severity, float]
    publicity_rules: tuple[PublicityRule, ...] = Field(min_length=1)
    kinds: dict[str, KindRule] = Field(min_length=1)
    sectors: dict[str, dict[str, Any]] = Field(default_factory=dict)

    @field_validator("severity_weights")
    @classmethod
    def _all_severities(cls, value: dict[str, float]) -> dict[str, float]:
        missing = set(SEVERITIES) - set(value)
        if missing:
            raise ValueError(f"severity_weights lacks {sorted(missing)}; every severity needs a weight")
        if any(w < 0 for w in value.values()):
            raise ValueError("severity weights must be ≥ 0")
        return value

    @field_validator("publicity_rules")
    @classmethod
    def _sorted_rules(cls, value: tuple[PublicityRule, ...]) -> tuple[PublicityRule, ...]:
        dates = [r.effective_from for r in value]
        if len(set(dates)) != len(dates):
            raise ValueError("two publicity_rules share the same effective_from")
        return tuple(sorted(value, key=lambda r: r.effective_from))

    @field_validator("sectors")
    @classmethod
    def _known_sections(cls, value: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        unknown = [s for s in value if s not in GBT4754_SECTIONS]
        if unknown:
            raise ValueError(f"sector overrides {unknown} are not GB/T 4754-2017 sections A–T")
        return value

    @model_validator(mode="after")
    def _sector_overrides_valid(self) -> Policy:
        for section in self.sectors:
            self.for_sector(section)  # raises if an override breaks the schema
        if "admin_penalty" not in self.kinds:
            raise ValueError("kinds must include admin_penalty (publicity rules apply to it)")
        return self

    # --- derived views -------------------------------------------------------------------
    @property
    def legal_basis_kinds(self) -> frozenset[str]:
        """Kinds whose records need a legal-basis document number (marked † in the contract)."""
        return frozenset(k for k, rule in self.kinds.items() if rule.legal_basis_required)

    def for_sector(self, section: str | None) -> Policy:
        """The policy with ``section``'s overrides merged in (the policy itself if none)."""
        if section is None or section not in self.sectors:
            return self
        base = self.model_dump()
        merged = _deep_merge(base, self.sectors[section])
        merged["sectors"] = {}
        merged["version"] = f"{self.version}+sector-{section}"
        try:
            return Policy.model_validate(merged)
        except ValidationError as exc:
            raise PolicyError(f"sector {section} override is invalid: {describe(exc)}") from exc

    def publicity_rule_for(self, decision_date: date) -> PublicityRule:
        """The rule in force on ``decision_date`` (the earliest rule for older decisions)."""
        applicable = [r for r in self.publicity_rules if r.effective_from <= decision_date]
        return applicable[-1] if applicable else self.publicity_rules[0]

    def publicity_window(self, kind: str, severity: str | None, decision_date: date) -> tuple[date, date | None]:
        """``(min_end, max_end)`` of a record's publicity / counting period.

        For penalties, the dated publicity rule of the severity: repair may be applied for from
        ``min_end``; the record stops counting on ``max_end``. An unpublished minor penalty gives
        ``(decision_date, decision_date)``. For other kinds, ``min_end`` is the earliest repair and
        ``max_end`` the end of ``window_months`` (None: counts until the record itself ends).
        """
        rule = self.kinds.get(kind)
        if rule is None:
            raise PolicyError(f"kind {kind!r} is not in the catalogue of policy {self.version}")
        if kind == "admin_penalty":
            if severity not in SEVERITY_RANK:
                raise PolicyError(f"severity {severity!r} of a penalty must be one of {SEVERITIES}")
            period = self.publicity_rule_for(decision_date).period(severity)
            if not period.published:
                return decision_date, decision_date
            return (
                decision_date + relativedelta(months=period.min_months),
                decision_date + relativedelta(months=period.max_months),
            )
        min_end = decision_date + relativedelta(months=rule.repair_min_months or 0)
        max_end = decision_date + relativedelta(months=rule.window_months) if rule.window_months else None
        return min_end, max_end

    def repair_eligible_on(self, record: Mapping[str, Any]) -> date | None:
        """First date a repair of ``record`` may be decided, or None if it cannot be repaired.

        Non-repairable kinds, exempted records (they never count) and unpublished minor penalties
        (nothing to repair) give None.
        """
        kind = record.get("kind")
        rule = self.kinds.get(str(kind))
        if rule is None or not rule.repairable or _present(record.get("exemption")):
            return None
        decision = _as_date(record.get("decision_date"))
        if decision is None:
            return None
        severity = record.get("severity") if _present(record.get("severity")) else None
        if kind == "admin_penalty":
            if severity not in SEVERITY_RANK:
                return None
            if not self.publicity_rule_for(decision).period(severity).published:
                return None
        min_end, _ = self.publicity_window(str(kind), severity, decision)
        return min_end

    # --- tables handed to the profile SQL (one definition, two engines) --------------------
    def kind_table(self) -> pd.DataFrame:
        """One row per kind: polarity, weight, window_months, legal_basis_required."""
        return pd.DataFrame(
            [
                {
                    "kind": kind,
                    "polarity": rule.polarity,
                    "kind_weight": float(rule.weight),
                    "window_months": rule.window_months,
                    "legal_basis_required": rule.legal_basis_required,
                }
                for kind, rule in self.kinds.items()
            ]
        ).astype({"window_months": "Int64"})

    def publicity_table(self) -> pd.DataFrame:
        """One row per (rule period, severity): valid_from/valid_to of decisions and months."""
        rows = []
        rules = self.publicity_rules
        for i, rule in enumerate(rules):
            # The earliest rule also governs decisions before it took effect.
            valid_from = date(1900, 1, 1) if i == 0 else rule.effective_from
            valid_to = rules[i + 1].effective_from if i + 1 < len(rules) else date(9999, 12, 31)
            for severity in SEVERITIES:
                period = rule.period(severity)
                rows.append(
                    {
                        "valid_from": valid_from,
                        "valid_to": valid_to,
                        "severity": severity,
                        "severity_weight": float(self.severity_weights[severity]),
                        "severity_rank": SEVERITY_RANK[severity],
                        "published": period.published,
                        "min_months": period.min_months,
                        "max_months": period.max_months,
                    }
                )
        return pd.DataFrame(rows)


def _deep_merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _present(value: Any) -> bool:
    if value is None:
        return False
    try:
        if pd.isna(value):
            return False
    except (TypeError, ValueError):
        pass
    return str(value) != ""


def _as_date(value: Any) -> date | None:
    if not _present(value):
        return None
    if isinstance(value, pd.Timestamp):
        return value.date()
    if isinstance(value, date):
        return value if type(value) is date else date(value.year, value.month, value.day)
    return date.fromisoformat(str(value)[:10])


def load_policy(path: str | Path | None = None) -> Policy:
    """Read and validate a policy TOML file (the packaged default when ``path`` is None).

    Raises :class:`PolicyError` naming the field, the value and the broken rule.
    """
    if path is None:
        text = resources.files("features.catalogue").joinpath("default.toml").read_text(encoding="utf-8")
        source = "features/catalogue/default.toml"
    else:
        source = str(path)
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise PolicyError(f"policy file {source} cannot be read: {exc}") from exc
    return load_toml(text, Policy, f"policy file {source}", PolicyError)


@cache
def default_policy() -> Policy:
    """The packaged default policy (immutable, so caching it is not shared mutable state)."""
    return load_policy(None)


def publicity_window(
    kind: str, severity: str | None, decision_date: date, policy: Policy | None = None
) -> tuple[date, date | None]:
    """``(min_end, max_end)`` of a record under ``policy`` (default policy if None)."""
    return (policy or default_policy()).publicity_window(kind, severity, decision_date)


def repair_eligible_on(record: Mapping[str, Any], policy: Policy | None = None) -> date | None:
    """First date ``record`` may be repaired under ``policy`` (default policy if None)."""
    return (policy or default_policy()).repair_eligible_on(record)


__all__ = [
    "SEVERITIES",
    "SEVERITY_RANK",
    "KindRule",
    "Policy",
    "PolicyError",
    "PublicityPeriod",
    "PublicityRule",
    "default_policy",
    "load_policy",
    "publicity_window",
    "repair_eligible_on",
]
