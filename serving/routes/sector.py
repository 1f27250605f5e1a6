"""Sector departments: the subjects of their GB/T 4754 section and the models grading them.

Three routers: ``router`` (the section's subjects), ``models_router`` (the registry: models,
validation reports, promotion through the gate, the promotion audit; sector users see the
general model read-only and their own section's model, admins see all) and ``pages_router``
(the 行业主管部门 page).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Path, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from serving import labels
from serving.deps import (
    ModelReader,
    PageModelReader,
    ReadLogDep,
    RowIdPath,
    Sector,
    SessionDep,
    SettingsDep,
    page_csrf,
    require_page_csrf,
)
from serving.errors import (
    ROLE_ERRORS,
    ErrorBody,
    InvalidInput,
    NotAllowed,
    NotAuthenticated,
    ServiceError,
    error_responses,
)
from serving.headers import report_headers
from serving.i18n import page_text
from serving.pages import page_lang, render
from serving.presenters import local_minute
from serving.routes._lists import SubjectListDep, logged_subject_page
from serving.routes._routers import CallerFirstRoute, page_router
from serving.schemas import (
    GateOut,
    ModelUseOut,
    ModelVersionOut,
    PromoteIn,
    PromotionAuditOut,
    PromotionOut,
    PromotionRefusedOut,
    RegisteredModelOut,
    SubjectPage,
)
from serving.security import Principal
from serving.services import grades
from serving.services import model_registry as registry_service
from serving.services.model_registry import AlreadyChampion, GateRefused, UnknownModel
from serving.validation import MAX_ROW_ID, NoControlChars

router = APIRouter(prefix="/api/v1/sector", tags=["sector"], route_class=CallerFirstRoute)
models_router = APIRouter(prefix="/api/v1/models", tags=["models"], route_class=CallerFirstRoute)
pages_router = page_router()

MODEL_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,119}$"
ModelName = Annotated[str, Path(pattern=MODEL_NAME_PATTERN, description="registered model name, e.g. tiers-sector-C")]
Version = Annotated[int, Path(ge=1, le=MAX_ROW_ID, description="registered version number")]


@router.get("/subjects", response_model=SubjectPage,
            responses=error_responses(NotAuthenticated, NotAllowed, InvalidInput))
def list_subjects(principal: Sector, log: ReadLogDep, query: SubjectListDep) -> SubjectPage:
    return logged_subject_page(log, principal, query)


@router.get("/models", response_model=list[ModelUseOut], responses=error_responses(*ROLE_ERRORS))
def models_in_use(principal: Sector, session: SessionDep) -> list[ModelUseOut]:
    """Model versions that graded subjects of the section (aggregate, not subject data)."""
    return [ModelUseOut(model_version=v, subjects=n, latest_as_of=d)
            for v, n, d in grades.model_use(session, principal.section)]


# -- the registry ----------------------------------------------------------------------------


def get_optional_registry(settings: SettingsDep) -> Any:
    """The MLflow registry of `settings.mlflow_tracking_uri`, None before the first `tiers train`."""
    return registry_service.open_registry(settings.mlflow_tracking_uri)


def get_registry(settings: SettingsDep) -> Any:
    """The MLflow registry of `settings.mlflow_tracking_uri`; 404 ``no_registry`` when there is none."""
    return registry_service.require_registry(get_optional_registry(settings), settings.mlflow_tracking_uri)


OptionalRegistryDep = Annotated[Any, Depends(get_optional_registry)]
RegistryDep = Annotated[Any, Depends(get_registry)]
READ_ERRORS = (NotAuthenticated, NotAllowed, UnknownModel)


def _model_out(principal: Principal, name: str, versions: list[registry_service.VersionSummary]) -> RegisteredModelOut:
    def with_alias(alias: str) -> int | None:
        return next((v.version for v in versions if alias in v.aliases), None)

    return RegisteredModelOut(
        name=name, section=registry_service.section_of(name),
        can_promote=registry_service.may_promote(principal, name),
        champion=with_alias("champion"), challenger=with_alias("challenger"),
        versions=[ModelVersionOut(version=v.version, aliases=list(v.aliases), kind=v.kind, sector=v.sector,
                                  candidate=v.candidate, validate_as_of=v.validate_as_of, metrics=v.metrics,
                                  cutoffs=list(v.cutoffs)) for v in versions])


@models_router.get("", response_model=list[RegisteredModelOut],
                   responses=error_responses(*ROLE_ERRORS))
def list_models(principal: ModelReader, registry: OptionalRegistryDep) -> list[RegisteredModelOut]:
    """Registered models the caller may see, with versions, aliases, key OOT metrics and cut-offs
    (empty before the first `tiers train`)."""
    if registry is None:
        return []
    return [_model_out(principal, name, versions)
            for name, versions in registry_service.visible_models(registry, principal).items()]


@models_router.get("/audit", response_model=list[PromotionAuditOut],
                   responses=error_responses(*ROLE_ERRORS))
def promotion_audit(principal: ModelReader, session: SessionDep,
                    model: Annotated[str | None, Query(pattern=MODEL_NAME_PATTERN)] = None,
                    limit: Annotated[int, Query(ge=1, le=1000)] = 200) -> list[PromotionAuditOut]:
    """Who promoted (or tried to) which version, when, from → to, why, with the gate figures."""
    return [PromotionAuditOut(id=r.id, model_name=r.model_name, from_version=r.from_version, to_version=r.to_version,
                              decided_by=r.decided_by, decision=r.decision, reason=str(r.evidence.get("reason", "")),
                              created_at=r.created_at, gate=r.evidence.get("gate"))
            for r in registry_service.audit_entries(session, principal, model=model, limit=limit)]


@models_router.get("/{name}/versions/{version}/report", response_model=dict[str, Any],
                   responses=error_responses(*READ_ERRORS))
def validation_report(principal: ModelReader, registry: RegistryDep, name: ModelName, version: Version) -> dict[str, Any]:
    """The validation report of a version (JSON written at training: discrimination, calibration,
    grades, stability, monotonicity, fairness, champion comparison)."""
    return registry_service.report_json(registry, principal, name, version)


@models_router.get("/{name}/versions/{version}/report.html", response_class=HTMLResponse,
                   responses={**error_responses(*READ_ERRORS), 200: {"content": {"text/html": {}}}})
def validation_report_html(principal: ModelReader, registry: RegistryDep, name: ModelName, version: Version) -> Response:
    """The validation report as a standalone HTML file (download)."""
    html = registry_service.report_html(registry, principal, name, version)
    return HTMLResponse(html, headers={"Content-Disposition": f'attachment; filename="{name}-v{version}.html"',
                                       **report_headers()})


def _refused(exc: GateRefused) -> JSONResponse:
    body = PromotionRefusedOut(error=ErrorBody(code="gate_refused", message=exc.message, field="version"),
                               gate=GateOut.model_validate(exc.gate))
    return JSONResponse(body.model_dump(mode="json"), status_code=409)


@models_router.post("/{name}/versions/{version}/promote", response_model=PromotionOut,
                    responses={**error_responses(*READ_ERRORS, AlreadyChampion),
                               409: {"model": PromotionRefusedOut,
                                     "description": "gate_refused (with the gate's checks and figures), already_champion"}})
def promote_version(principal: ModelReader, session: SessionDep, registry: RegistryDep, name: ModelName,
                    version: Version, body: PromoteIn) -> Any:
    """Make VERSION the champion through training's gate; every attempt is audited.

    409 ``gate_refused`` carries the failed checks and figures; ``force`` is for admins only.
    """
    try:
        event = registry_service.promote_version(session, registry, principal, name, version,
                                                 reason=body.reason, force=body.force)
    except GateRefused as exc:
        return _refused(exc)
    return PromotionOut.model_validate(event)


# -- the page ---------------------------------------------------------------------------------

def _page(request: Request, template: str, context: dict[str, Any], status_code: int = 200) -> Response:
    lang = page_lang(request)
    return render(request, template, {"s": lambda key: page_text("sector", key, lang), "local": local_minute,
                                      "gate_check": lambda check: labels.gate_check(check, lang), **context},
                  status_code=status_code)


def _grade_rows(report: dict[str, Any], cutoffs: list[float]) -> list[dict[str, Any]]:
    """The report's grade table with each grade's probability range from the cut-offs."""
    bounds = [0.0, *cutoffs, 1.0]
    rows = []
    for i, row in enumerate(report.get("grades", {}).get("table", [])):
        low, high = (bounds[i], bounds[i + 1]) if i + 1 < len(bounds) else (None, None)
        rows.append({**row, "p_low": low, "p_high": high})
    return rows


def _page_models(registry: Any, principal: Principal) -> list[dict[str, Any]]:
    out = []
    for name, versions in registry_service.visible_models(registry, principal).items():
        model = _model_out(principal, name, versions).model_dump()
        shown = [v for v in model["versions"] if v["aliases"]] or model["versions"][:1]
        for v in shown:
            try:
                report = registry_service.report_json(registry, principal, name, v["version"])
            except ServiceError:
                report = {}
            v["grade_rows"] = _grade_rows(report, v["cutoffs"])
        model["shown"] = shown
        out.append(model)
    return out


@pages_router.get("/sector", response_class=HTMLResponse)
def sector_page(request: Request, session: SessionDep, settings: SettingsDep, principal: PageModelReader) -> Response:
    """行业主管部门: models of the section (champion/challenger, metrics, cut-offs, grade table)."""
    registry = get_optional_registry(settings)
    models = [] if registry is None else _page_models(registry, principal)
    champions = {m["name"]: m["champion"] for m in models if m["champion"] is not None}
    return _page(request, "sector.html", {
        "user": principal, "csrf": page_csrf(settings, principal), "registry_models": models,
        "registry_unavailable": registry is None,
        "models": [(*use, _next_champion(use[0], champions))
                   for use in (grades.model_use(session, principal.section) if principal.section else [])],
        "audit": registry_service.audit_entries(session, principal, limit=20)})


def _next_champion(model_version: str, champions: dict[str, int]) -> str | None:
    """``name/version`` of the model's champion when grades were made by another of its versions
    (a promotion takes effect at the next grading), else None."""
    name, _, version = model_version.partition("/")
    champion = champions.get(name)
    return f"{name}/{champion}" if champion is not None and str(champion) != version else None


@pages_router.get("/sector/models/{name}/versions/{version}/report", response_class=HTMLResponse)
def sector_report_page(request: Request, settings: SettingsDep, principal: PageModelReader, name: ModelName,
                       version: Version) -> Response:
    """The validation report as a page in the reader's language, with its charts (calibration, the
    score distribution by grade, shape functions) drawn on the server, and a way back."""
    lang = page_lang(request)
    registry = get_registry(settings)
    report = registry_service.report_json(registry, principal, name, version)
    scored = registry_service.validation_scored(registry, principal, name, version)
    return _page(request, "sector_report.html", {
        "user": principal, "csrf": page_csrf(settings, principal), "name": name, "version": version,
        "r": lambda key: page_text("sector_report", key, lang), "report": report,
        **report_figures(report, scored, lang)})


@pages_router.get("/sector/models/{name}/versions/{version}/report.html", response_class=HTMLResponse)
def sector_report_download(settings: SettingsDep, principal: PageModelReader, name: ModelName,
                           version: Version) -> Response:
    """The full validation report as a standalone HTML file (the page's session, not a bearer token)."""
    html = registry_service.report_html(get_registry(settings), principal, name, version)
    return HTMLResponse(html, headers={"Content-Disposition": f'attachment; filename="{name}-v{version}.html"',
                                       **report_headers()})


def report_figures(report: dict[str, Any], scored: dict[str, Any], lang: str, top: int = 6) -> dict[str, Any]:
    """The report page's charts and the features' names (not codes) in ``lang``."""
    from serving import charts

    metas = {m.name: m for m in scored["metas"]}

    def label(feature: str) -> str:
        meta = metas.get(feature)
        return (meta.label_zh if lang == "zh" else meta.label_en) if meta else feature

    grades = scored["grades"]
    shapes = []
    contributions = scored["contributions"]
    if contributions is not None:
        columns = [c for c in contributions.columns if c in scored["frame"].columns
                   and not (metas.get(c) and metas[c].categorical)]
        ranked = sorted(columns, key=lambda c: -float(contributions[c].abs().mean()))
        for feature in ranked:
            chart = charts.shape_chart(pd_numeric(scored["frame"][feature]), contributions[feature].to_numpy())
            if chart is not None:
                shapes.append({"feature": feature, "label": label(feature), "chart": chart})
            if len(shapes) == top:
                break
    return {
        "notes": [_note(n, lang) for n in report.get("notes", [])],
        "calibration_chart": charts.calibration_chart(report.get("calibration", {}).get("reliability", [])),
        "grade_chart": charts.grade_score_chart(grades["score"].to_numpy(), grades["grade"].to_numpy()),
        "shapes": shapes, "feature_label": label,
    }


def _note(note: str, lang: str) -> str:
    """Training's notes end with their Chinese in parentheses: the Chinese page shows only that."""
    import re

    found = re.search(r"[（(]([^()（）]*[\u4e00-\u9fff][^()（）]*)[）)]\s*$", note)
    return found.group(1) if found and lang == "zh" else note


def pd_numeric(series: Any) -> Any:
    import pandas as pd

    return pd.to_numeric(series, errors="coerce").to_numpy(dtype=float)


@pages_router.post("/sector/models/{name}/versions/{version}/promote", response_class=HTMLResponse)
def sector_promote_form(request: Request, session: SessionDep, settings: SettingsDep, principal: PageModelReader,
                        name: ModelName, version: Version,
                        reason: Annotated[str, Form(min_length=1, max_length=2000), NoControlChars],
                        csrf_token_: Annotated[str, Form(alias="csrf_token")],
                        force: Annotated[bool, Form()] = False) -> Response:
    """The promote button: runs the gate and shows its checks (passed / failed with figures)."""
    require_page_csrf(settings, principal, csrf_token_)
    if not reason.strip():
        raise InvalidInput("reason '': a promotion must say why (rule: non-blank text)", field="reason")
    try:
        event = registry_service.promote_version(session, get_registry(settings), principal, name, version,
                                                 reason=reason, force=force)
    except GateRefused as exc:
        return _page(request, "sector_promotion.html", {"user": principal, "name": name, "version": version,
                                                        "outcome": "refused", "gate": exc.gate, "message": exc.message},
                     status_code=409)
    return _page(request, "sector_promotion.html", {
        "user": principal, "name": name, "version": version, "gate": event.get("gate"), "message": "",
        "outcome": "forced" if event.get("forced") else "promoted", "from_version": event.get("from_version")})


# -- a sector's own fit from a labelled file ------------------------------------------------------


def _fit_page(request: Request, session: Any, settings: Any, principal: Principal, *, error: str | None = None,
              status_code: int = 200) -> Response:
    from serving.services import sector_fit

    lang = page_lang(request)
    return _page(request, "sector_fit.html", {
        "user": principal, "csrf": page_csrf(settings, principal), "error": error,
        "f": lambda key: page_text("sector_fit", key, lang),
        # the headers as the template writes them (sector_fit.template_csv), never the codes
        "keys": sector_fit.key_headings(lang),
        "columns": [(zh if lang == "zh" else en, categorical) for _n, zh, en, categorical in sector_fit.feature_columns()],
        "horizon": sector_fit.HORIZON_MONTHS, "max_mb": round(settings.max_request_body_bytes / 1024 / 1024, 1),
        "jobs": [(job, sector_fit.job_view(job, lang)) for job in sector_fit.list_jobs(session, principal)],
    }, status_code=status_code)


@pages_router.get("/sector/fit", response_class=HTMLResponse)
def fit_page(request: Request, session: SessionDep, settings: SettingsDep, principal: PageModelReader) -> Response:
    """Upload a labelled file to fit the section's model (the format, the template, past jobs)."""
    return _fit_page(request, session, settings, principal)


@pages_router.get("/sector/fit/template.csv")
def fit_template(request: Request, principal: PageModelReader) -> Response:
    from serving.services import sector_fit

    return Response(sector_fit.template_csv(page_lang(request)), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": 'attachment; filename="labelled-template.csv"'})


@pages_router.post("/sector/fit", response_class=HTMLResponse)
async def fit_upload(request: Request, settings: SettingsDep, principal: PageModelReader,
                     csrf_token_: Annotated[str, Form(alias="csrf_token")],
                     file: Annotated[UploadFile, File()]) -> Response:
    """Check the file (a refusal names the line, the field and the rule), then fit it in the
    background and show the job's progress page."""
    from starlette.concurrency import run_in_threadpool

    require_page_csrf(settings, principal, csrf_token_)
    content = await file.read()
    return await run_in_threadpool(_start_fit, request, settings, principal, content, file.filename or "upload.csv")


def _start_fit(request: Request, settings: Any, principal: Principal, content: bytes, file_name: str) -> Response:
    from serving.deps import new_session
    from serving.services import sector_fit

    lang = page_lang(request)
    session = new_session(settings)
    try:
        if principal.section is None:
            return _fit_page(request, session, settings, principal, status_code=403,
                             error=page_text("sector_fit", "no_section", lang))
        try:
            dataset = sector_fit.parse_labelled_csv(content, principal.section, lang)
            job = sector_fit.start_fit(session, settings, principal, dataset, file_name)
        except InvalidInput as exc:
            return _fit_page(request, session, settings, principal, error=exc.message, status_code=422)
        except ServiceError as exc:
            return _fit_page(request, session, settings, principal, status_code=exc.status_code,
                             error=page_text("sector_fit", "busy", lang))
        return RedirectResponse(f"/sector/fit/{job.id}", status_code=303)
    finally:
        session.close()


@pages_router.get("/sector/fit/{job_id}", response_class=HTMLResponse)
def fit_job_page(request: Request, session: SessionDep, settings: SettingsDep, principal: PageModelReader,
                 job_id: RowIdPath) -> Response:
    """The job's progress (the page polls ``/status``), then the registered version and its report."""
    from serving.services import sector_fit

    lang = page_lang(request)
    job = sector_fit.get_job(session, principal, job_id)
    return _page(request, "sector_fit_job.html", {
        "user": principal, "csrf": page_csrf(settings, principal), "job": sector_fit.job_view(job, lang),
        "f": lambda key: page_text("sector_fit", key, lang)})


@pages_router.get("/sector/fit/{job_id}/status")
def fit_job_status(request: Request, session: SessionDep, principal: PageModelReader, job_id: RowIdPath) -> JSONResponse:
    from serving.services import sector_fit

    view = sector_fit.job_view(sector_fit.get_job(session, principal, job_id), page_lang(request))
    return JSONResponse(view, headers={"Cache-Control": "no-store"})
