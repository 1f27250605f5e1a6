"""``/health``: ok, or degraded with the reasons."""

from __future__ import annotations

from fastapi import APIRouter, Request
from sqlalchemy import func, select, text

from serving.db.migrate import head_revision
from serving.db.models import Grade
from serving.deps import SessionDep, settings_of
from serving.errors import error_responses
from serving.schemas import HealthOut, ModelHealthOut

router = APIRouter(tags=["health"])


@router.get("/health", response_model=HealthOut, responses=error_responses())
def health(request: Request, session: SessionDep) -> HealthOut:
    """Database, schema and grades; and, when the service regrades, each model's served version
    against its champion (a champion that cannot be loaded makes the service degraded)."""
    reasons: list[str] = []
    revision, graded, database = None, 0, True
    try:
        session.execute(text("SELECT 1"))
        revision = session.execute(text("SELECT version_num FROM alembic_version")).scalar()
        graded = session.scalar(select(func.count(Grade.id))) or 0
    except Exception as exc:  # health must answer, whatever is broken
        database = False
        reasons.append(f"database unavailable: {type(exc).__name__}")
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
    return HealthOut(status="degraded" if reasons else "ok", reasons=reasons, database=database,
                     schema_revision=revision, grades=graded, models=models)
