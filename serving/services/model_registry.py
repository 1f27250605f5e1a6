"""The model registry as the service sees it: who may see or promote which model, the
validation reports, and promotions through training's gate audited into the service DB (the one
promotion audit: the pages, the API and `tiers promote` all write it).

The registry is the one `serving.cli.train` uses (``settings.mlflow_tracking_uri``, artifacts
next to a SQLite store); a missing SQLite store is "no registry yet", never created by a read.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from serving.db.tables import PromotionAudit
from serving.errors import Conflict, InvalidInput, NotAllowed, NotFound
from serving.security import Principal

GENERAL_MODEL = "tiers-general"
SECTOR_MODEL_PREFIX = "tiers-sector-"
REPORT_JSON = "report/validation_report.json"
REPORT_HTML = "report/validation_report.html"
# metrics shown on the sector page and in GET /api/v1/models (logged by training.report)
KEY_METRICS = ("oot_auc", "oot_auc_low", "oot_auc_high", "oot_brier", "oot_ece", "oot_ks")


class UnknownModel(NotFound):
    code = "unknown_model"


class NoRegistry(UnknownModel):
    code = "no_registry"


def require_registry(registry: Any, tracking_uri: str) -> Any:
    """``registry`` itself; `NoRegistry` (404) when there is none yet."""
    if registry is None:
        raise NoRegistry(f"no model registry at {tracking_uri} yet: run `tiers train` first", field="name")
    return registry


class AlreadyChampion(Conflict):
    code = "already_champion"


class GateRefused(Exception):
    """The gate refused a promotion (not forced); ``gate`` is the gate's ``as_dict()``."""

    def __init__(self, message: str, gate: dict[str, Any]) -> None:
        super().__init__(message)
        self.message = message
        self.gate = gate


@dataclass(frozen=True)
class VersionSummary:
    version: int
    aliases: tuple[str, ...]
    kind: str
    sector: str | None
    candidate: str
    validate_as_of: str | None
    metrics: dict[str, float]
    cutoffs: tuple[float, ...]


def artifacts_dir_for(tracking_uri: str) -> Path | None:
    """Artifact directory of a SQLite store (``var/mlflow.db`` → ``var/mlartifacts``), None for a tracking
    server (it decides): the one rule, for the service, the pages' fits and the CLI (``--artifacts`` unset)."""
    if not tracking_uri.startswith("sqlite:///"):
        return None
    return Path(tracking_uri.removeprefix("sqlite:///")).parent / "mlartifacts"


def open_registry(tracking_uri: str) -> Any:
    """The `training.registry.ModelRegistry` at ``tracking_uri``, or None when its SQLite store
    does not exist yet (a read must not create one: no registry means no models)."""
    if tracking_uri.startswith("sqlite:///") and not Path(tracking_uri.removeprefix("sqlite:///")).is_file():
        return None
    # MLflow prints a tqdm bar for every artifact download; noise in a service log.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    from training.registry import ModelRegistry

    return ModelRegistry(tracking_uri, artifact_location=artifacts_dir_for(tracking_uri))


def section_of(name: str) -> str | None:
    """GB/T 4754 section of a sector model name, None for the general model (or another name)."""
    return name.removeprefix(SECTOR_MODEL_PREFIX) if name.startswith(SECTOR_MODEL_PREFIX) else None


def may_see(principal: Principal, name: str) -> bool:
    """Admin: every model; sector: the general model (read-only) and its own section's."""
    if principal.role == "admin":
        return True
    return principal.role == "sector" and (name == GENERAL_MODEL or section_of(name) == principal.section)


def may_promote(principal: Principal, name: str) -> bool:
    """Admin: every model; sector: only its own section's model."""
    if principal.role == "admin":
        return True
    return principal.role == "sector" and principal.section is not None and section_of(name) == principal.section


