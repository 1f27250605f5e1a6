"""Analysts: aggregates, monitoring runs and alerts only (no subject-level credit data).

API under ``/api/v1/analyst``; the monitoring pages (``/analyst/monitoring``) live here too, out of
the OpenAPI schema, because they show the same stored runs.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from sqlalchemy import select

from serving.db.tables import Alert, MonitoringResult
from serving.deps import (
    Analyst,
    PageAnalyst,
    SessionDep,
    SettingsDep,
    page_csrf,
)
from serving.errors import (
    ROLE_ERRORS,
    MonitoringReportUnavailable,
    UnknownMonitoringRun,
    error_responses,
)
from serving.headers import report_headers
from serving.pages import page_lang, render
from serving.routes._routers import CallerFirstRoute
from serving.schemas import AlertOut, GradeShareOut, MonitoringAlertOut, MonitoringRunDetail, MonitoringRunOut
from serving.services import grades
from serving.services import monitoring as mon
from serving.validation import MAX_ROW_ID

API = "/api/v1/analyst"
router = APIRouter(tags=["analyst"], route_class=CallerFirstRoute)
RunId = Annotated[int, Path(ge=1, le=MAX_ROW_ID, description="monitoring run id")]




def _run_out(run: MonitoringResult) -> dict[str, Any]:
    s = run.payload["summary"]
    return dict(id=run.id, model_version=run.model_version, created_at=run.created_at,
                has_report=mon.report_path(run) is not None,
                **{k: s[k] for k in ("reference_as_of", "current_as_of", "n_reference", "n_current", "score_psi",
                                     "n_alerts", "max_severity", "performance_provisional")})


def _alert_out(a: Alert) -> MonitoringAlertOut:
    payload = a.payload or {}
    base = AlertOut.model_validate(a).model_dump()
    return MonitoringAlertOut(**base, subject_of_alert=payload.get("subject_of_alert"),
                              evidence=payload.get("evidence", {}), monitoring_id=payload.get("monitoring_id"))


def _get_run(session, run_id: int) -> MonitoringResult:
    run = mon.get_run(session, run_id)
    if run is None:
        raise UnknownMonitoringRun(f"no monitoring run {run_id}", field="run_id")
    return run


@router.get(f"{API}/alerts", response_model=list[MonitoringAlertOut],
            responses=error_responses(*ROLE_ERRORS))
def alerts(principal: Analyst, session: SessionDep, include_acknowledged: bool = False,
           severity: Literal["info", "warning", "critical"] | None = None,
           code: Annotated[str | None, Query(min_length=1, max_length=60, pattern=r"^[a-z_]+$",
                                             description="alert rule, e.g. score_psi")] = None,
           monitoring_id: Annotated[int | None, Query(ge=1, le=MAX_ROW_ID)] = None,
           limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[MonitoringAlertOut]:
    """Alerts, newest first; filter by severity, rule code or monitoring run."""
    stmt = select(Alert)
    if not include_acknowledged:
        stmt = stmt.where(Alert.acknowledged.is_(False))
    if severity is not None:
        stmt = stmt.where(Alert.severity == severity)
    if code is not None:
        stmt = stmt.where(Alert.code == code)
    rows = session.scalars(stmt.order_by(Alert.id.desc()))
    out = [_alert_out(a) for a in rows]
    if monitoring_id is not None:  # JSON payload: filtered here, portable across SQLite and PostgreSQL
        out = [a for a in out if a.monitoring_id == monitoring_id]
    return out[:limit]


@router.get(f"{API}/monitoring", response_model=list[MonitoringRunOut],
            responses=error_responses(*ROLE_ERRORS))
def monitoring_runs(principal: Analyst, session: SessionDep,
                    limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[MonitoringRunOut]:
    """Stored monitoring runs, newest first."""
    return [MonitoringRunOut(**_run_out(r)) for r in mon.list_runs(session, limit=limit)]


@router.get(f"{API}/monitoring/{{run_id}}", response_model=MonitoringRunDetail,
            responses=error_responses(*ROLE_ERRORS, UnknownMonitoringRun))
def monitoring_run(principal: Analyst, session: SessionDep, run_id: RunId) -> MonitoringRunDetail:
    """One run with its full result JSON (incl. chart data)."""
    run = _get_run(session, run_id)
    return MonitoringRunDetail(**_run_out(run), result=run.payload["result"])


@router.get(f"{API}/monitoring/{{run_id}}/report.html", response_class=FileResponse,
            responses={**error_responses(*ROLE_ERRORS, UnknownMonitoringRun,
                                         MonitoringReportUnavailable),
                       200: {"content": {"text/html": {}}, "description": "Evidently's full report"}})
def monitoring_report(principal: Analyst, session: SessionDep, run_id: RunId) -> FileResponse:
    """Evidently's full HTML report of a run, as a download."""
    return _report_file(session, run_id)


