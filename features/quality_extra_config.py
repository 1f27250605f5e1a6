"""Thresholds of the gate rules in :mod:`features.quality_rules_extra` (tables of ``features/quality.toml``).

Kept apart from :mod:`features.quality` so the rules module can import the finding type from there
without a cycle; :class:`features.quality.QualityConfig` holds one field per table below. A missing
table takes these defaults (fitted to the simulated city, safe in an office's first month: every
rule needing history skips a feed with less than ``history.min_months``); an unknown key is an error.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Action = Literal["hold", "warn"]


class Section(BaseModel):
    """A table of gate rules (here and in :mod:`features.quality`): frozen, an unknown key an error."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class CollapseRules(Section):
    """A column of a feed collapsing onto one value (every decision on the export day, every fine 0)."""

    columns: list[Literal["decision_date", "amount", "severity", "subkind"]] = Field(
        default_factory=lambda: ["decision_date", "amount"])
    min_rows: int = Field(10, ge=3)          # rows of the feed in the batch (and in a history month counted)
    min_share: float = Field(0.5, gt=0, le=1)  # the top value's share of the batch's feed at least this …
    ratio: float = Field(2.0, gt=1)          # … and this × the highest top-value share of any trailing month …
    alpha: float = Field(1e-6, gt=0, lt=1)   # … and improbable at that share (binomial upper tail)
    action: Action = "hold"


class SwapRules(Section):
    """Day and month exchanged for the rows whose day is ≤ 12 (a month-first parse of day-first dates)."""

    min_rows: int = Field(4, ge=1)            # rows before the batch's month whose swap lands in it …
    share: float = Field(0.08, gt=0, le=1)   # … this share of the feed's batch …
    fraction: float = Field(0.5, gt=0, le=1)  # … and of its earlier rows with day ≤ 12 (chance: ~1/12)
    action: Action = "hold"


class CutRules(Section):
    """A feed's (or the whole batch's) records stopping early in the batch's month: a file cut in the
    middle (an export sorted by date whose transfer stopped), judged by the feed's own day profile."""

    min_share: float = Field(0.2, gt=0, lt=1)   # the days after the cut held at least this share of every
    min_month_rows: int = Field(10, ge=1)       # … trailing month with this many records (at least history.min_months) …
    fraction: float = Field(0.25, gt=0, lt=1)   # … and the batch has at most this × what that share predicts …
    alpha: float = Field(1e-4, gt=0, lt=1)      # … improbably so (binomial, Bonferroni over feeds × cut days)
    action: Action = "warn"


class QuarantineRules(Section):
    """A feed whose rows in the batch were (mostly) quarantined: absent from what is published."""

    min_rows: int = Field(5, ge=1)
    share: float = Field(0.5, gt=0, le=1)     # quarantined / (quarantined + accepted) of the feed …
    rule_share: float = Field(0.2, gt=0, le=1)  # … or under one of the format rules (a swapped January goes
    format_rules: list[str] = Field(default_factory=lambda: [  # to the future): not unknown_subject, which a
        "date_invalid", "date_in_future", "date_order", "amount_negative", "amount_out_of_range",  # lagging
        "severity_invalid", "kind_unknown", "value_invalid"])  # register causes in clean months
    action: Action = "warn"


class RegisterRules(Section):
    """The subjects file against the register in the store (districts, statuses moving en masse)."""

    min_store_subjects: int = Field(50, ge=1)  # a smaller register: no register-level rule
    district_share: float = Field(0.05, gt=0, le=1)  # subjects changing district / the store's subjects
    district_min: int = Field(20, ge=1)
    new_code_min: int = Field(5, ge=1)        # subjects carrying a district code the store never had
    status_share: float = Field(0.10, gt=0, le=1)  # active subjects turned revoked/deregistered / the store's active
    status_min: int = Field(20, ge=1)
    district_action: Action = "hold"
    new_code_action: Action = "warn"
    status_action: Action = "hold"
