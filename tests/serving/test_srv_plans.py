"""Alerts stored by a monitoring run reach the analyst."""

from __future__ import annotations

from serving.db.tables import Alert


def test_alerts_reach_the_analyst(client, auth, session):
    session.add(Alert(severity="high", code="psi_drift", message="PSI 0.31 > 0.25"))
    session.commit()
    alerts = client.get("/api/v1/analyst/alerts", headers=auth("analyst")).json()
    assert [a["code"] for a in alerts] == ["psi_drift"]