def _report_file(session, run_id: int) -> FileResponse:
    path = mon.report_path(_get_run(session, run_id))
    if path is None:
        raise MonitoringReportUnavailable(f"monitoring run {run_id} has no stored Evidently report",
                                          field="run_id", zh=f"第 {run_id} 次监测没有保存完整的 Evidently 报告。")
    return FileResponse(path, media_type="text/html", filename=f"monitoring-{run_id}.html",
                        content_disposition_type="attachment", headers=report_headers())


@router.get("/analyst/monitoring/{run_id}/report.html", response_class=HTMLResponse, include_in_schema=False)
def monitoring_report_page(request: Request, principal: PageAnalyst, session: SessionDep, run_id: RunId) -> Response:
    """The page's download: the run as the page shows it, in the reader's language, as one HTML file
    (Evidently's English report is third-party and judges drift by other tests: it is named in the
    file and downloaded apart, ``evidently.html``)."""
    run = _get_run(session, run_id)
    if mon.report_path(run) is None:
        return _report_file(session, run_id)  # MonitoringReportUnavailable, as before
    lang = page_lang(request)
    view = mon.run_view(run, mon.run_alerts(session, run.id), lang)
    return render(request, "monitoring_report.html", {"view": view, "m": lambda k: mon.label(k, lang)},
                  headers={"Content-Disposition": f'attachment; filename="monitoring-{run_id}.html"'})


@router.get("/analyst/monitoring/{run_id}/evidently.html", response_class=FileResponse, include_in_schema=False)
def monitoring_evidently_page(principal: PageAnalyst, session: SessionDep, run_id: RunId) -> FileResponse:
    """Evidently's own report for the analyst's page (the session cookie; the API route takes a bearer token)."""
    return _report_file(session, run_id)


@router.get(f"{API}/grade-shares", response_model=list[GradeShareOut],
            responses=error_responses(*ROLE_ERRORS))
def grade_shares(principal: Analyst, session: SessionDep) -> list[GradeShareOut]:
    """Subjects per grade and as-of date."""
    return [GradeShareOut(as_of=d, grade=g, subjects=n) for d, g, n in grades.grade_shares(session)]


# --------------------------------------------------------------------------- pages


@router.get("/analyst/monitoring", response_class=HTMLResponse, include_in_schema=False)
def monitoring_latest_page(request: Request, session: SessionDep, settings: SettingsDep,
                           principal: PageAnalyst) -> Response:
    """The newest run's page (or the empty list if none is stored)."""
    runs = mon.list_runs(session, limit=1)
    if runs:
        suffix = f"?lang={request.query_params['lang']}" if request.query_params.get("lang") in {"zh", "en"} else ""
        return RedirectResponse(f"/analyst/monitoring/{runs[0].id}{suffix}", status_code=303)
    lang = page_lang(request)
    return render(request, "analyst_monitoring.html", {"user": principal, "view": None, "runs": [],
                                                       "csrf": page_csrf(settings, principal),
                                                       "m": lambda k: mon.label(k, lang)})


@router.get("/analyst/monitoring/{run_id}", response_class=HTMLResponse, include_in_schema=False)
def monitoring_page(request: Request, session: SessionDep, settings: SettingsDep, principal: PageAnalyst,
                    run_id: RunId) -> Response:
    """One run: PSI bars, grade shares, migration heat table, data health, alerts with evidence."""
    run = _get_run(session, run_id)
    lang = page_lang(request)
    view = mon.run_view(run, mon.run_alerts(session, run.id), lang)
    return render(request, "analyst_monitoring.html", {
        "user": principal, "view": view, "runs": [_run_out(r) for r in mon.list_runs(session, limit=20)],
        "csrf": page_csrf(settings, principal), "m": lambda k: mon.label(k, lang)})
