"""Promote a registered version to champion through training's gate, audited in the service
database (the one promotion audit, with the pages' and the API's promotions)."""

from __future__ import annotations

from typing import Any


def audit_session(settings: Any) -> Any:
    """A session on the service database, migrated first when the settings say so (as at startup)."""
    from serving.db.migrate import upgrade
    from serving.db.session import iter_session

    if settings.run_migrations_on_startup:
        upgrade(settings.database_url)
    return next(iter_session(settings.database_url))


def promote_audited(settings: Any, registry: Any, name: str, version: int, *, user: str, reason: str,
                    force: bool = False, thresholds: Any = None) -> Any:
    """Promote through the gate as `tiers promote` does, audited in the settings' database
    (`serving.services.model_registry.promote_through_gate`, the pages' and the API's one run too).

    The database is opened on the first audit event only, so a bad name or version never touches
    it. Returns the `PromotionOutcome`; raises as `promote` does (`PromotionRefused`, ValueError,
    MLflow's error for an unknown version).
    """
    from serving.services.model_registry import promote_through_gate

    sessions: list[Any] = []

    def opened() -> Any:
        sessions.append(audit_session(settings))
        return sessions[-1]

    try:
        return promote_through_gate(opened, registry, name, version, user=user, reason=reason, force=force,
                                    thresholds=thresholds)
    finally:
        for session in sessions:
            session.close()


def promotion_entries(settings: Any, *, model: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
    """The promotion audit, newest first: `tiers promote`'s, the pages' and the API's attempts."""
    from serving.services.model_registry import promotion_audit

    session = audit_session(settings)
    try:
        rows = promotion_audit(session, model=model)[:limit]
        return [{"at": r.created_at.isoformat(timespec="seconds") if r.created_at else None,
                 "model": r.model_name, "from_version": r.from_version, "to_version": r.to_version,
                 "decision": r.decision, "decided_by": r.decided_by, "reason": r.evidence.get("reason", ""),
                 "gate_passed": r.evidence.get("gate_passed")} for r in rows]
    finally:
        session.close()
