"""``/health``: ok or degraded for anyone (a liveness probe); the reasons and details for admins."""

from __future__ import annotations

from fastapi import APIRouter, Request
from sqlalchemy import exists, func, select, text
from sqlalchemy.orm import Session

from serving.db.migrate import head_revision
from serving.db.tables import CurrentGrade, Grade
from serving.deps import SessionDep, checked_principal, settings_of
from serving.errors import NotAuthenticated, error_responses
from serving.routes._routers import CallerFirstRoute
from serving.schemas import HealthOut, ModelHealthOut

router = APIRouter(tags=["health"], route_class=CallerFirstRoute)


@router.get("/health", response_model=HealthOut, response_model_exclude_unset=True, responses=error_responses())
def health(request: Request, session: SessionDep) -> HealthOut:
    """``status`` ok or degraded. With an admin's bearer token or API key also why (database,
    schema and grades; and, when the service regrades, each model's served version against its
    champion: a champion that cannot be loaded makes the service degraded). Never 401: without
    (valid) credentials the answer is the status alone."""
    reasons: list[str] = []
    revision, graded, database = None, 0, True
    try:
        session.execute(text("SELECT 1"))
        revision = session.execute(text("SELECT version_num FROM alembic_version")).scalar()
        # whether any grade is stored: one index probe (a count of the history is an admin's detail)
        graded = int(bool(session.scalar(select(exists().where(Grade.id.is_not(None))))))
    except Exception as exc:  # health must answer, whatever is broken
        database = False
        reasons.append(f"database unavailable: {type(exc).__name__}")
        session.rollback()
    if database and revision != head_revision():
        reasons.append(f"schema at revision {revision}, code expects {head_revision()}: run `tiers db upgrade`")
    if database and graded == 0:
        reasons.append("no grades stored yet: run the pipeline")
    models: list[ModelHealthOut] = []
    holder = getattr(request.app.state, "model_holder", None)
    if holder is not None:
        for model in holder.health(max_age_s=settings_of(request).health_model_check_s):
            models.append(ModelHealthOut(name=model.name, alias=model.alias, version=model.served_version,
                                         champion_version=model.champion_version, loaded_at=model.loaded_at,
                                         degraded=model.degraded, reason=model.reason))
            if model.degraded:
                reasons.append(f"model {model.reason}")
    status = "degraded" if reasons else "ok"
    if not (database and _is_admin(request, session)):
        return HealthOut(status=status)
    graded = session.scalar(select(func.count()).select_from(CurrentGrade)) or 0  # subjects graded
    return HealthOut(status=status, reasons=reasons, database=database, schema_revision=revision, grades=graded,
                     models=models)


def _is_admin(request: Request, session: Session) -> bool:
    try:
        return checked_principal(request, session).role == "admin"
    except NotAuthenticated:
        return False
