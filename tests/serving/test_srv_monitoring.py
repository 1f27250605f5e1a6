"""Monitoring in the service: a real ``monitor(...)`` result stored → API → analyst page."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st
from srv_fixtures import TODAY, principal

from monitoring.inputs import frames_at
from monitoring.run import MonitoringFrames, monitor
from serving.app import create_app
from serving.deps import SESSION_COOKIE, get_today
from serving.keys import with_keys
from serving.security import create_access_token
from serving.services import monitoring as mon
from serving.settings import Settings

# the module's drifted monitoring run (Evidently's HTML) is made once on one worker, not on both
pytestmark = pytest.mark.xdist_group("srv_monitoring")

REF, CUR = date(2026, 6, 30), date(2026, 9, 30)


def _frames(as_of: date, *, n: int, seed: int, shift: float) -> MonitoringFrames:
    rng = np.random.default_rng(seed)
    profiles = pd.DataFrame({
        "uscc": [f"U{i:07d}" for i in range(n)],
        "industry": rng.choice(list("CFG"), size=n),
        "district_code": rng.choice(["320102", "320104"], size=n),
        "n_general_penalty_12m": rng.poisson(0.4 + shift, size=n),  # a feature of the specs: named on the pages
        "registered_capital": rng.lognormal(4, 1.5, size=n),
    })
    score = 600 + 50 * rng.normal(size=n) - 60 * shift
    scores = pd.DataFrame({"uscc": profiles["uscc"], "score": score,
                           "grade": np.select([score >= 620, score >= 570, score >= 520], ["A", "B", "C"], "D")})
    return frames_at(as_of, profiles=profiles, scores=scores)


@pytest.fixture(scope="module")
def drifted_result(tmp_path_factory):
    """A run whose current date drifted hard (score PSI and feature PSI alerts), with Evidently's HTML."""
    html = tmp_path_factory.mktemp("ev") / "report.html"
    result = monitor(_frames(REF, n=600, seed=1, shift=0.0), _frames(CUR, n=600, seed=2, shift=1.5),
                     html_path=html)
    return result, html


@pytest.fixture
def mon_settings(database_url, tmp_path) -> Settings:
    return Settings(database_url=database_url, run_migrations_on_startup=False, data_dir=tmp_path / "data")


@pytest.fixture
def mon_client(mon_settings) -> TestClient:
    application = create_app(mon_settings)
    application.dependency_overrides[get_today] = lambda: TODAY
    return TestClient(application)


def _headers(settings: Settings, username: str) -> dict[str, str]:
    token, _ = create_access_token(principal(username), with_keys(settings).jwt_key, 30)
    return {"Authorization": f"Bearer {token}"}


def _cookie_client(client: TestClient, settings: Settings, username: str) -> TestClient:
    token, _ = create_access_token(principal(username), with_keys(settings).jwt_key, 30)
    client.cookies.set(SESSION_COOKIE, token)
    return client


@pytest.fixture
def stored(session, mon_settings, drifted_result) -> int:
    result, html = drifted_result
    return mon.store_result(session, result, model_version="tiers-general/3", report_html=html,
                            artifact_dir=mon_settings.data_dir)


def test_store_api_round_trip_keeps_result_and_evidence(stored, mon_client, mon_settings, drifted_result):
    result, _ = drifted_result
    assert result.alerts, "the fixture must drift enough to fire alerts"
    h = _headers(mon_settings, "analyst")
    runs = mon_client.get("/api/v1/analyst/monitoring", headers=h).json()
    assert [r["id"] for r in runs] == [stored]
    assert runs[0]["n_alerts"] == len(result.alerts) and runs[0]["has_report"]
    assert runs[0]["score_psi"] == pytest.approx(result.score_psi.psi)
    detail = mon_client.get(f"/api/v1/analyst/monitoring/{stored}", headers=h).json()
    assert detail["result"]["reference_as_of"] == REF.isoformat()
    assert detail["result"]["current_as_of"] == CUR.isoformat()
    assert detail["result"]["grade_shares"]["current"] == pytest.approx(result.grade_shares.current)
    assert len(detail["result"]["feature_drift"]) == len(result.feature_drift)
    alerts = mon_client.get("/api/v1/analyst/alerts", params={"monitoring_id": stored}, headers=h).json()
    assert sorted(a["code"] for a in alerts) == sorted(a.rule for a in result.alerts)
    for a in alerts:
        assert {"observed", "threshold"} <= set(a["evidence"]) and a["subject_of_alert"]
    critical = mon_client.get("/api/v1/analyst/alerts", params={"severity": "critical"}, headers=h).json()
    assert critical and all(a["severity"] == "critical" for a in critical)
    assert mon_client.get("/api/v1/analyst/alerts", params={"monitoring_id": stored + 1}, headers=h).json() == []


def test_report_download_is_the_evidently_html_as_attachment(stored, mon_client, mon_settings, drifted_result):
    _, html = drifted_result
    r = mon_client.get(f"/api/v1/analyst/monitoring/{stored}/report.html", headers=_headers(mon_settings, "admin"))
    assert r.status_code == 200
    assert r.headers["content-disposition"].startswith("attachment")
    assert r.content == html.read_bytes()
    # the artifact lives under the data dir, not where monitor() wrote it
    assert (mon_settings.data_dir / "monitoring" / f"{stored}.html").is_file()


@pytest.mark.parametrize("username", ["ent1", "reg_samr", "sector_c"])
def test_non_analysts_are_refused(stored, mon_client, mon_settings, username):
    h = _headers(mon_settings, username)
    for url in ("/api/v1/analyst/monitoring", f"/api/v1/analyst/monitoring/{stored}",
                f"/api/v1/analyst/monitoring/{stored}/report.html", "/api/v1/analyst/alerts"):
        assert mon_client.get(url, headers=h).status_code == 403, url


