"""Input and segment drift: Evidently per column, a planted sector shift invisible overall."""

from datetime import date

import numpy as np
import pandas as pd

from monitoring.alerts import AlertConfig
from monitoring.drift import evidently_drift, segment_drift
from monitoring.run import monitor
from stability.psi import decile_psi


def test_segment_drift_finds_a_shift_invisible_overall(frames_factory):
    reference = frames_factory(as_of=date(2026, 5, 31), seed=1)
    # sector K (5 % of subjects) gets much riskier: its scores drop by 1.2 standard deviations
    current = frames_factory(as_of=date(2026, 6, 30), seed=2, sector_shift={"K": -1.2})
    overall = decile_psi(reference.scores["score"], current.scores["score"]).psi
    assert overall < 0.1  # the overall distribution barely moves
    result = monitor(reference, current, run_evidently=False)
    flagged = [s for s in result.segment_drift if s.significant and s.psi > 0.2]
    assert [(s.segment_column, s.segment) for s in flagged] == [("industry", "K")]
    segment_alerts = [a for a in result.alerts if a.rule == "segment_psi"]
    assert [a.subject_of_alert for a in segment_alerts] == ["sector K"]
    assert segment_alerts[0].evidence["overall_score_psi"] == overall
    assert not [a for a in result.alerts if a.rule == "score_psi"]


def test_small_segments_are_skipped_and_noise_is_not_significant():
    rng = np.random.default_rng(3)
    ref = pd.DataFrame({"seg": rng.choice(["big", "tiny"], p=[0.97, 0.03], size=5000), "score": rng.normal(size=5000)})
    cur = pd.DataFrame({"seg": rng.choice(["big", "tiny"], p=[0.97, 0.03], size=5000), "score": rng.normal(size=5000)})
    found = segment_drift(ref, cur, segment_columns=["seg"], variables=["score"], min_segment_size=200)
    assert [s.segment for s in found] == ["big"]
    assert not found[0].significant


def test_evidently_methods_per_column_type_and_html_only_on_request(tmp_path, frames_factory):
    reference = frames_factory(n=1500, as_of=date(2026, 5, 31), seed=4)
    current = frames_factory(n=1500, as_of=date(2026, 6, 30), seed=5)
    shifted = current.profiles.assign(registered_capital=current.profiles["registered_capital"] * 3)
    cols = ["industry", "penalty_general_12m", "registered_capital"]
    results = {r.feature: r for r in evidently_drift(reference.profiles, shifted, columns=cols)}
    assert results["industry"].method == "jensenshannon"
    assert results["registered_capital"].method == "wasserstein"
    assert results["registered_capital"].drifted and not results["industry"].drifted
    assert not list(tmp_path.iterdir())
    html = tmp_path / "drift.html"
    evidently_drift(reference.profiles, shifted, columns=cols, html_path=html)
    assert html.stat().st_size > 1000


def test_feature_psi_alert_names_the_feature(frames_factory):
    reference = frames_factory(as_of=date(2026, 5, 31), seed=6)
    current = frames_factory(as_of=date(2026, 6, 30), seed=7)
    rng = np.random.default_rng(0)
    profiles = current.profiles.copy()
    # severity recoding: half of the general penalties now counted as serious
    moved = rng.binomial(profiles["penalty_general_12m"], 0.5)
    profiles["penalty_general_12m"] -= moved
    profiles["penalty_serious_12m"] += moved
    current = type(current)(as_of=current.as_of, profiles=profiles, scores=current.scores)
    result = monitor(reference, current, run_evidently=False, config=AlertConfig())
    subjects = {a.subject_of_alert for a in result.alerts if a.rule == "feature_psi"}
    assert "feature penalty_serious_12m" in subjects
    assert "feature registered_capital" not in subjects


def test_key_features_from_config_are_checked_per_segment(frames_factory, tmp_path):
    from monitoring.alerts import load_alert_config
    from monitoring.run import MonitoringFrames

    reference = frames_factory(as_of=date(2026, 5, 31), seed=8)
    current = frames_factory(as_of=date(2026, 6, 30), seed=9)
    in_k = current.profiles["industry"] == "K"
    profiles = current.profiles.assign(
        registered_capital=np.where(in_k, current.profiles["registered_capital"] * 20, current.profiles["registered_capital"]))
    current = MonitoringFrames(as_of=current.as_of, profiles=profiles, scores=current.scores)
    path = tmp_path / "alerts.toml"
    path.write_text('[segment_psi]\nkey_features = ["registered_capital"]\n[feature_psi]\nenabled = false\n', encoding="utf-8")
    result = monitor(reference, current, run_evidently=False, config=load_alert_config(path))
    fired = [a for a in result.alerts if a.rule == "segment_psi"]
    assert [(a.subject_of_alert, a.evidence["variable"]) for a in fired] == [("sector K", "registered_capital")]
