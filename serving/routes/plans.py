"""双随机一公开 inspection plans: the ratio feed, commit-then-draw plans, verification, downloads,
results (API under ``/api/v1``) and the regulator's plan pages (``/regulator/plans``).

The draw is computed by ``supervision/``; routes are thin and call ``serving.services.plans``.
Every response that shows subject-level data (the visit list, downloads) is logged in the query
log, one entry per subject.
"""

from __future__ import annotations

import datetime as dt
import pathlib
from collections.abc import Callable
from typing import Annotated, Literal

from fastapi import Depends, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel
from sqlalchemy.orm import Session

from serving.db.tables import Draw, Plan
from serving.deps import (
    CurrentUser,
    Enterprise,
    PageRegulator,
    ReadLog,
    ReadLogDep,
    Regulator,
    SessionDep,
    SettingsDep,
    SubjectAccessDep,
    TodayDep,
    page_csrf,
    require_page_csrf,
)
from serving.errors import (
    ROLE_ERRORS,
    Conflict,
    InvalidInput,
    NotAllowed,
    NotFound,
    ServiceError,
    TooManyAttempts,
    error_responses,
    human_message,
    validated,
)
from serving.i18n import page_text
from serving.pages import page_lang, render
from serving.routes._page_lists import Window, position_window
from serving.routes._routers import api_and_page_routers
from serving.schemas import (
    PlanCommitIn,
    PlanCreateIn,
    PlanDetailOut,
    PlanJobOut,
    PlanSummaryOut,
    PoolFilter,
    ResultIn,
    ResultOut,
    ResultsIn,
    SaltIn,
    VisitOut,
)
from serving.security import PERSON_NAMED_FORMS, Principal, shown_name
from serving.services import plan_jobs
from serving.services import plans as plan_service
from serving.validation import MAX_ROW_ID, PURPOSE_LENGTH, NoControlChars
from supervision.bundle import PublicBundle, PublicSalt, SubjectOpening
from supervision.plan import DrawCommitment, InspectionPlan, PlanVerification
from supervision.ratios import InspectionRatiosOut

router, pages_router = api_and_page_routers("/api/v1", "plans")
PlanId = Annotated[int, Path(ge=1, le=MAX_ROW_ID, description="the plan's id in the service")]
JobId = Annotated[int, Path(ge=1, le=MAX_ROW_ID, description="the plan job's id")]
ReadPurpose = Annotated[str | None, Query(**PURPOSE_LENGTH, description="查询用途, logged"),
                        NoControlChars]
_PLAN_ERRORS = (*ROLE_ERRORS, NotFound)
DEFAULT_PURPOSE = "双随机一公开抽查计划"
# Names of individual businesses and sole proprietorships are often a person's name (personal
# information): masked in lists like legal representatives' names. Company names are public.


# --------------------------------------------------------------------------- presenters


def _summary(plan_row: Plan, draw: Draw) -> PlanSummaryOut:
    """A plan's summary from its row and its draw's head (never the draw's whole payload)."""
    head = plan_service.draw_head(draw)
    drawn, v2 = head["drawn"], head["v2"]
    pool_filter = plan_row.payload.get("pool_filter") or None
    commitment = plan_row.payload.get("commitment")
    return PlanSummaryOut(id=plan_row.id, plan_id=plan_row.name, department=plan_row.department,
                          created_by=plan_row.created_by, status=plan_row.status, created_at=plan_row.created_at,
                          committed_at=draw.committed_at, revealed_at=draw.revealed_at,
                          draw_seed_hex=draw.draw_seed, draw_algorithm="tiers-draw-v2" if v2 else "tiers-draw-v1",
                          published_commitment=DrawCommitment.model_validate(commitment) if commitment else None,
                          commitment_v2=plan_service.commitment_v2(draw) if v2 else None,
                          salt=PublicSalt.model_validate(head["salt"]) if head["salt"] else None,
                          pool_filter=PoolFilter.model_validate(pool_filter) if pool_filter else None,
                          plan=head["plan"] if drawn else None)


def _result_out(result, today: dt.date) -> ResultOut:
    """A stored result with its publication deadline (from the plan's policy, fixed when recorded)."""
    payload = result.payload or {}
    stored_deadline = payload.get("publication_deadline")
    deadline = (dt.date.fromisoformat(stored_deadline) if stored_deadline
                else result.inspected_on + dt.timedelta(days=20))
    if result.published_on is not None:
        status = "published" if result.published_on <= deadline else "published_late"
    else:
        status = "pending" if today <= deadline else "overdue"
    return ResultOut(uscc=result.uscc, inspection_item=result.inspection_item,
                     department=payload.get("department", ""), outcome=result.outcome,
                     inspected_on=result.inspected_on, published_on=result.published_on,
                     publication_deadline=deadline, publication_status=status,
                     record_id=payload.get("record_id", ""), version=payload.get("version", 1),
                     superseded=bool(payload.get("superseded_by")),
                     correction_reason=payload.get("correction_reason", ""),
                     document_no=payload.get("document_no") or "")


