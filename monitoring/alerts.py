"""Alert rules: thresholds from a validated TOML file, firings with their evidence.

Every :class:`Alert` carries the numbers that made it fire and the threshold it crossed
(``evidence["observed"]`` and ``evidence["threshold"]`` are mandatory): no alert without evidence.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from configfile import load_toml_file

Severity = Literal["info", "warning", "critical"]
SEVERITY_ORDER: dict[str, int] = {"info": 0, "warning": 1, "critical": 2}


class _Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    enabled: bool = True
    severity: Severity = "warning"


class ScorePsiRule(_Rule):
    severity: Severity = "critical"
    threshold: float = Field(0.2, gt=0)


class GradeShareRule(_Rule):
    max_points: float = Field(5.0, gt=0, le=100)


class FeaturePsiRule(_Rule):
    threshold: float = Field(0.25, gt=0)


class SegmentPsiRule(_Rule):
    threshold: float = Field(0.2, gt=0)
    min_segment_size: int = Field(200, ge=20)
    alpha: float = Field(0.01, gt=0, lt=1)
    segment_columns: list[str] = Field(default_factory=lambda: ["industry", "district_code"])
    key_features: list[str] = Field(default_factory=list)


class EvidentlyDriftShareRule(_Rule):
    enabled: bool = False
    severity: Severity = "info"
    threshold: float = Field(0.5, gt=0, le=1)


class AucDropRule(_Rule):
    severity: Severity = "critical"
    min_adverse: int = Field(30, ge=1)
    min_maturity: float = Field(0.25, ge=0, le=1)


class SilentFeedRule(_Rule):
    severity: Severity = "critical"
    fraction_of_median: float = Field(0.10, gt=0, lt=1)
    trailing_months: int = Field(12, ge=2, le=60)
    min_history_months: int = Field(3, ge=1)
    min_median_records: float = Field(20, ge=0)


class QuarantineShareRule(_Rule):
    threshold: float = Field(0.05, gt=0, lt=1)


class SegmentFlowRule(_Rule):
    min_ratio: float = Field(1.5, gt=1)
    alpha: float = Field(0.01, gt=0, lt=1)
    min_trailing_mean: float = Field(5.0, ge=0)
    trailing_months: int = Field(12, ge=2, le=60)


class SeverityMixRule(_Rule):
    min_points: float = Field(10.0, gt=0, le=100)
    alpha: float = Field(0.01, gt=0, lt=1)
    min_records: int = Field(15, ge=1)
    trailing_months: int = Field(12, ge=2, le=60)
    severity_features: list[str] = Field(default_factory=lambda: ["n_serious_penalty_36m", "max_penalty_severity"])


class FeedQualityRule(_Rule):
    """The ingestion gates' rules (features/quality.toml) on the month's records, per feed: a finding
    that would hold a batch alerts as ``hold_severity``, a warning as ``severity``."""

    hold_severity: Severity = "critical"


class AlertConfig(BaseModel):
    """All alert rules; a missing table takes the rule's defaults, an unknown key is an error."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    score_psi: ScorePsiRule = ScorePsiRule()
    grade_share: GradeShareRule = GradeShareRule()
    feature_psi: FeaturePsiRule = FeaturePsiRule()
    segment_psi: SegmentPsiRule = SegmentPsiRule()
    evidently_drift_share: EvidentlyDriftShareRule = EvidentlyDriftShareRule()
    auc_drop: AucDropRule = AucDropRule()
    silent_feed: SilentFeedRule = SilentFeedRule()
    quarantine_share: QuarantineShareRule = QuarantineShareRule()
    segment_flow: SegmentFlowRule = SegmentFlowRule()
    severity_mix: SeverityMixRule = SeverityMixRule()
    feed_quality: FeedQualityRule = FeedQualityRule()


class AlertConfigError(ValueError):
    """The alert TOML is unreadable or breaks a rule; the message names the field, value and rule."""


def load_alert_config(path: Path | str | None = None) -> AlertConfig:
    """Read and validate alert thresholds from ``path`` (default: the packaged ``alerts.toml``)."""
    return load_toml_file(AlertConfig, path, package="monitoring", name="alerts.toml", label="alert config",
                          error=AlertConfigError)


class Alert(BaseModel):
    """One firing of a rule about one subject of alert (a feature, a segment, a department, …)."""

    model_config = ConfigDict(frozen=True)
    rule: str
    severity: Severity
    subject_of_alert: str = Field(min_length=1)
    evidence: dict[str, Any]

    @field_validator("evidence")
    @classmethod
    def _evidence_has_numbers(cls, evidence: dict[str, Any]) -> dict[str, Any]:
        missing = [k for k in ("observed", "threshold") if k not in evidence]
        if missing:
            raise ValueError(f"evidence {evidence!r} lacks {missing}: an alert must show what it saw and the threshold")
        return evidence
