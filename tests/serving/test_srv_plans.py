"""Plans and draws: stored atomically; a revealed seed must match its commitment."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from serving.db.models import Draw, Plan
from serving.errors import InvalidInput
from serving.services.plans import create_plan, reveal_draw, seed_commitment, store_monitoring


def test_plan_and_draw_commit_then_reveal(session):
    plan, draw = create_plan(session, name="2026Q4 食品抽查", department="samr", created_by="reg_samr",
                             payload={"ratios": {"A": 0.03}}, draw_seed_commitment=seed_commitment("s3cret"))
    assert plan.status == "committed" and draw.draw_seed is None
    with pytest.raises(InvalidInput):
        reveal_draw(session, draw.id, "another seed", {"subjects": []})
    revealed = reveal_draw(session, draw.id, "s3cret", {"subjects": ["x"]})
    assert revealed.draw_seed == "s3cret" and session.get(Plan, plan.id).status == "drawn"


def test_bad_commitment_stores_nothing(session):
    with pytest.raises(InvalidInput):
        create_plan(session, name="p", department="samr", created_by="u", payload={}, draw_seed_commitment="abc")
    assert session.scalar(select(func.count(Plan.id))) == 0 and session.scalar(select(func.count(Draw.id))) == 0


def test_alerts_reach_the_analyst(client, auth, session):
    store_monitoring(session, alerts=[{"severity": "high", "code": "psi_drift", "message": "PSI 0.31 > 0.25"}])
    alerts = client.get("/api/v1/analyst/alerts", headers=auth("analyst")).json()
    assert [a["code"] for a in alerts] == ["psi_drift"]
