"""Alert rules: thresholds come from the TOML config, and no alert exists without evidence."""

import json
from datetime import date

import numpy as np
import pandas as pd
import pydantic
import pytest

from monitoring.alerts import Alert, AlertConfig, AlertConfigError, load_alert_config
from monitoring.run import MonitoringFrames, monitor


def test_packaged_config_is_valid_and_matches_the_model_defaults():
    assert load_alert_config() == AlertConfig()


def test_alert_without_evidence_is_refused():
    with pytest.raises(pydantic.ValidationError, match="observed"):
        Alert(rule="score_psi", severity="critical", subject_of_alert="score", evidence={})
    with pytest.raises(pydantic.ValidationError, match="threshold"):
        Alert(rule="score_psi", severity="critical", subject_of_alert="score", evidence={"observed": 0.3})


def test_bad_config_names_field_value_and_rule(refused_toml):
    refused_toml(load_alert_config, AlertConfigError, "[score_psi]\nthreshold = -1\n",
                 r"score_psi\.threshold = -1: .*greater than 0")
    refused_toml(load_alert_config, AlertConfigError, "[score_psi]\nthreshhold = 0.3\n", "threshhold")
    refused_toml(load_alert_config, AlertConfigError, "[feature_psi]\nseverity = 'loud'\n",
                 r"feature_psi\.severity = 'loud'")


def _shifted(frames_factory, shift, reference_as_of=date(2026, 5, 31)):
    reference = frames_factory(as_of=reference_as_of, seed=11)
    current = frames_factory(as_of=date(2026, 6, 30), seed=12)
    score = current.scores["score"] + shift
    grade = np.select([score >= 620, score >= 570, score >= 520], ["A", "B", "C"], "D")
    scores = current.scores.assign(score=score, grade=grade)
    return reference, MonitoringFrames(as_of=current.as_of, profiles=current.profiles, scores=scores)


def test_thresholds_come_from_config(tmp_path, frames_factory):
    reference, current = _shifted(frames_factory, shift=12.0)  # a quarter standard deviation
    default = monitor(reference, current, run_evidently=False)
    assert not [a for a in default.alerts if a.rule == "score_psi"]
    path = tmp_path / "strict.toml"
    path.write_text("[score_psi]\nthreshold = 0.02\nseverity = 'info'\n[grade_share]\nenabled = false\n", encoding="utf-8")
    strict = monitor(reference, current, run_evidently=False, config=load_alert_config(path))
    fired = [a for a in strict.alerts if a.rule == "score_psi"]
    assert len(fired) == 1 and fired[0].severity == "info"
    assert fired[0].evidence["threshold"] == 0.02 and fired[0].evidence["observed"] > 0.02
    assert not [a for a in strict.alerts if a.rule == "grade_share"]


def test_every_fired_alert_carries_its_numbers(frames_factory):
    reference, current = _shifted(frames_factory, shift=40.0, reference_as_of=date(2025, 12, 31))
    outcomes = pd.DataFrame({"uscc": reference.scores["uscc"].sample(300, random_state=0),
                             "decision_date": pd.Timestamp("2026-03-15")})
    current = MonitoringFrames(as_of=current.as_of, profiles=current.profiles, scores=current.scores, outcomes=outcomes)
    result = monitor(reference, current, run_evidently=False, expected_auc=0.8)
    rules = {a.rule for a in result.alerts}
    assert {"score_psi", "grade_share", "auc_drop"} <= rules
    for alert in result.alerts:
        assert isinstance(alert.evidence["observed"], int | float)
        assert alert.evidence["threshold"] is not None
    # random outcomes: AUC near 0.5, interval far below the expected 0.8; labels immature → warning
    auc_alert = next(a for a in result.alerts if a.rule == "auc_drop")
    assert auc_alert.severity == "warning" and auc_alert.evidence["provisional"] is True
    assert auc_alert.evidence["interval"][1] < 0.8
    assert json.loads(result.to_json())["alerts"][0]["evidence"]


def test_identical_months_raise_no_alert(frames_factory):
    reference = frames_factory(as_of=date(2026, 5, 31), seed=21)
    current = frames_factory(as_of=date(2026, 6, 30), seed=22)
    assert monitor(reference, current).alerts == []
