"""One monitoring run: reference vs current as-of date → drift, performance, data health, alerts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pandas as pd
from pydantic import BaseModel, ConfigDict

from features.quality import Finding
from monitoring.alerts import SEVERITY_ORDER, Alert, AlertConfig, load_alert_config
from monitoring.drift import EvidentlyColumnDrift, SegmentDrift, evidently_drift, segment_drift
from monitoring.feeds import feed_findings
from monitoring.flow import FlowSegment, SeverityMix, segment_flow, severity_mix
from monitoring.grades import GradeMigration, GradeShares, grade_migration, grade_shares
from monitoring.health import DataHealth, data_health
from monitoring.performance import Performance, cohort_performance
from stability.psi import PsiResult, decile_psi

#: Columns of a profile frame that are keys or bookkeeping, never monitored as features.
NON_FEATURE_COLUMNS = frozenset({
    "uscc", "as_of", "profile_hash", "name", "score", "grade", "model_grade", "p_adverse_12m", "override",
    "reasons", "model_name", "model_version",
})
#: How a segment column is named in an alert ("sector C", "district 320102").
SEGMENT_NOUNS = {"industry": "sector", "district_code": "district"}


@dataclass(frozen=True)
class MonitoringFrames:
    """What is known at one as-of date.

    ``profiles``: one row per subject (``uscc``, feature columns, segment columns such as
    ``industry`` and ``district_code``). ``scores``: ``uscc``, ``score``, ``grade`` and optionally
    ``p_adverse_12m``. Only the current side's ``outcomes`` (adverse outcome records: ``uscc``,
    ``decision_date``), ``volume`` (``department``, ``month``, ``records``), ``quarantine`` and
    ``ingested`` (see :func:`monitoring.health.data_health`) and ``records`` (decided on or before
    the as-of date; for the record-flow checks of :mod:`monitoring.flow`) are used: they are what
    has arrived by the current as-of date.
    """

    as_of: date
    profiles: pd.DataFrame
    scores: pd.DataFrame
    outcomes: pd.DataFrame | None = None
    volume: pd.DataFrame | None = None
    quarantine: pd.DataFrame | None = None
    ingested: pd.DataFrame | None = None
    records: pd.DataFrame | None = None


@dataclass(frozen=True)
class FeatureDrift:
    """Drift of one input feature: our decile PSI and Evidently's verdict (if Evidently ran)."""

    feature: str
    psi: float
    evidently_method: str | None = None
    evidently_value: float | None = None
    evidently_threshold: float | None = None
    evidently_drifted: bool | None = None


class MonitoringResult(BaseModel):
    """Everything one run found, serialisable with :meth:`to_json` for the service DB and the analyst page."""

    model_config = ConfigDict(arbitrary_types_allowed=True)
    reference_as_of: date
    current_as_of: date
    n_reference: int
    n_current: int
    feature_drift: list[FeatureDrift]
    score_psi: PsiResult
    grade_shares: GradeShares
    migration: GradeMigration
    segment_drift: list[SegmentDrift]
    segment_flow: list[FlowSegment] = []
    severity_mix: list[SeverityMix] = []
    performance: Performance | None
    data_health: DataHealth | None
    alerts: list[Alert]
    evidently_html: str | None = None

    @property
    def alerted(self) -> bool:
        return bool(self.alerts)

    def to_json(self, *, indent: int | None = None) -> str:
        """JSON of the whole result (dates ISO, NaN as null)."""
        return self.model_dump_json(indent=indent)


def _check_frames(frames: MonitoringFrames, side: str) -> None:
    for name, frame, cols in (
        ("profiles", frames.profiles, ("uscc",)),
        ("scores", frames.scores, ("uscc", "score", "grade")),
    ):
        missing = [c for c in cols if c not in frame.columns]
        if missing:
            raise ValueError(f"{side} {name} frame has no column(s) {missing}")
        if frame["uscc"].duplicated().any():
            raise ValueError(f"{side} {name} frame has duplicate uscc values; one row per subject is required")