def _check_visible(principal: Principal, name: str, absent: UnknownModel) -> None:
    """A model the caller may not see answers ``absent``: the 404 of a model that does not exist
    (no existence oracle). Sector users see the general model and their own section's."""
    if not may_see(principal, name):
        raise absent


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def visible_models(registry: Any, principal: Principal) -> dict[str, list[VersionSummary]]:
    """Registered models the principal may see, each with its versions (newest first)."""
    out: dict[str, list[VersionSummary]] = {}
    for name in registry.model_names():
        if not may_see(principal, name):
            continue
        versions = registry.client.search_model_versions(f"name = '{name}'")
        # search results carry no aliases; the registered model has them (alias → version)
        aliases: dict[int, list[str]] = {}
        for alias, number in registry.client.get_registered_model(name).aliases.items():
            aliases.setdefault(int(number), []).append(alias)
        summaries = []
        for mv in sorted(versions, key=lambda v: -int(v.version)):
            run = registry.client.get_run(mv.run_id)
            params = run.data.params
            cutoffs = tuple(float(c) for c in params.get("cutoffs", "").split(",") if c)
            summaries.append(VersionSummary(
                version=int(mv.version),
                aliases=tuple(sorted(aliases.get(int(mv.version), []))),
                kind=params.get("kind", ""),
                sector=params.get("sector") or None,
                candidate=params.get("candidate", ""),
                validate_as_of=params.get("validate_as_of"),
                metrics={k: v for k in KEY_METRICS if (v := _finite(run.data.metrics.get(k, math.nan))) is not None},
                cutoffs=cutoffs,
            ))
        out[name] = summaries
    return out


def _artifact(registry: Any, principal: Principal, name: str, version: int, path: str) -> str:
    from mlflow.exceptions import MlflowException

    absent = UnknownModel(f"model {name!r} version {version}: no {path} in the registry", field="version")
    _check_visible(principal, name, absent)
    try:
        return registry.load_text(name, version, path)
    except (MlflowException, OSError) as exc:
        raise absent from exc


def report_json(registry: Any, principal: Principal, name: str, version: int) -> dict[str, Any]:
    """The validation report (content as written by `training.report.build_report`)."""
    return json.loads(_artifact(registry, principal, name, version, REPORT_JSON))


def report_html(registry: Any, principal: Principal, name: str, version: int) -> str:
    """The validation report as a standalone HTML document."""
    return _artifact(registry, principal, name, version, REPORT_HTML)


OOT_FRAME = "validation/oot.parquet"


def validation_scored(registry: Any, principal: Principal, name: str, version: int) -> dict[str, Any]:
    """The version's out-of-time rows graded by the version itself, with each feature's exact
    contribution (log-odds of risk), for the report page's charts: ``grades`` (score, grade),
    ``frame`` (the inputs), ``contributions`` (None when the model gives none) and ``metas``."""
    absent = UnknownModel(f"model {name!r} version {version}: no {OOT_FRAME} in the registry", field="version")
    _check_visible(principal, name, absent)
    return _scored(registry, name, version, absent)


def _scored(registry: Any, name: str, version: int, absent: UnknownModel) -> dict[str, Any]:
    key = (registry.tracking_uri, name, version)  # a registered version never changes
    if key in _SCORED:
        return _SCORED[key]
    from mlflow.exceptions import MlflowException

    try:
        frame = registry.load_frame(name, version, OOT_FRAME)
        model = registry.load_model(name, version)
    except (MlflowException, OSError) as exc:
        raise absent from exc
    try:
        contributions = model.contributions(frame)
    except (AttributeError, NotImplementedError, ValueError, KeyError):
        contributions = None
    out = {"grades": model.grade(frame), "frame": frame, "contributions": contributions,
           "metas": list(getattr(model, "metas", ()))}
    if len(_SCORED) >= 8:
        _SCORED.pop(next(iter(_SCORED)))
    _SCORED[key] = out
    return out


_SCORED: dict[tuple[str, str, int], dict[str, Any]] = {}