def _detail(session: Session, plan_row: Plan, draw: Draw, principal: Principal, purpose: str | None,
            log: ReadLog, today: dt.date, select: VisitSelect | None = None,
            visits: list | None = None) -> PlanDetailOut:
    """The plan with its list as ``principal`` may see it (``plans.visible_visits``); every listed
    subject is logged as a read (with ``select``: the visits it picks, e.g. one page, and their
    results). ``visits``: the plan's visits, already read (``plans.plan_view``)."""
    if not plan_service.draw_head(draw)["drawn"]:  # a v2 plan waiting for its salt: nothing drawn, nothing read
        return PlanDetailOut(**_summary(plan_row, draw).model_dump(), visits=[], results=[])
    if visits is None:
        visits, _ = plan_service.plan_view(session, plan_row, draw)
    shown_visits = _logged_visits(session, principal, plan_row, visits, purpose, log, select)
    shown = {v.uscc for v in shown_visits}
    return PlanDetailOut(**_summary(plan_row, draw).model_dump(), visits=[VisitOut(**v.model_dump())
                                                                         for v in shown_visits],
                         results=[_result_out(r, today) for r in plan_service.plan_results(session, draw)
                                  if r.uscc in shown])


VisitSelect = Callable[[list], list]  # the visits to show (a page), from the plan's visits as shown


def _plan_file(session: Session, principal: Principal, plan_id: int, purpose: str | None, log: ReadLog,
               fmt: Literal["csv", "xlsx"], lang: str | None = None, data_dir: pathlib.Path | None = None) -> Response:
    """The drawn plan's visit list as a CSV or XLSX download, each subject in it logged as a read; with
    ``lang``, in people's words (the pages' download), else the API's codes."""
    plan_row, draw = plan_service.get_plan(session, plan_id, principal)
    plan = _logged_download(session, principal, draw, plan_row, purpose, log)
    if fmt == "csv":
        return _csv(plan_service.plan_csv(plan, lang, data_dir), f"plan-{plan_row.id}.csv")
    return _xlsx(plan_service.plan_xlsx(plan, lang, data_dir), f"plan-{plan_row.id}.xlsx")


def _logged_download(session: Session, principal: Principal, draw: Draw, plan_row: Plan, purpose: str | None,
                     log: ReadLog) -> InspectionPlan:
    """The plan as ``principal`` may see it, each subject in it logged as a read."""
    if not plan_service.draw_head(draw)["drawn"]:
        raise NotFound(f"计划 #{plan_row.id} 尚未抽取；plan #{plan_row.id} is not drawn yet", field="plan_id")
    plan = plan_service.stored_plan(draw)
    return plan.model_copy(update={"visits": _logged_visits(session, principal, plan_row, plan.visits, purpose, log)})


def _logged_visits(session: Session, principal: Principal, plan_row: Plan, visits: list, purpose: str | None,
                   log: ReadLog, select: VisitSelect | None = None) -> list:
    """The plan's ``visits`` as ``principal`` may see them (``plans.visible_visits``), names masked,
    each logged as a read (with ``select``: only the visits it picks from the masked list, so a
    search by name never matches a hidden name)."""
    from serving.db.tables import Subject

    visits = plan_service.visible_visits(session, visits, principal)
    usccs = [v.uscc for v in visits]
    forms = dict(session.query(Subject.uscc, Subject.legal_form).filter(Subject.uscc.in_(usccs)).all())
    # names as every output shows them: the JSON, the page and the CSV/XLSX downloads alike
    visits = [v.model_copy(update={"name": shown_name(v.name, forms.get(v.uscc))}) for v in visits]
    if select is not None:
        visits = select(visits)
    log.shown(principal, purpose or f"{DEFAULT_PURPOSE} {plan_row.name}", [v.uscc for v in visits])
    return visits


def _make(session: Session, settings, principal: Principal, body: PlanCreateIn, today: dt.date
          ) -> tuple[Plan, Draw]:
    """The plan ``body`` asks for (drawn, or a v2 commitment), every check first; a small city's
    inside the request, a big one's in a job of its own process, waited for without holding the
    worker (``plan_jobs``: the draw holds the GIL for seconds at a time)."""
    plan_jobs.checked_request(session, settings, principal, body, today)
    if plan_jobs.runs_inline(session, settings):
        return plan_jobs.make_plan(session, settings, principal, body, today)
    job = plan_jobs.wait(settings, plan_jobs.start(session, settings, principal, body, today).id)
    if job.status != "succeeded" or job.plan_id is None:
        raise plan_jobs.error_of(job)
    return plan_service.get_plan(session, job.plan_id, principal)