def monitor(
    reference: MonitoringFrames,
    current: MonitoringFrames,
    *,
    config: AlertConfig | None = None,
    features: Sequence[str] | None = None,
    segment_features: Sequence[str] | None = None,
    expected_auc: float | None = None,
    score_higher_is_safer: bool = True,
    run_evidently: bool = True,
    evidently_sample: int | None = 50_000,
    html_path: Path | None = None,
    seed: int = 0,
) -> MonitoringResult:
    """Compare the current as-of date with the reference and fire the configured alerts.

    ``features`` defaults to every non-key profile column. Evidently runs on at most
    ``evidently_sample`` rows per side (a seeded sample: its per-column distances are stable long
    before a million rows); our PSI always uses every row. The Evidently HTML is written only when
    ``html_path`` is given. ``expected_auc`` (the model's validation AUC) enables the AUC-drop rule.
    ``segment_features`` (default: the config's ``segment_psi.key_features``) are checked per
    segment besides the score.
    """
    if current.as_of <= reference.as_of:
        raise ValueError(f"current as_of {current.as_of} must be after the reference as_of {reference.as_of}")
    _check_frames(reference, "reference")
    _check_frames(current, "current")
    config = config or load_alert_config()
    if features is None:
        features = [c for c in reference.profiles.columns if c not in NON_FEATURE_COLUMNS]
    missing = [f for f in features if f not in current.profiles.columns]
    if missing:
        raise ValueError(f"current profiles lack the features {missing} present in the reference")
    features = list(features)

    psi_by_feature = {f: decile_psi(reference.profiles[f], current.profiles[f]).psi for f in features}
    evidently_by_feature: dict[str, EvidentlyColumnDrift] = {}
    html_written: str | None = None
    if run_evidently and features:
        def _sample(frame: pd.DataFrame) -> pd.DataFrame:
            if evidently_sample is None or len(frame) <= evidently_sample:
                return frame
            return frame.sample(n=evidently_sample, random_state=seed)

        evidently_results = evidently_drift(
            _sample(reference.profiles), _sample(current.profiles), columns=features, html_path=html_path
        )
        evidently_by_feature = {r.feature: r for r in evidently_results}
        html_written = str(html_path) if html_path is not None else None
    feature_drift = []
    for f in features:
        ev = evidently_by_feature.get(f)
        feature_drift.append(
            FeatureDrift(
                feature=f,
                psi=psi_by_feature[f],
                evidently_method=ev.method if ev else None,
                evidently_value=ev.value if ev else None,
                evidently_threshold=ev.threshold if ev else None,
                evidently_drifted=ev.drifted if ev else None,
            )
        )

    score_psi = decile_psi(reference.scores["score"], current.scores["score"], categorical=False)
    shares = grade_shares(reference.scores["grade"], current.scores["grade"])
    migration = grade_migration(reference.scores, current.scores)

    seg_rule = config.segment_psi
    segment_features = list(seg_rule.key_features if segment_features is None else segment_features)
    seg_cols = [c for c in seg_rule.segment_columns if c in reference.profiles.columns and c in current.profiles.columns]
    ref_seg = reference.profiles[["uscc", *seg_cols, *segment_features]].merge(reference.scores[["uscc", "score"]], on="uscc")
    cur_seg = current.profiles[["uscc", *seg_cols, *segment_features]].merge(current.scores[["uscc", "score"]], on="uscc")
    segments = segment_drift(
        ref_seg, cur_seg, segment_columns=seg_cols, variables=["score", *segment_features],
        min_segment_size=seg_rule.min_segment_size, alpha=seg_rule.alpha,
    )

    flows: list[FlowSegment] = []
    mixes: list[SeverityMix] = []
    if current.records is not None:
        fr = config.segment_flow
        segments_now = current.profiles[["uscc", *seg_cols]]
        flows = segment_flow(
            current.records, segments_now, as_of=current.as_of, segment_columns=seg_cols,
            trailing_months=fr.trailing_months, min_ratio=fr.min_ratio, min_trailing_mean=fr.min_trailing_mean,
            alpha=fr.alpha,
        )
        sr = config.severity_mix
        mixes = severity_mix(
            current.records, as_of=current.as_of, trailing_months=sr.trailing_months, min_records=sr.min_records,
            min_points=sr.min_points, alpha=sr.alpha,
        )

    feeds = []
    if current.records is not None and config.feed_quality.enabled:
        feeds = feed_findings(current.records, as_of=current.as_of, subjects=current.profiles)

    performance = None
    if current.outcomes is not None:
        performance = cohort_performance(
            reference.scores, current.outcomes, reference_as_of=reference.as_of, observed_until=current.as_of,
            score_higher_is_safer=score_higher_is_safer,
        )

    health = None
    if current.volume is not None:
        fr = config.silent_feed
        health = data_health(
            current.volume, as_of=current.as_of, quarantine=current.quarantine, ingested=current.ingested,
            trailing_months=fr.trailing_months, fraction_of_median=fr.fraction_of_median,
            min_history_months=fr.min_history_months, min_median_records=fr.min_median_records,
        )

    alerts = evaluate_alerts(
        config,
        feature_drift=feature_drift,
        score_psi=score_psi,
        grade_shares=shares,
        segments=segments,
        flows=flows,
        mixes=mixes,
        performance=performance,
        health=health,
        expected_auc=expected_auc,
        feeds=feeds,
    )
    return MonitoringResult(
        reference_as_of=reference.as_of,
        current_as_of=current.as_of,
        n_reference=len(reference.scores),
        n_current=len(current.scores),
        feature_drift=feature_drift,
        score_psi=score_psi,
        grade_shares=shares,
        migration=migration,
        segment_drift=segments,
        segment_flow=flows,
        severity_mix=mixes,
        performance=performance,
        data_health=health,
        alerts=alerts,
        evidently_html=html_written,
    )