def test_unknown_run_is_404(stored, mon_client, mon_settings):
    h = _headers(mon_settings, "analyst")
    r = mon_client.get(f"/api/v1/analyst/monitoring/{stored + 7}", headers=h)
    assert r.status_code == 404 and r.json()["error"]["code"] == "unknown_monitoring_run"


def test_page_draws_svg_charts_and_chinese_alerts(stored, mon_client, mon_settings, drifted_result):
    result, _ = drifted_result
    client = _cookie_client(mon_client, mon_settings, "analyst")
    r = client.get("/analyst/monitoring", follow_redirects=True)
    assert r.status_code == 200 and r.url.path == f"/analyst/monitoring/{stored}"
    page = r.text
    assert page.count("<svg") >= 2 and 'class="threshold"' in page
    assert "信用分分布漂移" in page  # the score-PSI alert, in Chinese by default
    assert page.count('class="severity-') == len(result.alerts)
    assert 'id="migration"' in page and f'href="/analyst/monitoring/{stored}/report.html"' in page
    report = client.get(f"/analyst/monitoring/{stored}/report.html")  # the page's link: the session cookie
    assert report.status_code == 200 and report.headers["content-disposition"].startswith("attachment")
    assert len(page) < 200_000  # charts from the JSON, not the Evidently report embedded
    english = client.get(f"/analyst/monitoring/{stored}?lang=en").text
    assert "score distribution drift" in english and "信用分分布漂移" not in english


def test_alert_lists_name_rules_and_features_not_codes(stored, mon_client, mon_settings):
    """Review17b (smaller): the analyst's alert list showed the rule's code (score_psi,
    feature_psi) and a drifted feature by its code (特征 n_penalty_36m), where the charts name it."""
    import html
    import re

    client = _cookie_client(mon_client, mon_settings, "analyst")
    code = re.compile(r"\b[a-z]+(?:_[a-z0-9]+)+\b")  # snake_case: a rule's or a feature's code
    for path, table in (("/analyst", "alerts"), (f"/analyst/monitoring/{stored}", "run-alerts")):
        page = client.get(path).text
        rows = re.search(rf'<table id="{table}">.*?</table>', page, re.S).group(0)
        rows = re.sub(r"<details>.*?</details>", " ", rows, flags=re.S)  # the evidence, as stored, is apart
        text = html.unescape(re.sub(r"<[^>]+>", " ", rows))
        assert "输入特征漂移" in text and not code.search(text), (path, code.findall(text)[:5])


def test_volume_chart_heads_each_department_by_its_name():
    """Review17b (smaller): the data-health chart headed its small multiples "samr", "tax" …"""
    svg = str(mon.volume_small_multiples_svg({"samr": {"2026-08": 3, "2026-09": 0}}, title="t", silent=["samr"]))
    assert "南京市市场监督管理局<title>samr</title>" in svg
    assert "Market Regulation" in str(mon.volume_small_multiples_svg({"samr": {"2026-09": 1}}, title="t", lang="en"))


def test_enterprise_cannot_open_the_page(stored, mon_client, mon_settings):
    client = _cookie_client(mon_client, mon_settings, "ent1")
    assert client.get(f"/analyst/monitoring/{stored}").status_code == 403


def test_alert_without_evidence_is_refused(session, mon_settings, drifted_result):
    result, _ = drifted_result
    broken = result.model_copy(update={"alerts": [result.alerts[0].model_copy(update={"evidence": {"observed": 1}})]})
    with pytest.raises(ValueError, match="no evidence"):
        mon.store_result(session, broken)
    assert mon.list_runs(session) == []


def test_provisional_performance_is_flagged_on_the_page(session, mon_client, mon_settings):
    ref, cur = _frames(REF, n=300, seed=3, shift=0.0), _frames(CUR, n=300, seed=4, shift=0.0)
    outcomes = pd.DataFrame({"uscc": ref.scores["uscc"].iloc[:40], "decision_date": pd.Timestamp("2026-08-15")})
    cur = MonitoringFrames(as_of=CUR, profiles=cur.profiles, scores=cur.scores, outcomes=outcomes)
    result = monitor(ref, cur, run_evidently=False)
    assert result.performance is not None and result.performance.provisional
    run_id = mon.store_result(session, result)
    page = _cookie_client(mon_client, mon_settings, "analyst").get(f"/analyst/monitoring/{run_id}").text
    assert 'id="provisional"' in page and "暂定" in page
    assert 'id="report-link"' not in page  # no report stored for this run


@given(values=st.lists(st.floats(0, 3), min_size=1, max_size=8), threshold=st.floats(0.01, 1))
def test_psi_bars_mark_exactly_the_bars_above_threshold(values, threshold):
    svg = str(mon.psi_bars_svg([(f"f{i}", v) for i, v in enumerate(values)], threshold=threshold, title="t"))
    assert svg.count('fill="#c62828"') == sum(v > threshold for v in values)
    assert svg.count("<rect") == len(values)


def test_psi_bars_are_labelled_in_the_page_language_with_the_code_in_the_tooltip():
    items = [("score", 0.01), ("n_penalty_36m", 0.3), ("not_a_feature", 0.02)]
    zh = str(mon.psi_bars_svg(items, threshold=0.2, title="t", lang="zh"))
    en = str(mon.psi_bars_svg(items, threshold=0.2, title="t", lang="en"))
    assert ">近36个月行政处罚次数<title>n_penalty_36m</title>" in zh
    assert ">administrative penalties in last 36 months<title>n_penalty_36m</title>" in en
    assert ">信用分<title>score</title>" in zh and ">Score<title>score</title>" in en
    assert ">not_a_feature<title>" in zh  # an unknown code is shown as it is, never dropped
