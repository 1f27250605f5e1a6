"""Each drift scenario is named in the manifest and visibly changes the feed (or the risk) from its date."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from sim_helpers import read

# the session's three scenario cities are generated once on one worker, not on both
pytestmark = pytest.mark.xdist_group("sim_scenarios")
DATE = pd.Timestamp("2026-01-01")


def _manifest(city) -> dict:
    return json.loads((city / "manifest.json").read_text())


def test_silent_feed_department_sends_nothing_from_the_date(scenario_cities):
    city = scenario_cities["silent_feed"]
    assert _manifest(city)["scenario"] == {"name": "silent_feed", "date": "2026-01-01", "affected_department": "ecology"}
    r = read(city, "records")
    r["decision_date"] = pd.to_datetime(r["decision_date"])
    ecology = r[r.department == "ecology"]
    assert (ecology.decision_date < DATE).all()
    assert len(ecology) > 50
    # the other departments keep sending
    assert (r.loc[r.department == "samr", "decision_date"] >= DATE).sum() > 100


def test_severity_recoding_turns_general_into_serious(scenario_cities):
    city = scenario_cities["severity_recoding"]
    assert _manifest(city)["scenario"]["affected_department"] == "samr"
    r = read(city, "records")
    r["decision_date"] = pd.to_datetime(r["decision_date"])
    pen = r[r.kind == "admin_penalty"]
    samr_after = pen[(pen.department == "samr") & (pen.decision_date >= DATE)]
    samr_before = pen[(pen.department == "samr") & (pen.decision_date < DATE)]
    assert "general" not in set(samr_after.severity) and "general" in set(samr_before.severity)
    share_after = (samr_after.severity == "serious").mean()
    assert share_after > 3 * (samr_before.severity == "serious").mean()
    others_after = pen[(pen.department != "samr") & (pen.decision_date >= DATE)]
    assert "general" in set(others_after.severity)
    # recoded records are published for the serious maximum
    serious = samr_after[samr_after.severity == "serious"]
    assert (pd.to_datetime(serious.publicity_end) == serious.decision_date + pd.DateOffset(years=3)).all()


def test_sector_shock_raises_the_true_risk_of_one_sector(scenario_cities):
    city = scenario_cities["sector_shock"]
    manifest = _manifest(city)
    assert manifest["scenario"]["affected_sector"] in ("C", "E")
    sector = manifest["scenario"]["affected_sector"]
    truth = pd.read_parquet(city / "truth" / "true_risk.parquet")
    truth["as_of"] = pd.to_datetime(truth["as_of"])
    industry = read(city, "subjects").set_index("uscc").industry
    truth["hit"] = truth.uscc.map(industry) == sector
    mean = truth.groupby(["as_of", "hit"]).p_problem_if_inspected.mean().unstack()
    ratio = mean[True] / mean[False]
    assert ratio[pd.Timestamp("2026-03-31")] > 1.5 * ratio[pd.Timestamp("2025-06-30")]


def test_baseline_manifest_names_the_scenario(dirty_csv_city):
    assert _manifest(dirty_csv_city)["scenario"] == {"name": "baseline"}
