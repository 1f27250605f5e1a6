"""The runner: JSON for the analyst page, Evidently HTML only on request, input checks."""

import json
from datetime import date

import pytest

from monitoring.run import MonitoringFrames, monitor


def test_result_json_has_the_chart_data(frames_factory, tmp_path):
    reference = frames_factory(n=1500, as_of=date(2026, 5, 31), seed=1)
    current = frames_factory(n=1500, as_of=date(2026, 6, 30), seed=2, uscc_offset=100)
    result = monitor(reference, current)
    payload = json.loads(result.to_json())
    assert payload["reference_as_of"] == "2026-05-31"
    assert {f["feature"] for f in payload["feature_drift"]} == {
        "industry", "district_code", "penalty_general_12m", "penalty_serious_12m", "registered_capital"}
    assert all(f["evidently_method"] for f in payload["feature_drift"])
    assert set(payload["grade_shares"]["points_moved"]) == {"A", "B", "C", "D"}
    migration = payload["migration"]
    assert (migration["entering"], migration["leaving"], migration["cohort_size"]) == (100, 100, 1400)
    assert payload["evidently_html"] is None and not list(tmp_path.iterdir())
    html = tmp_path / "artifacts" / "drift.html"
    with_html = monitor(reference, current, html_path=html)
    assert with_html.evidently_html == str(html) and html.exists()


def test_current_must_follow_reference(frames_factory):
    reference = frames_factory(n=300, as_of=date(2026, 5, 31), seed=1)
    with pytest.raises(ValueError, match="must be after the reference as_of 2026-05-31"):
        monitor(reference, reference)


def test_missing_score_column_is_named(frames_factory):
    reference = frames_factory(n=300, as_of=date(2026, 5, 31), seed=1)
    current = frames_factory(n=300, as_of=date(2026, 6, 30), seed=2)
    broken = MonitoringFrames(as_of=current.as_of, profiles=current.profiles, scores=current.scores.drop(columns="grade"))
    with pytest.raises(ValueError, match=r"current scores frame has no column\(s\) \['grade'\]"):
        monitor(reference, broken)
