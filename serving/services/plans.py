"""Inspection plans and their verifiable draws, as stored by the service.

The draw itself is computed by ``supervision/``; this module only persists what it returns:
a plan and its draw are written in one transaction (no plan without its commitment), and the
seed is revealed later, checked against the commitment.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy.orm import Session

from serving.db.models import Alert, Draw, InspectionResult, MonitoringResult, Plan, PromotionAudit
from serving.errors import Conflict, InvalidInput, NotFound


def seed_commitment(draw_seed: str) -> str:
    """The published commitment to a draw seed: sha256 of its UTF-8 bytes (hex)."""
    return hashlib.sha256(draw_seed.encode("utf-8")).hexdigest()


def create_plan(session: Session, *, name: str, department: str, created_by: str, payload: Mapping[str, Any],
                draw_seed_commitment: str, inputs_hash: str | None = None,
                draw_payload: Mapping[str, Any] | None = None) -> tuple[Plan, Draw]:
    """Store a plan and its committed (not yet revealed) draw in one transaction."""
    if len(draw_seed_commitment) != 64 or any(c not in "0123456789abcdef" for c in draw_seed_commitment):
        raise InvalidInput(f"draw_seed_commitment={draw_seed_commitment!r}: must be a lowercase sha256 hex "
                           "digest (64 characters)", field="draw_seed_commitment")
    try:
        plan = Plan(name=name, department=department, created_by=created_by, payload=dict(payload),
                    status="committed")
        session.add(plan)
        session.flush()
        draw = Draw(plan_id=plan.id, draw_seed_commitment=draw_seed_commitment, inputs_hash=inputs_hash,
                    payload=dict(draw_payload or {}))
        session.add(draw)
        session.commit()
    except Exception:
        session.rollback()
        raise
    return plan, draw


def reveal_draw(session: Session, draw_id: int, draw_seed: str, draw_payload: Mapping[str, Any]) -> Draw:
    """Record the revealed seed and the drawn result; the seed must match the commitment."""
    draw = session.get(Draw, draw_id)
    if draw is None:
        raise NotFound(f"no draw #{draw_id}", field="draw_id")
    if draw.draw_seed is not None:
        raise Conflict(f"draw #{draw_id} was already revealed")
    if seed_commitment(draw_seed) != draw.draw_seed_commitment:
        raise InvalidInput(f"draw_seed does not match the commitment of draw #{draw_id}", field="draw_seed")
    draw.draw_seed, draw.payload = draw_seed, dict(draw_payload)
    draw.revealed_at = dt.datetime.now(dt.UTC)
    plan = session.get(Plan, draw.plan_id)
    if plan is not None:
        plan.status = "drawn"
    session.commit()
    return draw


def store_inspection_results(session: Session, rows: Iterable[Mapping[str, Any]]) -> int:
    """Store inspection results (uscc, inspection_item, outcome, inspected_on, …); one transaction."""
    count = 0
    for row in rows:
        values = dict(row)
        payload = {k: values.pop(k) for k in list(values) if k not in
                   {"draw_id", "uscc", "inspection_item", "outcome", "inspected_on", "published_on"}}
        session.add(InspectionResult(**values, payload=payload))
        count += 1
    session.commit()
    return count


def store_monitoring(session: Session, results: Iterable[Mapping[str, Any]] = (),
                     alerts: Iterable[Mapping[str, Any]] = ()) -> tuple[int, int]:
    """Store monitoring results (kind, as_of, model_version?, payload) and alerts
    (severity, code, message, model_version?, payload?); one transaction."""
    n_results = n_alerts = 0
    for row in results:
        session.add(MonitoringResult(**dict(row)))
        n_results += 1
    for row in alerts:
        session.add(Alert(**dict(row)))
        n_alerts += 1
    session.commit()
    return n_results, n_alerts


def record_promotion(session: Session, *, model_name: str, from_version: str | None, to_version: str,
                     decided_by: str, decision: str, evidence: Mapping[str, Any]) -> PromotionAudit:
    """Audit one champion/challenger decision."""
    row = PromotionAudit(model_name=model_name, from_version=from_version, to_version=to_version,
                         decided_by=decided_by, decision=decision, evidence=dict(evidence))
    session.add(row)
    session.commit()
    return row