def _csv(content: bytes, filename: str) -> Response:
    return Response(content, media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


def _xlsx(content: bytes, filename: str) -> Response:
    return Response(content, media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


_CSV_CONTENT = {200: {"content": {"text/csv": {"schema": {"type": "string"}}}, "description": "CSV (UTF-8, BOM)"}}
_XLSX_CONTENT = {200: {"content": {"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {
    "schema": {"type": "string", "format": "binary"}}}, "description": "Excel workbook"}}


# --------------------------------------------------------------------------- API


def ratio_reader(principal: CurrentUser, request: Request) -> Principal:
    """A regulator of ``department``, or a machine (API key) of a regulator of it or of an admin
    (an external 双随机 platform). Judged on the raw query parameter, before the route validates
    it (as roles are judged before ids): a caller refused gets the 403, logged, whatever it sent;
    a well-formed department is the only one a regulator's can equal."""
    department = request.query_params.get("department")
    if principal.kind == "machine" and principal.role == "admin":
        return principal
    if principal.role == "regulator" and department is not None and principal.department == department:
        return principal
    raise NotAllowed(f"{principal.role} {principal.username!r} may not read the ratios of department "
                     f"{department!r}; rule: a regulator of that department or an admin API key", field="department")


@router.get("/inspection-ratios", response_model=InspectionRatiosOut,
            responses=error_responses(*ROLE_ERRORS, TooManyAttempts, plan_service.PlanDataUnavailable))
def inspection_ratios(session: SessionDep, settings: SettingsDep,
                      reader: Annotated[Principal, Depends(ratio_reader)],
                      department: Annotated[str, Query(min_length=1, max_length=40, pattern=r"^[\w\-]+$")],
                      item: Annotated[str, Query(min_length=1, max_length=40, pattern=r"^[\w\-.]+$")],
                      as_of: Annotated[dt.date, Query(description="as-of date of the grades to use")],
                      policy: Annotated[str, Query(pattern=r"^[A-Za-z0-9_\-]{1,60}$")] = "default",
                      ) -> InspectionRatiosOut:
    """Per grade stratum: ratio, pool size, expected inspections — the numbers a plan would use,
    with the model version and as-of date of the grades (aggregates only: not logged per subject).
    At most ``TIERS_RATIO_READS_PER_HOUR`` per user or key and hour (429): each reads the city's grades."""
    from serving.services.rates import spend

    spend(session, action="inspection_ratios", actor=f"{reader.kind}:{reader.username}",
          per_hour=settings.ratio_reads_per_hour, what="检查比例查询 (inspection-ratio reads)")
    return plan_service.inspection_ratios(session, settings.data_dir, plan_service.load_named_policy(policy),
                                          department=department, item=item, as_of=as_of)


@router.post("/plans", response_model=PlanSummaryOut, status_code=201,
             responses=error_responses(*ROLE_ERRORS, Conflict, TooManyAttempts, plan_service.PlanDataUnavailable))
def create_plan(body: PlanCreateIn, principal: Regulator, session: SessionDep, settings: SettingsDep,
                today: TodayDep) -> PlanSummaryOut:
    """Commit (seed hash, pool hashes, policy hash), then draw and assign inspectors; one transaction.
    The pool holds the subjects every department of the plan may read; at most
    ``TIERS_PLANS_PER_HOUR`` plans per user and hour (429)."""
    return _summary(*_make(session, settings, principal, body, today))


@router.post("/plan-jobs", response_model=PlanJobOut, status_code=202,
             responses=error_responses(*ROLE_ERRORS, Conflict, TooManyAttempts, plan_service.PlanDataUnavailable))
def start_plan_job(body: PlanCreateIn, principal: Regulator, session: SessionDep, settings: SettingsDep,
                   today: TodayDep, response: Response) -> PlanJobOut:
    """``POST /plans`` in the background, for a pool of any size (a whole city: minutes): every
    check of ``POST /plans`` answers at once (same refusals), then 202 with the job; poll
    ``Location`` (``GET /plan-jobs/{job_id}``) until ``done``: ``plan_id``, or ``message`` (nothing stored)."""
    return _started(session, settings, principal, body, today, response)


@router.post("/plan-jobs/v2", response_model=PlanJobOut, status_code=202,
             responses=error_responses(*ROLE_ERRORS, Conflict, TooManyAttempts, plan_service.PlanDataUnavailable))
def start_plan_job_v2(body: PlanCommitIn, principal: Regulator, session: SessionDep, settings: SettingsDep,
                      today: TodayDep, response: Response) -> PlanJobOut:
    """``POST /plans/v2`` (the commitment) in the background, as ``POST /plan-jobs``."""
    return _started(session, settings, principal, body, today, response)


def _started(session: Session, settings, principal: Principal, body: PlanCreateIn, today: dt.date,
             response: Response) -> PlanJobOut:
    plan_jobs.checked_request(session, settings, principal, body, today)
    job = plan_jobs.start(session, settings, principal, body, today)
    response.headers["Location"] = f"/api/v1/plan-jobs/{job.id}"
    return PlanJobOut(**plan_jobs.job_view(job))


@router.get("/plan-jobs/{job_id}", response_model=PlanJobOut, responses=error_responses(*ROLE_ERRORS, NotFound))
def read_plan_job(job_id: JobId, principal: Regulator, session: SessionDep, request: Request) -> PlanJobOut:
    """A plan job of the caller's department (others: 404): status, progress (0–1), the stage in
    Chinese (``?lang=en``: English), then the plan's id or why none was made."""
    return PlanJobOut(**plan_jobs.job_view(plan_jobs.get_job(session, principal, job_id), page_lang(request)))


@router.get("/plans", response_model=list[PlanSummaryOut], responses=error_responses(*ROLE_ERRORS))
def list_plans(principal: Regulator, session: SessionDep) -> list[PlanSummaryOut]:
    """Plans the caller's department takes part in (no subject-level data)."""
    return [_summary(p, d) for p, d in plan_service.list_plans(session, principal)]


@router.get("/plans/{plan_id}", response_model=PlanDetailOut, responses=error_responses(*_PLAN_ERRORS))
def get_plan(plan_id: PlanId, principal: Regulator, session: SessionDep, log: ReadLogDep, today: TodayDep,
             purpose: ReadPurpose = None) -> PlanDetailOut:
    """Summary per grade and the visit list (subject, masked name, district, grade, items,
    inspectors, visit order); each listed subject is logged."""
    plan_row, draw = plan_service.get_plan(session, plan_id, principal)
    return _detail(session, plan_row, draw, principal, purpose, log, today)


@router.get("/plans/{plan_id}/verify", response_model=PlanVerification, responses=error_responses(*_PLAN_ERRORS))
def verify_plan(plan_id: PlanId, principal: Regulator, session: SessionDep) -> PlanVerification:
    """Recompute the draw from the published inputs: ``match`` true (MATCH) or the first difference."""
    return plan_service.verify_stored_plan(*plan_service.get_plan(session, plan_id, principal))


@router.get("/plans/{plan_id}/export.csv", response_class=Response, responses={
    **error_responses(*_PLAN_ERRORS), **_CSV_CONTENT})
def export_csv(plan_id: PlanId, principal: Regulator, session: SessionDep, log: ReadLogDep,
               purpose: ReadPurpose = None) -> Response:
    """The internal visit list (with grades) as CSV; each subject in it is logged."""
    return _plan_file(session, principal, plan_id, purpose, log, "csv")


@router.get("/plans/{plan_id}/export.xlsx", response_class=Response, responses={
    **error_responses(*_PLAN_ERRORS), **_XLSX_CONTENT})
def export_xlsx(plan_id: PlanId, principal: Regulator, session: SessionDep, log: ReadLogDep,
                purpose: ReadPurpose = None) -> Response:
    """The workbook: 检查名单 (visits), 汇总 (per grade), 承诺 (commitment); each subject logged."""
    return _plan_file(session, principal, plan_id, purpose, log, "xlsx")


@router.post("/plans/{plan_id}/results", response_model=list[ResultOut],
             responses=error_responses(*_PLAN_ERRORS))
def post_results(plan_id: PlanId, body: ResultsIn, principal: Regulator, session: SessionDep, today: TodayDep
                 ) -> list[ResultOut]:
    """Record outcomes (no_problem / corrected / case_opened); each becomes an ``inspection``
    record. The publication deadline (20 days) is tracked per result. Only for the plan's visits
    the caller may read, of its own department's items, dated in the plan's period, not before
    the plan was made and not after today (422 otherwise)."""
    plan_row, draw = plan_service.get_plan(session, plan_id, principal)
    stored = plan_service.record_results(session, plan_row, draw, principal,
                                         [r.model_dump() for r in body.results], today)
    return [_result_out(r, today) for r in stored]


@router.get("/plans/{plan_id}/results.csv", response_class=Response, responses={
    **error_responses(NotFound), **_CSV_CONTENT})
def public_results(plan_id: PlanId, session: SessionDep, today: TodayDep) -> Response:
    """The public results (一公开) of the plan: published results only, names of persons masked,
    corrections shown; no grades (the table of ``/public/{department}/results.csv``)."""
    plan_row = session.get(Plan, plan_id)
    draw = None if plan_row is None else session.query(Draw).filter(Draw.plan_id == plan_row.id).first()
    if plan_row is None or draw is None:
        raise NotFound(f"no inspection plan #{plan_id}", field="plan_id")
    frame = plan_service.public_results(session, today, PERSON_NAMED_FORMS, draw_id=draw.id)
    return _csv(plan_service.public_results_table_csv(frame), f"plan-{plan_row.id}-results.csv")


# --------------------------------------------------------------------------- tiers-draw-v2


def _json_download(document: BaseModel, filename: str) -> Response:
    return Response(document.model_dump_json(indent=2), media_type="application/json",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


def _enter_salt(session: Session, settings, principal: Principal, plan_id: int, body: SaltIn) -> tuple[Plan, Draw]:
    plan_row, draw = plan_service.get_plan(session, plan_id, principal)
    return plan_service.enter_salt_v2(session, plan_row, draw, principal, settings.data_dir, value=body.value,
                                      known_at=body.known_at)


def _full_plan(session: Session, log: ReadLog, principal: Principal, plan_id: int, purpose: str | None
               ) -> tuple[Plan, InspectionPlan]:
    """The full plan for auditors (every pool subject with its grade): each pool subject is a logged read."""
    plan_row, draw = plan_service.get_plan(session, plan_id, principal)
    if "plan" not in draw.payload:
        raise NotFound(f"计划 #{plan_row.id} 尚未抽取；plan #{plan_row.id} is not drawn yet", field="plan_id")
    plan = plan_service.stored_plan(draw)
    pool = sorted({row[0] for td in plan.tasks for row in td.pool})
    log.shown(principal, purpose or f"{DEFAULT_PURPOSE} {plan_row.name} 审计", pool)
    return plan_row, plan


_JSON_CONTENT = {200: {"content": {"application/json": {"schema": {"type": "object"}}}, "description": "JSON"}}


@router.post("/plans/v2", response_model=PlanSummaryOut, status_code=201,
             responses=error_responses(*ROLE_ERRORS, Conflict, TooManyAttempts, plan_service.PlanDataUnavailable))
def commit_plan_v2(body: PlanCommitIn, principal: Regulator, session: SessionDep, settings: SettingsDep,
                   today: TodayDep) -> PlanSummaryOut:
    """tiers-draw-v2, step 1: publish the commitment (seed hash, policy hash, salt source, per task the
    pool's Merkle root and per-stratum counts). The service keeps the seed, the nonce key and the
    committed pools; nothing is drawn until a second regulator enters the public salt."""
    return _summary(*_make(session, settings, principal, body, today))


@router.post("/plans/{plan_id}/salt", response_model=PlanSummaryOut,
             responses=error_responses(*_PLAN_ERRORS, Conflict, InvalidInput))
def enter_salt(plan_id: PlanId, body: SaltIn, principal: Regulator, session: SessionDep, settings: SettingsDep
               ) -> PlanSummaryOut:
    """tiers-draw-v2, step 2: the public salt (by a regulator of the department other than the plan's
    creator: 403 otherwise), then the draw on the committed pools. 422 when the salt breaks a rule
    (known before the commitment) or the draw does not reproduce the commitment; 409 once drawn."""
    return _summary(*_enter_salt(session, settings, principal, plan_id, body))


@router.get("/plans/{plan_id}/bundle.json", response_model=PublicBundle, responses=error_responses(*_PLAN_ERRORS))
def plan_bundle(plan_id: PlanId, principal: Regulator, session: SessionDep) -> Response:
    """The public bundle (no grade, no undrawn subject): `tiers plan verify BUNDLE` or
    `python3 verifier/tiers_draw_verify.py BUNDLE` check it."""
    plan_row, draw = plan_service.get_plan(session, plan_id, principal)
    return _json_download(plan_service.plan_bundle(draw), f"plan-{plan_row.id}-bundle.json")


@router.get("/plans/{plan_id}/plan.json", response_class=Response,
            responses={**error_responses(*_PLAN_ERRORS), **_JSON_CONTENT})
def plan_full(plan_id: PlanId, principal: Regulator, session: SessionDep, log: ReadLogDep,
              purpose: ReadPurpose = None) -> Response:
    """The full plan for auditors (every pool subject with its grade, the nonce key): `tiers plan verify
    PLAN` checks everything. Each pool subject is logged as a read."""
    plan_row, plan = _full_plan(session, log, principal, plan_id, purpose)
    return _json_download(plan, f"plan-{plan_row.id}.json")


@router.get("/subjects/{uscc}/draw-openings", response_model=list[SubjectOpening],
            responses=error_responses(*ROLE_ERRORS, NotFound))
def subject_openings(_enterprise: Enterprise,
                     access: SubjectAccessDep, session: SessionDep) -> list[SubjectOpening]:
    """The enterprise's own private opening for each tiers-draw-v2 plan whose pool held it: `tiers plan
    verify BUNDLE --subject USCC --opening OPENING` confirms its stratum and that it was drawn or not
    as the rule says. 404 when no plan's pool held it. The read is logged."""
    return _openings(session, access.uscc)


def _openings_by_plan(session: Session, uscc: str) -> list[tuple[int, SubjectOpening]]:
    """(plan id, opening) for each drawn v2 plan whose pool held ``uscc``; 404 when none did."""
    found = plan_service.subject_plan_openings(session, uscc)
    if not found:
        raise NotFound(f"{uscc} 未进入任何随机抽查名录库；{uscc} was in no draw's pool", field="uscc")
    return [(plan_row.id, opening) for plan_row, opening in found]


def _openings(session: Session, uscc: str) -> list[SubjectOpening]:
    return [opening for _, opening in _openings_by_plan(session, uscc)]


# --------------------------------------------------------------------------- pages

def _page(request: Request, template: str, context: dict) -> HTMLResponse:
    lang = page_lang(request)
    return render(request, template, {"tp": lambda key: page_text("plans", key, lang), **context})


def _department_items(settings, department: str | None) -> list[dict]:
    try:
        items = plan_service.load_scheduler_tables(settings.data_dir)["items"]
    except plan_service.PlanDataUnavailable:
        return []
    return items[items["department"] == department].to_dict("records")


@pages_router.get("/regulator/plans", response_class=HTMLResponse)
def plans_page(request: Request, principal: PageRegulator, session: SessionDep, settings: SettingsDep,
               today: TodayDep) -> Response:
    """The department's plans and the form to create one."""
    return _plans_page(request, principal, session, settings, today)


# the salt formats of common public draws, offered by name on the plan form (the API takes any
# format of the grammar, docs/draw-algorithm.md §16.1): 福彩3D, 排列5
SALT_FORMATS = (r"\d \d \d", r"\d \d \d \d \d")


def _plans_page(request: Request, principal: Principal, session: Session, settings, today: dt.date,
                form: dict | None = None, error: ServiceError | None = None) -> HTMLResponse:
    """The plans and the new-plan form; after a refusal, the form as it was typed with the reason
    at its field (in the page's language)."""
    rows = [_summary(p, d) for p, d in plan_service.list_plans(session, principal)]
    dates = plan_service.latest_grade_dates(session, 1)
    shown = None if error is None else {
        "field": error.field or "", "message": human_message(error.code, error.message, status=error.status_code,
                                                            zh=error.zh, lang=page_lang(request))}
    response = _page(request, "plans.html", {
        "user": principal, "csrf": page_csrf(settings, principal), "plans": rows,
        "items": _department_items(settings, principal.department), "today": today,
        "default_as_of": dates[0] if dates else today, "error": shown, "form": form or {},
        "districts": plan_service.district_choices(session), "path": "/regulator/plans",
        "salt_formats": SALT_FORMATS})
    if error is not None:
        response.status_code = error.status_code
    return response


@pages_router.post("/regulator/plans")
def create_plan_page(request: Request, principal: PageRegulator, session: SessionDep, settings: SettingsDep,
                     today: TodayDep,
                     csrf_token_: Annotated[str, Form(alias="csrf_token")],
                     plan_id: Annotated[str, Form(max_length=400)] = "",
                     period_start: Annotated[str, Form(max_length=40)] = "",
                     period_end: Annotated[str, Form(max_length=40)] = "",
                     as_of: Annotated[str, Form(max_length=40)] = "",
                     items: Annotated[list[str], Form(max_length=200)] = [],  # noqa: B006 (FastAPI copies it)
                     district_codes: Annotated[list[str], Form(max_length=200)] = [],  # noqa: B006 (FastAPI copies it)
                     salt_source: Annotated[str, Form(max_length=500)] = "",
                     salt_pattern: Annotated[str, Form(max_length=200)] = "") -> Response:
    """Publish a tiers-draw-v2 commitment; the draw waits for a second person's public salt. A
    refused form comes back as typed, with the reason at its field."""
    require_page_csrf(settings, principal, csrf_token_)
    form = {"plan_id": plan_id, "period_start": period_start, "period_end": period_end, "as_of": as_of,
            "items": items, "district_codes": district_codes, "salt_source": salt_source,
            "salt_pattern": salt_pattern}
    by_name = {name: code for code, name in plan_service.district_names(session).items()}
    # each chosen in the list (its code); an API-style value may still name several, by code or
    # name (玄武区;320102), as the form's text box took them
    districts = [by_name.get(d.strip(), d.strip()) for chosen in district_codes
                 for d in chosen[:400].replace("；", ";").replace("，", ";").replace(",", ";").split(";") if d.strip()]
    try:
        body = validated(PlanCommitIn, {
            "plan_id": plan_id.strip(), "period_start": period_start or None, "period_end": period_end or None,
            "as_of": as_of or None,
            "tasks": [{"department": principal.department, "item": i} for i in items],
            "pool_filter": {"district_codes": districts} if districts else None,
            **({"salt_source": salt_source.strip()} if salt_source.strip() else {}),
            **({"salt_pattern": salt_pattern.strip()} if salt_pattern.strip() else {})})
        plan_jobs.checked_request(session, settings, principal, body, today)
        if not plan_jobs.runs_inline(session, settings):  # a big city: its progress page, then the plan
            job = plan_jobs.start(session, settings, principal, body, today)
            return RedirectResponse(f"/regulator/plan-jobs/{job.id}", status_code=303)
        plan_row, _ = plan_jobs.make_plan(session, settings, principal, body, today)
    except ServiceError as exc:
        session.rollback()
        return _plans_page(request, principal, session, settings, today, form, exc)
    return RedirectResponse(f"/regulator/plans/{plan_row.id}", status_code=303)


@pages_router.get("/regulator/plan-jobs/{job_id}", response_class=HTMLResponse)
def plan_job_page(request: Request, job_id: JobId, principal: PageRegulator, session: SessionDep) -> Response:
    """A plan being made: its progress (the page polls ``/status``), then the plan (opened at once)."""
    lang = page_lang(request)
    view = plan_jobs.job_view(plan_jobs.get_job(session, principal, job_id), lang)
    return _page(request, "plan_job.html", {"user": principal, "job": view,
                                            "j": lambda key: page_text("plan_jobs", key, lang)})


@pages_router.get("/regulator/plan-jobs/{job_id}/status")
def plan_job_status(request: Request, job_id: JobId, principal: PageRegulator, session: SessionDep) -> JSONResponse:
    view = plan_jobs.job_view(plan_jobs.get_job(session, principal, job_id), page_lang(request))
    return JSONResponse(view, headers={"Cache-Control": "no-store"})


@pages_router.post("/regulator/plans/{plan_id}/salt")
def enter_salt_page(request: Request, plan_id: PlanId, principal: PageRegulator, session: SessionDep,
                    settings: SettingsDep, log: ReadLogDep, today: TodayDep,
                    value: Annotated[str, Form(min_length=1, max_length=500)],
                    csrf_token_: Annotated[str, Form(alias="csrf_token")],
                    known_at: Annotated[str, Form(max_length=40)] = "") -> Response:
    """The second person's public salt (a time without zone is Beijing time), then the draw. A
    refused salt comes back on the plan page as typed, with the reason at its field."""
    require_page_csrf(settings, principal, csrf_token_)
    try:
        try:
            known = _beijing_time(known_at)
        except ValueError as exc:  # the time (datetime-local) was not a time
            raise InvalidInput(f"invalid known_at: {exc}", field="known_at",
                               zh="随机数公布时间格式不正确（应为日期和时间）。") from exc
        body = validated(SaltIn, {"value": value.strip(), "known_at": known})
        _enter_salt(session, settings, principal, plan_id, body)
    except InvalidInput as exc:  # what the person can fix in the form (others: the error page)
        session.rollback()
        refused = {"value": value, "known_at": known_at, "field": exc.field or "value", "message": human_message(
            exc.code, exc.message, status=exc.status_code, zh=exc.zh, lang=page_lang(request))}
        return _plan_page(request, plan_id, principal, session, log, settings, today, salt_refused=refused,
                          status_code=exc.status_code)
    return RedirectResponse(f"/regulator/plans/{plan_id}", status_code=303)


def _beijing_time(text: str) -> dt.datetime | None:
    """A form's time (``datetime-local``: no zone, meant as Beijing time); None when empty."""
    from serving.labels import BEIJING

    if not text.strip():
        return None
    moment = dt.datetime.fromisoformat(text.strip())
    return moment if moment.tzinfo else moment.replace(tzinfo=BEIJING)


@pages_router.get("/regulator/plans/{plan_id}/bundle.json")
def plan_bundle_page(plan_id: PlanId, principal: PageRegulator, session: SessionDep) -> Response:
    plan_row, draw = plan_service.get_plan(session, plan_id, principal)
    return _json_download(plan_service.plan_bundle(draw), f"plan-{plan_row.id}-bundle.json")


@pages_router.get("/regulator/plans/{plan_id}/plan.json")
def plan_full_page(plan_id: PlanId, principal: PageRegulator, session: SessionDep, log: ReadLogDep,
                   purpose: ReadPurpose = None) -> Response:
    plan_row, plan = _full_plan(session, log, principal, plan_id, purpose)
    return _json_download(plan, f"plan-{plan_row.id}.json")


@pages_router.get("/regulator/plans/{plan_id}", response_class=HTMLResponse)
def plan_page(request: Request, plan_id: PlanId, principal: PageRegulator, session: SessionDep, log: ReadLogDep,
              settings: SettingsDep, today: TodayDep, purpose: ReadPurpose = None) -> Response:
    """Commitment, verification, per-grade summary, the visit list and the results form."""
    return _plan_page(request, plan_id, principal, session, log, settings, today, purpose)


def _plan_page(request: Request, plan_id: int, principal: Principal, session: Session, log: ReadLog,
               settings, today: dt.date, purpose: str | None = None, refused: dict | None = None,
               status_code: int = 200, salt_refused: dict | None = None) -> HTMLResponse:
    """The plan page; ``refused``: a results form as it was typed, with the reason at its field
    (shown first, whatever page of the visit list is shown); ``salt_refused``: the salt form so."""
    plan_row, draw = plan_service.get_plan(session, plan_id, principal)
    visits = VisitList(request, {r.uscc for r in plan_service.plan_results(session, draw)})
    # the visits and the verification read once per stored plan, not parsed again each view (issue 22)
    all_visits, verification = plan_service.plan_view(session, plan_row, draw)
    detail = _detail(session, plan_row, draw, principal, purpose, log, today, select=visits, visits=all_visits)
    response = _page(request, "plan.html", {
        "user": principal, "csrf": page_csrf(settings, principal), "plan": detail, "today": today,
        "visit_window": visits.window, "visit_filters": visits.filters, "refused": refused,
        "districts": visits.districts, "salt_refused": salt_refused,
        # the salt form only to whom may use it (the rule is the service's, enter_salt_v2)
        "salt_not_allowed": plan_service.salt_not_allowed(plan_row, principal),
        "verification": verification})
    response.status_code = status_code
    return response


_GRADE_RANK = {"D": 0, "C": 1, "B": 2, "A": 3}


class VisitList:
    """The plan page's visit list: searched (USCC or name prefix), filtered (grade, district,
    result entered or not), sorted (visit order, grade, USCC) and paged (``v_`` parameters). A plan's
    visits are one stored document, so this is done on the document, without a query."""

    def __init__(self, request: Request, with_results: set[str]) -> None:
        params = request.query_params
        self.request, self.with_results = request, with_results
        self.filters = {"search": (params.get("v_search") or "").strip()[:60],
                        "grade": params.get("v_grade") if params.get("v_grade") in _GRADE_RANK else "",
                        "district": (params.get("v_district") or "").strip()[:6],
                        "status": params.get("v_status") if params.get("v_status") in ("entered", "missing") else "",
                        "sort": params.get("v_sort") if params.get("v_sort") in ("grade", "uscc") else "order"}
        self.window: Window | None = None
        self.districts: list[tuple[str, str]] = []  # (code, name) of the plan's visits: the filter's choices

    def __call__(self, visits: list) -> list:
        f = self.filters
        self.districts = sorted({(v.district_code, v.district_name or v.district_code) for v in visits
                                 if v.district_code})
        search = f["search"].upper() if f["search"].isascii() else f["search"]
        chosen = [v for v in visits
                  if (not search or v.uscc.startswith(search) or v.name.startswith(f["search"]))
                  and (not f["grade"] or v.grade == f["grade"]) and (not f["district"] or v.district_code == f["district"])
                  and (not f["status"] or (v.uscc in self.with_results) == (f["status"] == "entered"))]
        if f["sort"] == "grade":
            chosen.sort(key=lambda v: (_GRADE_RANK.get(v.grade, 9), v.visit_order))
        elif f["sort"] == "uscc":
            chosen.sort(key=lambda v: v.uscc)
        self.window = position_window(self.request, chosen, prefix="v_", anchor="visits-section")
        return self.window.items


@pages_router.get("/regulator/plans/{plan_id}/export.{fmt}")
def plan_download_page(request: Request, plan_id: PlanId, fmt: Literal["csv", "xlsx"], principal: PageRegulator,
                       session: SessionDep, settings: SettingsDep, log: ReadLogDep,
                       purpose: ReadPurpose = None) -> Response:
    """The visit list a person opens: headers and names in the page's language (``?lang=``)."""
    return _plan_file(session, principal, plan_id, purpose, log, fmt, page_lang(request), settings.data_dir)


@pages_router.post("/regulator/plans/{plan_id}/results")
def record_result_page(request: Request, plan_id: PlanId, principal: PageRegulator, session: SessionDep,
                       settings: SettingsDep, log: ReadLogDep, today: TodayDep,
                       uscc: Annotated[str, Form(max_length=18)],
                       inspection_item: Annotated[str, Form(max_length=40)],
                       csrf_token_: Annotated[str, Form(alias="csrf_token")],
                       outcome: Annotated[str, Form(max_length=40)] = "",
                       inspected_on: Annotated[str, Form(max_length=40)] = "",
                       published_on: Annotated[str, Form(max_length=40)] = "",
                       document_no: Annotated[str, Form(max_length=400)] = "",
                       correction_reason: Annotated[str, Form(max_length=500)] = "") -> Response:
    """One visit's result (a correction: a new version with its reason). A refused form comes back
    as typed, with the reason at its field, in the page's language."""
    require_page_csrf(settings, principal, csrf_token_)
    typed = {"uscc": uscc, "inspection_item": inspection_item, "outcome": outcome, "inspected_on": inspected_on,
             "published_on": published_on, "document_no": document_no, "correction_reason": correction_reason}
    try:
        row = validated(ResultIn, {"uscc": uscc, "inspection_item": inspection_item, "outcome": outcome,
                                  "inspected_on": inspected_on or None,
                                  "published_on": published_on or None,
                                  "document_no": document_no.strip(),
                                  "correction_reason": correction_reason.strip()})
        plan_row, draw = plan_service.get_plan(session, plan_id, principal)
        plan_service.record_results(session, plan_row, draw, principal, [row.model_dump()], today)
    except (InvalidInput, Conflict) as exc:  # what the person can fix in the form (others: the error page)
        session.rollback()
        refused = {**typed, "field": exc.field or "", "message": human_message(
            exc.code, exc.message, status=exc.status_code, zh=exc.zh, lang=page_lang(request))}
        return _plan_page(request, plan_id, principal, session, log, settings, today, refused=refused,
                          status_code=exc.status_code)
    return RedirectResponse(f"/regulator/plans/{plan_id}#results", status_code=303)