def _clean(value: Any) -> Any:
    """JSON-safe copy (NaN/inf → None): the audit column and the API carry it."""
    if isinstance(value, float):
        return _finite(value)
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def db_audit_sink(session: Session) -> Any:
    """An audit sink for `training.promotion.promote` writing `PromotionAudit` rows (committed at
    once, so a refused attempt is kept although `promote` raises right after)."""

    def sink(event: Any) -> None:
        decision = "refused" if not event.gate_passed and not event.forced else "forced" if event.forced else "promoted"
        session.add(PromotionAudit(
            model_name=event.model,
            from_version=None if event.from_version is None else str(event.from_version),
            to_version=str(event.to_version),
            decided_by=event.user,
            decision=decision,
            evidence=_clean({"at": event.at, "alias": event.alias, "reason": event.reason, "forced": event.forced,
                             "gate_passed": event.gate_passed, "gate": event.gate}),
        ))
        session.commit()

    return sink


def promote_through_gate(audit_session: Callable[[], Session], registry: Any, name: str, version: int, *,
                         user: str, reason: str, force: bool = False, thresholds: Any = None) -> Any:
    """The one run of `training.promotion.promote` in the service: every attempt (refused or not)
    audited in the database (`PromotionAudit`), whoever asks (`tiers promote`, the pages, the API).

    ``audit_session`` is called on the first audit event only, so a bad name or version never opens
    the database. Returns the `PromotionOutcome`; raises as `promote` does (`PromotionRefused`,
    ValueError, MLflow's error for an unknown version)."""
    from training.promotion import promote

    sinks: list[Any] = []

    def audit(event: Any) -> None:
        if not sinks:
            sinks.append(db_audit_sink(audit_session()))
        sinks[0](event)

    return promote(registry, name, version, user=user, reason=reason, audit=audit, force=force,
                   thresholds=thresholds)


def promote_version(session: Session, registry: Any, principal: Principal, name: str, version: int, *,
                    reason: str, force: bool = False) -> dict[str, Any]:
    """Run training's gate for ``name`` ``version`` as ``principal`` and audit it in the DB.

    Returns the promotion event as a dict; raises `GateRefused` (with the gate figures) when the
    gate fails without ``force``, `NotAllowed` when the caller may not promote this model or
    force, `UnknownModel` for an unknown version, `AlreadyChampion` when it is champion already.
    """
    from mlflow.exceptions import MlflowException

    from training.promotion import PromotionRefused

    absent = UnknownModel(f"model {name!r} has no version {version}", field="version")
    _check_visible(principal, name, absent)
    if not may_promote(principal, name):
        raise NotAllowed(f"{principal.role} {principal.username!r} may not promote {name!r} "
                         f"(rule: sector users promote only {SECTOR_MODEL_PREFIX}{principal.section or '<section>'})",
                         field="name")
    if force and principal.role != "admin":
        raise NotAllowed(f"force=true by {principal.role} {principal.username!r}: only an admin may force a promotion "
                         "past the gate", field="force")
    try:
        registry.get_version(name, version)
    except MlflowException as exc:
        raise absent from exc
    try:
        outcome = promote_through_gate(lambda: session, registry, name, version, user=principal.username,
                                       reason=reason, force=force)
    except PromotionRefused as exc:
        raise GateRefused(str(exc).splitlines()[0], _clean(exc.gate.as_dict())) from exc
    except ValueError as exc:
        if "already the champion" in str(exc):
            raise AlreadyChampion(f"model {name!r} version {version}: {exc}", field="version") from exc
        raise InvalidInput(f"reason {reason!r}: {exc}", field="reason") from exc
    return _clean(outcome.event.as_dict())


def promotion_audit(session: Session, *, model: str | None = None) -> list[PromotionAudit]:
    """Every promotion audit row, newest first (of ``model`` only, if given): those of the pages,
    the API and `tiers promote` alike."""
    stmt = select(PromotionAudit).order_by(PromotionAudit.id.desc())
    if model is not None:
        stmt = stmt.where(PromotionAudit.model_name == model)
    return list(session.scalars(stmt))


def audit_entries(session: Session, principal: Principal, *, model: str | None = None,
                  limit: int = 200) -> list[PromotionAudit]:
    """Promotion audit rows (newest first) of the models the principal may see."""
    return [r for r in promotion_audit(session, model=model) if may_see(principal, r.model_name)][:limit]