def evaluate_alerts(
    config: AlertConfig,
    *,
    feature_drift: Sequence[FeatureDrift],
    score_psi: PsiResult,
    grade_shares: GradeShares,
    segments: Sequence[SegmentDrift],
    performance: Performance | None,
    health: DataHealth | None,
    flows: Sequence[FlowSegment] = (),
    mixes: Sequence[SeverityMix] = (),
    expected_auc: float | None = None,
    feeds: Sequence[Finding] = (),
) -> list[Alert]:
    """Apply every enabled rule of ``config``; alerts are sorted most severe first."""
    alerts: list[Alert] = []
    rule = config.score_psi
    if rule.enabled and score_psi.psi > rule.threshold:
        alerts.append(Alert(rule="score_psi", severity=rule.severity, subject_of_alert="score",
                            evidence={"observed": score_psi.psi, "threshold": rule.threshold,
                                      "n_reference": score_psi.n_reference, "n_current": score_psi.n_current}))
    rule = config.grade_share
    if rule.enabled:
        for g in grade_shares.grades:
            moved = grade_shares.points_moved[g]
            if abs(moved) > rule.max_points:
                alerts.append(Alert(rule="grade_share", severity=rule.severity, subject_of_alert=f"grade {g}",
                                    evidence={"observed": moved, "threshold": rule.max_points,
                                              "reference_share": grade_shares.reference[g],
                                              "current_share": grade_shares.current[g]}))
    rule = config.feature_psi
    if rule.enabled:
        for fd in feature_drift:
            if fd.psi > rule.threshold:
                alerts.append(Alert(rule="feature_psi", severity=rule.severity, subject_of_alert=f"feature {fd.feature}",
                                    evidence={"observed": fd.psi, "threshold": rule.threshold,
                                              "evidently_method": fd.evidently_method,
                                              "evidently_value": fd.evidently_value}))
    rule = config.evidently_drift_share
    judged = [fd for fd in feature_drift if fd.evidently_drifted is not None]
    if rule.enabled and judged:
        drifted = [fd.feature for fd in judged if fd.evidently_drifted]
        share = len(drifted) / len(judged)
        if share > rule.threshold:
            alerts.append(Alert(rule="evidently_drift_share", severity=rule.severity, subject_of_alert="input features",
                                evidence={"observed": share, "threshold": rule.threshold, "drifted": drifted}))
    rule = config.segment_psi
    if rule.enabled:
        for sd in segments:
            if sd.significant and sd.psi > rule.threshold:
                noun = SEGMENT_NOUNS.get(sd.segment_column, sd.segment_column)
                alerts.append(Alert(rule="segment_psi", severity=rule.severity, subject_of_alert=f"{noun} {sd.segment}",
                                    evidence={"observed": sd.psi, "threshold": rule.threshold, "variable": sd.variable,
                                              "p_value": sd.p_value, "alpha": rule.alpha,
                                              "n_reference": sd.n_reference, "n_current": sd.n_current,
                                              "min_segment_size": rule.min_segment_size,
                                              "overall_score_psi": score_psi.psi}))
    rule = config.segment_flow
    if rule.enabled:
        for fl in flows:
            if fl.significant:
                noun = SEGMENT_NOUNS.get(fl.segment_column, fl.segment_column)
                alerts.append(Alert(rule="segment_flow", severity=rule.severity, subject_of_alert=f"{noun} {fl.segment}",
                                    evidence={"observed": fl.ratio, "threshold": rule.min_ratio,
                                              "subjects": fl.subjects, "trailing_mean": fl.trailing_mean,
                                              "p_value": fl.p_value, "alpha": rule.alpha, "month": fl.month}))
    rule = config.severity_mix
    if rule.enabled:
        psi_of = {fd.feature: fd.psi for fd in feature_drift}
        for mix in mixes:
            if mix.significant:
                worst = max(mix.points_moved, key=lambda s: abs(mix.points_moved[s]))
                alerts.append(Alert(rule="severity_mix", severity=rule.severity,
                                    subject_of_alert=f"severity coding of department {mix.department}",
                                    evidence={"observed": mix.points_moved[worst], "threshold": rule.min_points,
                                              "severity": worst, "current_shares": mix.current_shares,
                                              "trailing_shares": mix.trailing_shares, "n_current": mix.n_current,
                                              "p_value": mix.p_value, "month": mix.month,
                                              "severity_features_psi": {f: psi_of.get(f) for f in rule.severity_features}}))
    rule = config.auc_drop
    if (rule.enabled and performance is not None and performance.auc is not None and expected_auc is not None
            and performance.n_adverse >= rule.min_adverse and performance.maturity >= rule.min_maturity
            and expected_auc > performance.auc.upper):
        severity = "warning" if performance.provisional and rule.severity == "critical" else rule.severity
        alerts.append(Alert(rule="auc_drop", severity=severity, subject_of_alert="model discrimination",
                            evidence={"observed": performance.auc.auc, "threshold": expected_auc,
                                      "interval": [performance.auc.lower, performance.auc.upper],
                                      "confidence": performance.auc.confidence, "n_adverse": performance.n_adverse,
                                      "maturity": performance.maturity, "provisional": performance.provisional}))
    if health is not None:
        rule = config.silent_feed
        if rule.enabled:
            for feed in health.feeds:
                if feed.silent:
                    alerts.append(Alert(rule="silent_feed", severity=rule.severity,
                                        subject_of_alert=f"department {feed.department}",
                                        evidence={"observed": feed.records,
                                                  "threshold": rule.fraction_of_median * feed.trailing_median,
                                                  "trailing_median": feed.trailing_median,
                                                  "fraction_of_median": rule.fraction_of_median,
                                                  "month": health.month}))
        rule = config.quarantine_share
        if rule.enabled and health.quarantine_share > rule.threshold:
            alerts.append(Alert(rule="quarantine_share", severity=rule.severity, subject_of_alert="ingestion",
                                evidence={"observed": health.quarantine_share, "threshold": rule.threshold,
                                          "quarantined": health.quarantined, "ingested": health.ingested,
                                          "month": health.month,
                                          "by_department": health.quarantine_share_by_department}))
    rule = config.feed_quality
    for f in feeds:
        alerts.append(Alert(rule=f"feed_{f.rule}", severity=rule.hold_severity if f.action == "hold" else rule.severity,
                            subject_of_alert=f"feed {f.feed}",
                            evidence={"observed": f.observed, "threshold": f.threshold, "examples": f.examples,
                                      "message": f.message, "message_en": f.message_en, **f.detail}))
    return sorted(alerts, key=lambda a: -SEVERITY_ORDER[a.severity])
