"""Scenario validation (issue 8): each injected drift raises the alert naming its cause in the
first monthly run after the change; the baseline raises none. The 5-seed × 6-month false-alarm
study is benchmarks/monitor_false_alarms.py."""

import json
from datetime import date

import pytest
from mon_scenario_city import ScenarioCity, simulate_store

# the module's four simulated, ingested cities are built once (one worker, not both)
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("mon_scenarios")]

# the scenarios start on 2026-01-01: the first monthly run after the change is January's
BEFORE, FIRST_RUN = date(2025, 12, 31), date(2026, 1, 31)
# A shocked sector of a 3,000-subject city has ~20 subjects with a negative record a month, too few
# for its first month to stand out from the noise (a 1.5× rise happens by chance in baseline
# districts); at 8,000 subjects the first month is clear. benchmarks/monitor_false_alarms.py
# measures both sizes.
CITY_SIZE = {"baseline": 3000, "sector_shock": 8000, "silent_feed": 3000, "severity_recoding": 3000}


@pytest.fixture(scope="module")
def first_runs(tmp_path_factory):
    """Monitoring result of the first monthly run after the change, per scenario, with the manifest."""
    work = tmp_path_factory.mktemp("scenarios")
    out = {}
    for scenario in ("baseline", "sector_shock", "silent_feed", "severity_recoding"):
        store = simulate_store(work, scenario=scenario, seed=3, n_subjects=CITY_SIZE[scenario])
        manifest = json.loads((work / f"city_{scenario}_3" / "manifest.json").read_text(encoding="utf-8"))
        city = ScenarioCity(store, train_as_of=date(2024, 12, 31))
        out[scenario] = (city.run(BEFORE, FIRST_RUN, run_evidently=False), manifest["scenario"])
    return out


def _subjects(result, rules):
    return {a.subject_of_alert for a in result.alerts if a.rule in rules}


def test_sector_shock_raises_segment_drift_in_that_sector(first_runs):
    result, scenario = first_runs["sector_shock"]
    assert f"sector {scenario['affected_sector']}" in _subjects(result, {"segment_flow", "segment_psi"})
    # no other sector is blamed
    sectors = {s for s in _subjects(result, {"segment_flow", "segment_psi"}) if s.startswith("sector ")}
    assert sectors == {f"sector {scenario['affected_sector']}"}


def test_silent_feed_raises_data_health_alert_for_that_department(first_runs):
    result, scenario = first_runs["silent_feed"]
    assert _subjects(result, {"silent_feed"}) == {f"department {scenario['affected_department']}"}


def test_severity_recoding_raises_severity_drift_for_that_department(first_runs):
    result, scenario = first_runs["severity_recoding"]
    alerts = [a for a in result.alerts if a.rule == "severity_mix"]
    assert [a.subject_of_alert for a in alerts] == [f"severity coding of department {scenario['affected_department']}"]
    evidence = alerts[0].evidence
    assert evidence["severity"] in ("general", "serious") and abs(evidence["observed"]) > evidence["threshold"]
    assert set(evidence["severity_features_psi"]) == {"n_serious_penalty_36m", "max_penalty_severity"}


def test_baseline_raises_no_alert(first_runs):
    result, _ = first_runs["baseline"]
    assert result.alerts == []
