"""Server-rendered pages (Chinese by default, ``?lang=en``): login, 我的信用 and role homes.

Pages authenticate with an httponly, SameSite=strict JWT cookie; every form post also carries a
CSRF token bound to the session (``serving.security.csrf_token``).
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Literal
from urllib.parse import parse_qsl, urlencode

from fastapi import Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from features.schema import INDUSTRY_SECTIONS
from serving.db.tables import Alert
from serving.deps import (
    SESSION_COOKIE,
    EligibilityDep,
    PageAnalyst,
    PageDecider,
    PageEnterprise,
    PageUser,
    ReadLogDep,
    RegraderDep,
    RowIdPath,
    SessionDep,
    SettingsDep,
    SubjectAccess,
    TodayDep,
    client_ip,
    end_token,
    page_csrf,
    page_principal,
    page_subject_access,
    require_page_csrf,
)
from serving.errors import (
    Conflict,
    CsrfFailed,
    InvalidInput,
    NotAuthenticated,
    NotFound,
    ServiceError,
    human_message,
    validated,
)
from serving.i18n import page_text, text
from serving.pages import page_lang, render
from serving.presenters import objection_out, subject_out
from serving.routes._lists import SubjectListQuery, logged_subject_page, previous_after, subject_list_csv
from serving.routes._page_lists import Window, counted_window, key_window, page_size, position_window
from serving.routes._routers import page_router
from serving.schemas import DecisionIn, ObjectionCreate, RepairCreate, RepairDecisionIn
from serving.security import Principal, create_access_token, csrf_token, csrf_valid
from serving.services import commitments, grades, objections, repairs, subjects
from serving.services.applications import ApplicationKind, application_page
from serving.services.grades import Regrader
from serving.services.logins import LoginLimits
from serving.services.plans import district_choices
from serving.services.repairs import RepairEligibility
from serving.services.users import authenticate, principal_of
from serving.settings import Settings
from serving.validation import PURPOSE_LENGTH, NoControlChars
from serving.waterfall import waterfall_bars

router = page_router()
LOGIN_COOKIE = "tiers_login"  # the login form's CSRF nonce
PageSubject = Annotated[SubjectAccess, Depends(page_subject_access)]
HOME_BY_ROLE = {"regulator": "/regulator", "sector": "/sector", "analyst": "/analyst", "admin": "/admin"}


def _home(principal: Principal) -> str:
    return f"/credit/{principal.uscc}" if principal.role == "enterprise" else HOME_BY_ROLE[principal.role]


@router.get("/", response_class=HTMLResponse)
def index(request: Request, settings: SettingsDep) -> Response:
    try:
        principal = page_principal(request, settings)
    except NotAuthenticated:
        return RedirectResponse("/login", status_code=303)
    return RedirectResponse(_home(principal), status_code=303)


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, settings: SettingsDep) -> Response:
    return _login_form(request, settings, None)


def _login_form(request: Request, settings: Settings, error: ServiceError | None, status_code: int = 200,
                headers: dict[str, str] | None = None, username: str = "") -> Response:
    """The login form with its CSRF token: HMAC of a random nonce kept in an httponly, SameSite
    cookie (signed double submit: a page of another site can neither read the cookie nor make the
    token)."""
    nonce = request.cookies.get(LOGIN_COOKIE) or secrets.token_urlsafe(24)
    shown = None if error is None else human_message(error.code, error.message, status=error.status_code,
                                                     zh=error.zh, lang=page_lang(request))
    response = render(request, "login.html", {"user": None, "error": shown, "username": username,
                                              "csrf": csrf_token(settings.jwt_key, f"login:{nonce}")},
                      status_code=status_code, headers=headers)
    response.set_cookie(LOGIN_COOKIE, nonce, httponly=True, samesite="strict", secure=settings.secure_cookies,
                        max_age=3600)
    return response


@router.post("/login", response_class=HTMLResponse)
def login_submit(request: Request, session: SessionDep, settings: SettingsDep,
                 username: Annotated[str, Form(max_length=80), NoControlChars],
                 password: Annotated[str, Form(max_length=200), NoControlChars],
                 csrf_token_: Annotated[str, Form(alias="csrf_token", max_length=200)] = "",
                 ) -> Response:
    nonce = request.cookies.get(LOGIN_COOKIE)
    if not (nonce and csrf_valid(settings.jwt_key, f"login:{nonce}", csrf_token_)):
        err = CsrfFailed("the login form expired or did not come from this site; reload the page")
        return _login_form(request, settings, err, status_code=err.status_code, username=username)
    now = dt.datetime.now(dt.UTC)  # before the user is read, as the API login
    try:
        user = authenticate(session, username, password, client_ip(request), limits=LoginLimits.of(settings),
                            now=now)
    except ServiceError as exc:
        return _login_form(request, settings, exc, status_code=exc.status_code, headers=exc.headers,
                           username=username)
    principal = principal_of(user)
    token, _ = create_access_token(principal, settings.jwt_key, settings.jwt_ttl_minutes, now=now)
    response = RedirectResponse(_home(principal), status_code=303)
    response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="strict", secure=settings.secure_cookies,
                        max_age=settings.jwt_ttl_minutes * 60)
    response.delete_cookie(LOGIN_COOKIE)
    return response


@router.post("/logout")
def logout(request: Request, principal: PageUser, session: SessionDep, settings: SettingsDep,
           csrf_token_: Annotated[str, Form(alias="csrf_token")]) -> Response:
    """End the session: the cookie is deleted and its token refused even if replayed."""
    require_page_csrf(settings, principal, csrf_token_)
    end_token(request, settings, session, request.cookies.get(SESSION_COOKIE))
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response


@router.get("/credit/{uscc}", response_class=HTMLResponse)
def credit_page(request: Request, access: PageSubject, session: SessionDep, settings: SettingsDep,
                today: TodayDep, eligibility: EligibilityDep) -> Response:
    """我的信用 (企业信用 to staff): grade, reasons with records, waterfall, what-if, objections and repairs."""
    return _credit_page(request, access, session, settings, today, eligibility)


@dataclass(frozen=True)
class FormError:
    """A refused form of the enterprise page, shown again at its record with what was typed."""

    form: str  # objection | repair | commitment
    record_id: str
    field: str
    message: str
    text: str


def _credit_page(request: Request, access: SubjectAccess, session, settings: Settings, today: dt.date,
                 eligibility, form_error: FormError | None = None, status_code: int = 200) -> Response:
    lang = page_lang(request)
    subject = subject_out(subjects.get_subject(session, access.uscc))
    try:
        grade = grades.latest_grade(session, access.uscc)
    except ServiceError:
        grade = None
    records = subjects.list_records(session, access.uscc)
    from serving.services.credit_reports import record_ids_in_force

    in_force = record_ids_in_force(session, access.uscc, today)
    lists = record_lists(request, records, grade.as_of if grade is not None else None, in_force)
    bars, svg_height = [], 0.0
    if grade is not None:
        contributions = [((r.get("label_zh") if lang == "zh" else r.get("label_en") or r.get("label_zh")) or r["code"],
                          float(r["contribution"])) for r in grade.reasons]
        base = grade.base_score if grade.base_score is not None else grade.score - sum(v for _, v in contributions)
        bars, svg_height = waterfall_bars(base, contributions, text("base", lang), text("final", lang))
    repair_from = {}
    for record in (r for group in lists["groups"] for r in group["window"].items):  # the rows shown
        eligible, verdict = repairs.check_eligibility(record, today, eligibility)
        # a record no longer in force (publicity ended, list left) is seen by nobody: nothing to repair
        counts = record.record_id in in_force
        repair_from[record.record_id] = (eligible and counts, verdict.eligible_from if counts else None)
    objection_rows = [objection_out(o, today) for o in objections.list_objections(session, uscc=access.uscc)]
    repair_rows = repairs.list_repairs(session, uscc=access.uscc)
    return render(request, "credit.html", {
        "user": access.principal, "subject": subject, "grade": grade, "records": lists,
        "records_by_id": {r.record_id: r for r in records},
        "bars": bars, "svg_height": svg_height, "repair_from": repair_from,
        "objections": objection_rows, "repairs": repair_rows,
        # one application at a time per record: its form is hidden while one is pending
        "pending_objection": {o.record_id for o in objection_rows if o.status == "pending"},
        "pending_repair": {a.record_id for a in repair_rows if a.status == "pending"},
        "form_error": form_error, "text_limit": TEXT_LIMIT,
        "path": f"/credit/{access.uscc}",  # the language toggle of a refused form: the page, not the post
        "can_act": access.principal.role == "enterprise", "csrf": page_csrf(settings, access.principal),
        "purpose": request.query_params.get("purpose"),
        "commitment_reminders": commitments.reminders(session, access.uscc, today), "today": today,
        "signable_matters": commitments.signable(session, access.uscc)
        if access.principal.role == "enterprise" else [],
        "signed_commitments": commitments.of_subject(session, access.uscc),
    }, status_code=status_code)


TEXT_LIMIT = 2000  # the API's limit of a reason or statement (serving.schemas); the textareas' maxlength


@dataclass(frozen=True)
class EnterpriseForm:
    """A form an enterprise posts from its own credit page, its CSRF token checked: what the route
    acts with and, refused, shows the page again with."""

    request: Request
    access: SubjectAccess
    session: Session
    settings: Settings
    today: dt.date
    eligibility: RepairEligibility

    def refused(self, form: str, record_id: str, typed: str, exc: ServiceError) -> Response:
        """The enterprise page again, with the refusal at the form (in the page's language) and the text kept."""
        self.session.rollback()
        message = human_message(exc.code, exc.message, status=exc.status_code, zh=exc.zh, lang=page_lang(self.request))
        error = FormError(form, record_id, exc.field or "", message, typed)
        return _credit_page(self.request, self.access, self.session, self.settings, self.today, self.eligibility,
                            error, exc.status_code)


def enterprise_form(request: Request, access: PageSubject, session: SessionDep, settings: SettingsDep,
                    today: TodayDep, eligibility: EligibilityDep,
                    csrf_token_: Annotated[str, Form(alias="csrf_token")], _enterprise: PageEnterprise) -> EnterpriseForm:
    require_page_csrf(settings, access.principal, csrf_token_)
    return EnterpriseForm(request, access, session, settings, today, eligibility)


EnterpriseFormDep = Annotated[EnterpriseForm, Depends(enterprise_form)]


RECORD_STATUSES = ("effective", "ended", "revoked", "repaired")


def _record_status(record, in_force: set[str] | None = None) -> str:
    if record.revoked:
        return "revoked"
    if record.repaired:
        return "repaired"
    return "effective" if in_force is None or record.record_id in in_force else "ended"


def record_lists(request: Request, records: list, as_of: dt.date | None, in_force: set[str] | None = None) -> dict:
    """A subject's records as its page shows them: those decided on or before the grade's
    evaluation date (the ones the grade saw), then those after it, apart; each filtered (kind,
    status, department, or one record by number: ``r_record``, the link of an objection or repair
    to the record in dispute), sorted and paged (``r_``/``l_`` parameters). Bounded by one subject.
    ``in_force``: the ids of the records in force today; the others' status is ``ended`` (each
    record gets ``status``)."""
    params = request.query_params
    kind, status, department = params.get("r_kind") or "", params.get("r_status") or "", params.get("r_dept") or ""
    record_id = (params.get("r_record") or "").strip()[:40]  # one record: the one an application disputes
    chosen = [r for r in records if (not kind or r.kind == kind) and (not status or _record_status(r, in_force) == status)
              and (not department or r.department == department) and (not record_id or r.record_id == record_id)]
    if params.get("r_sort") == "oldest":
        chosen = sorted(chosen, key=lambda r: (r.decision_date, r.record_id))
    before = [r for r in chosen if as_of is None or r.decision_date <= as_of]
    after = [r for r in chosen if as_of is not None and r.decision_date > as_of]
    groups = [{"id": "records", "after": False, "window": position_window(request, before, prefix="r_",
                                                                         anchor="records-section")}]
    if after:
        groups.append({"id": "records-after", "after": True,
                       "window": position_window(request, after, prefix="l_", anchor="records-after-section")})
    return {"groups": groups, "as_of": as_of, "status": {r.record_id: _record_status(r, in_force) for r in chosen},
            "kinds": sorted({r.kind for r in records}), "departments": sorted({r.department for r in records}),
            "statuses": RECORD_STATUSES,
            "filters": {"kind": kind, "status": status, "department": department, "record": record_id,
                        "sort": "oldest" if params.get("r_sort") == "oldest" else "newest"}}


@router.get("/credit/{uscc}/draw-openings", response_class=HTMLResponse)
def draw_openings_page(request: Request, access: PageSubject, session: SessionDep,
                       _enterprise: PageEnterprise,
                       ) -> Response:
    """The enterprise's own openings: one per tiers-draw-v2 plan whose pool held it, each with its
    download and the plan's public bundle; when no pool held it, a page saying so (the credit page
    links here before knowing, and an error page would read as a fault). Computed on request (one
    pass over each such plan's pool)."""
    from serving.routes.plans import _openings_by_plan

    try:
        openings = _openings_by_plan(session, access.uscc)
    except NotFound:
        openings = []
    return render(request, "openings.html", {"user": access.principal, "uscc": access.uscc, "openings": openings})


@router.get("/credit/{uscc}/draw-openings/{plan_id}.json")
def draw_opening_file(access: PageSubject, session: SessionDep, plan_id: RowIdPath,
                      _enterprise: PageEnterprise,
                      ) -> Response:
    """One opening, as the file `tiers plan verify BUNDLE --subject USCC --opening FILE` reads."""
    from serving.routes.plans import _json_download, _openings_by_plan

    opening = dict(_openings_by_plan(session, access.uscc)).get(plan_id)
    if opening is None:
        raise NotFound(f"{access.uscc} 未进入计划 #{plan_id} 的名录库；{access.uscc} was in no pool of plan #{plan_id}",
                       field="plan_id")
    return _json_download(opening, f"{access.uscc}-plan-{plan_id}-opening.json")


@router.post("/credit/{uscc}/objections")
def object_to_record(form: EnterpriseFormDep, record_id: Annotated[str, Form(max_length=40), NoControlChars],
                     reason: Annotated[str, Form(max_length=5 * TEXT_LIMIT)]) -> Response:
    try:
        body = validated(ObjectionCreate, {"record_id": record_id, "reason": reason})
        objections.file_objection(form.session, form.access.principal, form.access.uscc, body, form.today)
    except ServiceError as exc:
        return form.refused("objection", record_id, reason, exc)
    return RedirectResponse(f"/credit/{form.access.uscc}#objections", status_code=303)


@router.post("/credit/{uscc}/commitments")
def sign_commitment(form: EnterpriseFormDep,
                    matter_code: Annotated[str, Form(max_length=40), NoControlChars]) -> Response:
    """签署信用承诺: the enterprise signs a catalogue matter's standard text (the API's
    ``commitments.sign``); refused, the page again with the message at the form and the choice kept."""
    try:
        commitments.sign(form.session, form.access.principal, form.access.uscc, matter_code, form.today)
    except ServiceError as exc:
        return form.refused("commitment", "", matter_code, exc)
    return RedirectResponse(f"/credit/{form.access.uscc}#commitments", status_code=303)


@router.post("/credit/{uscc}/repairs")
def apply_for_repair(form: EnterpriseFormDep, record_id: Annotated[str, Form(max_length=40)],
                     statement: Annotated[str, Form(max_length=5 * TEXT_LIMIT)]) -> Response:
    try:
        body = validated(RepairCreate, {"record_id": record_id, "statement": statement})
        repairs.apply_for_repair(form.session, form.access.principal, form.access.uscc, body, form.today,
                                 form.eligibility)
    except ServiceError as exc:
        return form.refused("repair", record_id, statement, exc)
    return RedirectResponse(f"/credit/{form.access.uscc}#repairs", status_code=303)




@router.get("/regulator", response_class=HTMLResponse)
def regulator_page(request: Request, session: SessionDep, settings: SettingsDep, today: TodayDep,
                   principal: PageDecider, log: ReadLogDep,
                   purpose: Annotated[str | None, Query(**PURPOSE_LENGTH), NoControlChars] = None,
                   grade: Literal["A", "B", "C", "D", ""] = "",
                   district: Annotated[str, Query(pattern=r"^([0-9]{6})?$", max_length=6)] = "",
                   industry: Annotated[str, Query(pattern=r"^[A-T]?$", max_length=1)] = "",
                   search: Annotated[str, Query(max_length=60), NoControlChars] = "",
                   sort: Literal["risk", "uscc", "name"] = "risk",
                   after: Annotated[str | None, Query(max_length=400)] = None,
                   q_status: Literal["pending", "decided", "all"] = "pending",
                   q_search: Annotated[str, Query(pattern=r"^[0-9A-Za-z]{0,18}$")] = "",
                   q_sort: Literal["due", "newest"] = "due",
                   ) -> Response:
    """The regulator's home: the covered subjects (paged by key, filtered, searched, sorted; each
    subject shown is a logged read), and the department's objection and repair queues."""
    window, list_changed, csv_url = None, False, None
    if purpose:
        query = SubjectListQuery(purpose, grade=grade or None, district=district or None, industry=industry or None,
                                 search=search.strip() or None, after=after, sort=sort,
                                 limit=page_size(request.query_params.get("size")))
        page = logged_subject_page(log, principal, query)
        window = key_window(request, page.items, page.total, page.next, previous=previous_after(session, principal, query),
                            previous_read=True, anchor="subjects-list")
        list_changed = page.changed
        # the whole list under the same filters and order (no page: no cursor, no size)
        csv_url = "/regulator/subjects.csv?" + urlencode({k: v for k, v in (
            ("purpose", purpose), ("grade", grade), ("district", district), ("industry", industry),
            ("search", search), ("sort", sort)) if v})
    return _regulator_page(request, session, settings, today, principal, purpose=purpose, window=window,
                           list_changed=list_changed, csv_url=csv_url,
                           filters={"grade": grade, "district": district, "industry": industry, "search": search,
                                    "sort": sort, "size": page_size(request.query_params.get("size"))},
                           queue_filters={"status": q_status, "search": q_search, "sort": q_sort})


@router.get("/regulator/subjects.csv")
def regulator_subjects_csv(principal: PageDecider, log: ReadLogDep,
                           purpose: Annotated[str, Query(**PURPOSE_LENGTH), NoControlChars],
                           grade: Literal["A", "B", "C", "D", ""] = "",
                           district: Annotated[str, Query(pattern=r"^([0-9]{6})?$", max_length=6)] = "",
                           industry: Annotated[str, Query(pattern=r"^[A-T]?$", max_length=1)] = "",
                           search: Annotated[str, Query(max_length=60), NoControlChars] = "",
                           sort: Literal["risk", "uscc", "name"] = "risk") -> Response:
    """下载监管对象名单: the regulator's list under the page's filters and order, whole, as CSV
    (streamed in chunks read by key; each chunk's subjects logged before they are sent)."""
    query = SubjectListQuery(purpose, grade=grade or None, district=district or None, industry=industry or None,
                             search=search.strip() or None, sort=sort)
    return StreamingResponse(subject_list_csv(log, principal, query), media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": 'attachment; filename="subjects.csv"'})


def _regulator_page(request: Request, session: Session, settings: Settings, today: dt.date, principal: Principal, *,
                    purpose: str | None, window: Window | None, filters: dict, queue_filters: dict,
                    refused: dict | None = None, status_code: int = 200, list_changed: bool = False,
                    csv_url: str | None = None) -> Response:
    """The regulator's page around its list (``window``) and queues; ``refused``: a decision form as
    it was typed, with the reason at its field."""
    department = None if principal.role == "admin" else principal.department
    q_status = queue_filters["status"]
    queue = {"department": department, "status": None if q_status == "all" else q_status,
             "search": queue_filters["search"].strip().upper() or None, "newest_first": queue_filters["sort"] == "newest"}
    return render(request, "regulator.html", {
        "user": principal, "purpose": purpose, "csrf": page_csrf(settings, principal), "window": window,
        "list_changed": list_changed, "csv_url": csv_url,
        # an application's link to the record in dispute reads it for this purpose (the admin's words)
        "review_purpose": purpose or page_text("admin", "open_subject_purpose", page_lang(request)),
        "filters": filters, "queue_filters": queue_filters, "sections": INDUSTRY_SECTIONS, "refused": refused,
        "districts": district_choices(session),
        "objections": _queue(request, session, objections.OBJECTIONS, queue, "o_", "objections",
                             lambda rows: [objection_out(o, today) for o in rows]),
        "repairs": _queue(request, session, repairs.REPAIRS, queue, "r_", "repairs", list),
    }, status_code=status_code)


def _queue(request: Request, session: Session, kind: ApplicationKind, queue: dict, prefix: str, anchor: str,
           present: Callable[[list], list]) -> Window:
    """One queue of the regulator's page, paged by position (``o_page``/``r_page``)."""
    size = page_size(request.query_params.get(prefix + "size"))
    try:
        number = max(int(request.query_params.get(prefix + "page") or 1), 1)
    except ValueError:
        number = 1
    total, rows = application_page(session, kind, offset=(number - 1) * size, limit=size, **queue)
    window = counted_window(request, total, prefix=prefix, anchor=anchor)
    if window.offset != (number - 1) * size:  # past the last page: show the last one
        rows = application_page(session, kind, offset=window.offset, limit=size, **queue)[1]
    window.items = present(rows)
    return window


@dataclass(frozen=True)
class DecisionForm:
    """A department's answer to an application, posted from this session's page."""

    principal: Principal
    reason: str
    back: str = ""  # the queues' filters and pages to return to ("?q_status=…"), or ""


_QUEUE_PARAMS = ("q_status", "q_search", "q_sort", "o_page", "o_size", "r_page", "r_size")


def decision_form(settings: SettingsDep, principal: PageDecider,
                  reason: Annotated[str, Form(max_length=2000), NoControlChars],
                  csrf_token_: Annotated[str, Form(alias="csrf_token")],
                  back: Annotated[str, Form(max_length=1000)] = "") -> DecisionForm:
    require_page_csrf(settings, principal, csrf_token_)
    kept = [(k, v) for k, v in parse_qsl(back) if k in _QUEUE_PARAMS]  # only the queues' own: no re-read
    return DecisionForm(principal, reason, "?" + urlencode(kept) if kept else "")


DecisionFormDep = Annotated[DecisionForm, Depends(decision_form)]


# an application kind → the body its decision validates to and the service deciding it
_DECISIONS = {"objection": (DecisionIn, objections.decide_objection), "repair": (RepairDecisionIn, repairs.decide_repair)}


def _decide(request: Request, session: Session, settings: Settings, today: dt.date, regrader: Regrader,
            form: DecisionForm, kind: str, application_id: int, decision: str) -> Response:
    """Validate and record the decision on the ``kind`` application #``application_id``; refused (what
    the person can fix), the regulator's queues again as they were (``back``), the form as typed with
    the reason at its field, in the page's language."""
    body_model, decide = _DECISIONS[kind]
    try:
        body = validated(body_model, {"decision": decision, "reason": form.reason})
        decide(session, form.principal, application_id, body, today, regrader)
    except (InvalidInput, Conflict) as exc:
        session.rollback()
        params = dict(parse_qsl(form.back.lstrip("?")))
        # the page as its GET shows the queues (their pager links and the language toggle read the URL)
        page = Request({**request.scope, "method": "GET", "path": "/regulator",
                        "query_string": form.back.lstrip("?").encode()}, request.receive)
        refused = {"kind": kind, "id": application_id, "decision": decision, "reason": form.reason,
                   "field": exc.field or "", "message": human_message(
                       exc.code, exc.message, status=exc.status_code, zh=exc.zh, lang=page_lang(request))}
        queue_filters = {"status": params.get("q_status") if params.get("q_status") in ("decided", "all") else "pending",
                         "search": params.get("q_search", "") if re.fullmatch(r"[0-9A-Za-z]{0,18}",
                                                                               params.get("q_search", "")) else "",
                         "sort": "newest" if params.get("q_sort") == "newest" else "due"}
        return _regulator_page(page, session, settings, today, form.principal, purpose=None, window=None,
                               filters={"grade": "", "district": "", "industry": "", "search": "", "sort": "risk",
                                        "size": page_size(None)},
                               queue_filters=queue_filters, refused=refused, status_code=exc.status_code)
    return RedirectResponse(f"/regulator{form.back}#{kind}s", status_code=303)


@router.post("/regulator/objections/{objection_id}/decision")
def decide_objection_page(request: Request, session: SessionDep, settings: SettingsDep, today: TodayDep,
                          regrader: RegraderDep, form: DecisionFormDep, objection_id: RowIdPath,
                          decision: Annotated[str, Form(max_length=40)] = "") -> Response:
    return _decide(request, session, settings, today, regrader, form, "objection", objection_id, decision)


@router.post("/regulator/repairs/{application_id}/decision")
def decide_repair_page(request: Request, session: SessionDep, settings: SettingsDep, today: TodayDep,
                       regrader: RegraderDep, form: DecisionFormDep, application_id: RowIdPath,
                       decision: Annotated[str, Form(max_length=40)] = "") -> Response:
    return _decide(request, session, settings, today, regrader, form, "repair", application_id, decision)


@router.get("/analyst", response_class=HTMLResponse)
def analyst_page(request: Request, session: SessionDep, settings: SettingsDep,
                 principal: PageAnalyst) -> Response:
    alerts = list(session.scalars(select(Alert).where(Alert.acknowledged.is_(False)).order_by(Alert.id.desc())
                                  .limit(100)))
    return render(request, "analyst.html", {"user": principal, "alerts": alerts,
                                            "shares": grades.grade_shares(session),
                                            "csrf": page_csrf(settings, principal)})
