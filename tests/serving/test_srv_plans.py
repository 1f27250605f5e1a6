"""Plans and draws: stored atomically; a revealed seed must match its commitment."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from serving.db.models import Draw, Plan
from serving.errors import InvalidInput
from serving.services.plans import create_plan, reveal_draw, store_monitoring
from supervision.draw import seed_commitment

SEED = bytes(range(32))


def test_plan_and_draw_commit_then_reveal(session):
    # one commitment rule (supervision.draw): SHA-256 of the 32 seed bytes, revealed as hex, as
    # `tiers plan commit` and the service's drawn plans store it
    plan, draw = create_plan(session, name="2026Q4 食品抽查", department="samr", created_by="reg_samr",
                             payload={"ratios": {"A": 0.03}}, draw_seed_commitment=seed_commitment(SEED))
    assert plan.status == "committed" and draw.draw_seed is None
    with pytest.raises(InvalidInput):
        reveal_draw(session, draw.id, bytes(32).hex(), {"subjects": []})
    with pytest.raises(InvalidInput, match="64 hexadecimal"):
        reveal_draw(session, draw.id, "s3cret", {"subjects": []})
    revealed = reveal_draw(session, draw.id, SEED.hex(), {"subjects": ["x"]})
    assert revealed.draw_seed == SEED.hex() and session.get(Plan, plan.id).status == "drawn"


def test_bad_commitment_stores_nothing(session):
    with pytest.raises(InvalidInput):
        create_plan(session, name="p", department="samr", created_by="u", payload={}, draw_seed_commitment="abc")
    assert session.scalar(select(func.count(Plan.id))) == 0 and session.scalar(select(func.count(Draw.id))) == 0


def test_alerts_reach_the_analyst(client, auth, session):
    store_monitoring(session, alerts=[{"severity": "high", "code": "psi_drift", "message": "PSI 0.31 > 0.25"}])
    alerts = client.get("/api/v1/analyst/alerts", headers=auth("analyst")).json()
    assert [a["code"] for a in alerts] == ["psi_drift"]
