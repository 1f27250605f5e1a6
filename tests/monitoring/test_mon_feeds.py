"""Monitoring's feed view (monitoring.feeds, the gates' rules on a month): a unit change the decile
PSI of fines misses alerts, naming the feed; a clean month of a simulated city alerts nothing."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from features.quality import QualityConfig
from monitoring.alerts import AlertConfig
from monitoring.feeds import feed_findings
from monitoring.run import evaluate_alerts
from simulation import SimulationConfig, generate

# the module's simulated city is generated once on one worker, not on both
pytestmark = pytest.mark.xdist_group("mon_feeds")

AS_OF = date(2026, 9, 30)


@pytest.fixture(scope="module")
def city(tmp_path_factory):
    root = tmp_path_factory.mktemp("feeds")
    generate(SimulationConfig(n_subjects=2000, seed=21, dirt=False, years=2, end=AS_OF), root)
    records = pd.read_csv(root / "records.csv", dtype=str, keep_default_na=False).replace("", None)
    subjects = pd.read_csv(root / "subjects.csv", dtype=str)
    return records, subjects


def test_a_clean_month_has_no_feed_finding(city):
    records, subjects = city
    assert feed_findings(records, as_of=AS_OF, subjects=subjects, config=QualityConfig()) == []


def test_a_unit_switch_in_one_month_alerts_critical_with_the_feed(city):
    records, subjects = city
    wrong = records.copy()
    in_month = wrong["decision_date"].str.startswith("2026-09")
    amounts = pd.to_numeric(wrong["amount"], errors="coerce")
    feed = wrong[in_month & (amounts > 0)].groupby(["department", "kind"]).size().idxmax()
    hit = in_month & (wrong["department"] == feed[0]) & (wrong["kind"] == feed[1])
    wrong.loc[hit, "amount"] = amounts[hit] * 10_000
    findings = feed_findings(wrong, as_of=AS_OF, subjects=subjects)
    assert [(f.rule, f.feed) for f in findings] == [("amount_unit", "/".join(feed))]
    config = AlertConfig()
    alerts = evaluate_alerts(config, feature_drift=[], score_psi=_no_psi(), grade_shares=_no_shares(),
                             segments=[], performance=None, health=None, feeds=findings)
    assert [(a.rule, a.severity) for a in alerts] == [("feed_amount_unit", "critical")]
    assert alerts[0].evidence["observed"] == pytest.approx(4, abs=0.25) and alerts[0].evidence["examples"]


def _no_psi():
    from stability.psi import decile_psi

    s = pd.Series(range(100), dtype=float)
    return decile_psi(s, s)


def _no_shares():
    from monitoring.grades import grade_shares

    g = pd.Series(list("ABCD") * 25)
    return grade_shares(g, g)
