"""系统管理 pages: users, API keys, the query log and its chain check, the promotion audit, and
objections and repairs across departments.

The same services as the admin API (``serving.routes.admin``); every form carries the session's
CSRF token. A refused form is shown again with what was typed and a message naming the field and
the rule in the page's language (Chinese by default).
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from typing import Annotated, Any

from fastapi import Depends, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from features.schema import INDUSTRY_SECTIONS
from serving.deps import (
    SessionDep,
    SettingsDep,
    TodayDep,
    page_csrf,
    page_principal,
    require_page_csrf,
    require_role,
)
from serving.errors import Conflict, InvalidInput, NotFound, ServiceError, UnknownDepartment
from serving.i18n import page_text
from serving.labels import BEIJING, department_names
from serving.pages import page_lang, render
from serving.presenters import local_minute, objection_out
from serving.routes._routers import page_router
from serving.schemas import UserCreate
from serving.security import Principal
from serving.services import model_registry as registry_service
from serving.services import objections, querylog, repairs, users
from serving.services.querylog_check import check_chain
from serving.validation import USCC_PATTERN

logger = logging.getLogger(__name__)
router = page_router()
PageAdmin = Annotated[Principal, Depends(require_role("admin", principal_dep=page_principal))]
Username = Annotated[str, Path(min_length=3, max_length=80, pattern=r"^[A-Za-z0-9_.@-]+$")]
ROLES = ("regulator", "sector", "enterprise", "analyst", "admin")
SECTIONS = INDUSTRY_SECTIONS  # GB/T 4754-2017 (features.schema: the one list)


def _say(request: Request, key: str, **values: Any) -> str:
    text = page_text("admin", key, page_lang(request))
    return text.format(**values) if values else text


def _page(request: Request, template: str, principal: Principal, settings: Any, context: dict[str, Any],
          status_code: int = 200) -> Response:
    lang = page_lang(request)
    return render(request, template, {
        "a": lambda key: page_text("admin", key, lang), "user": principal, "csrf": page_csrf(settings, principal),
        "local": local_minute, "role_name": lambda r: page_text("admin", f"role_{r}", lang), **context},
        status_code=status_code)


# -- messages ----------------------------------------------------------------------------------

def password_rule(request: Request, problem: str) -> str:
    """The password policy's verdict (``security.password_problem``, English) in the page's words."""
    if m := re.match(r"must be at least (\d+) characters( for an admin)?", problem):
        return _say(request, "pw_length_admin" if m.group(2) else "pw_length", n=m.group(1))
    if problem.startswith("must not contain the user name"):
        return _say(request, "pw_username")
    if m := re.search(r"strength (\d)/4, (?:an admin needs|needs) (\d)", problem):
        return _say(request, "pw_guessable_score", got=m.group(1), need=m.group(2))
    return _say(request, "pw_guessable")


def _field_name(request: Request, field: str | None) -> str:
    return _say(request, f"field_{field}") if field else ""


def _validation_message(request: Request, exc: ValidationError) -> tuple[str, str]:
    """(field, message) of the first problem pydantic found in a form, in the page's words."""
    error = exc.errors()[0]
    field = str(error["loc"][0]) if error["loc"] else ""
    kind, ctx = error["type"], error.get("ctx") or {}
    if kind == "missing":
        rule = _say(request, "rule_required")
    elif kind == "string_too_short":
        rule = _say(request, "rule_min_length", n=ctx.get("min_length", ""))
    elif kind == "string_too_long":
        rule = _say(request, "rule_max_length", n=ctx.get("max_length", ""))
    elif kind == "string_pattern_mismatch" and field == "username":
        rule = _say(request, "rule_username")
    elif kind == "string_pattern_mismatch" and field == "section":
        rule = _say(request, "rule_section")
    elif field == "uscc":
        rule = _say(request, "rule_uscc")
    elif field == "role":
        rule = _say(request, "rule_role")
    else:
        rule = _say(request, "rule_invalid")
    return field, _say(request, "field_rule", field=_field_name(request, field), rule=rule)


def _service_message(request: Request, exc: ServiceError, values: dict[str, str]) -> str:
    """A service's refusal of an admin form, in the page's words (field and rule)."""
    field = exc.field or ""
    if field == "password":
        return _say(request, "field_rule", field=_field_name(request, "password"),
                    rule=password_rule(request, exc.message.removeprefix("password ")))
    if isinstance(exc, Conflict) and field == "username":
        return _say(request, "username_taken", username=values.get("username", ""))
    if isinstance(exc, Conflict) and field == "active":
        return _say(request, "own_account")
    if isinstance(exc, NotFound) and field == "username":
        return _say(request, "no_user", username=values.get("username", ""))
    if isinstance(exc, NotFound) and field == "prefix":
        return _say(request, "no_key", prefix=values.get("prefix", ""))
    if isinstance(exc, UnknownDepartment):
        return _say(request, "field_rule", field=_field_name(request, "department"),
                    rule=_say(request, "rule_department", value=values.get("department", "")))
    if isinstance(exc, InvalidInput) and field in ("department", "section", "uscc"):
        role = values.get("role", "")
        needed = {"regulator": "department", "sector": "section", "enterprise": "uscc"}.get(role)
        key = "scope_needed" if field == needed else "scope_unwanted"
        return _say(request, key, role=_say(request, f"role_{role}") if role in ROLES else role,
                    field=_field_name(request, field))
    return exc.message


# -- home and users ----------------------------------------------------------------------------

@router.get("/admin", response_class=HTMLResponse)
def admin_home(request: Request, settings: SettingsDep, session: SessionDep, principal: PageAdmin) -> Response:
    return _page(request, "admin_home.html", principal, settings, {"n_users": users.count_users(session)})


def _users_page(request: Request, session: Any, settings: Any, principal: Principal, *, form: dict[str, str],
                error: str | None = None, error_field: str | None = None, notice: str | None = None,
                status_code: int = 200) -> Response:
    return _page(request, "admin_users.html", principal, settings, {
        "users": users.list_users(session), "form": form, "error": error, "error_field": error_field,
        "notice": notice, "roles": ROLES, "sections": SECTIONS, "departments": department_names(settings.data_dir)},
        status_code=status_code)


@router.get("/admin/users", response_class=HTMLResponse)
def users_page(request: Request, settings: SettingsDep, session: SessionDep, principal: PageAdmin,
               done: Annotated[str | None, Query(max_length=40)] = None) -> Response:
    notice = _say(request, f"done_{done}") if done in ("created", "deactivated", "activated", "reset") else None
    return _users_page(request, session, settings, principal, form={}, notice=notice)


@router.post("/admin/users", response_class=HTMLResponse)
def create_user_form(request: Request, settings: SettingsDep, session: SessionDep, principal: PageAdmin,
                     csrf_token_: Annotated[str, Form(alias="csrf_token")],
                     username: Annotated[str, Form(max_length=200)] = "",
                     password: Annotated[str, Form(max_length=400)] = "",
                     role: Annotated[str, Form(max_length=40)] = "",
                     department: Annotated[str, Form(max_length=200)] = "",
                     section: Annotated[str, Form(max_length=40)] = "",
                     uscc: Annotated[str, Form(max_length=200)] = "",
                     display_name: Annotated[str, Form(max_length=400)] = "") -> Response:
    require_page_csrf(settings, principal, csrf_token_)
    form = {"username": username.strip(), "role": role, "department": department.strip(), "section": section,
            "uscc": uscc.strip(), "display_name": display_name.strip()}  # never the password
    try:
        body = UserCreate.model_validate({k: v for k, v in {**form, "password": password}.items() if v})
    except ValidationError as exc:
        field, message = _validation_message(request, exc)
        if field == "password":  # the policy's own message (length first), as the service would say
            from serving.security import password_problem

            problem = password_problem(password, username=form["username"], role=role or "regulator")
            message = _say(request, "field_rule", field=_field_name(request, "password"),
                           rule=password_rule(request, problem or "too easy to guess"))
        return _users_page(request, session, settings, principal, form=form, error=message, error_field=field,
                           status_code=422)
    try:
        users.create_user(session, body, data_dir=settings.data_dir)
    except ServiceError as exc:
        session.rollback()
        return _users_page(request, session, settings, principal, form=form, error_field=exc.field,
                           error=_service_message(request, exc, form), status_code=exc.status_code)
    return RedirectResponse("/admin/users?done=created", status_code=303)


@router.post("/admin/users/{username}/active", response_class=HTMLResponse)
def set_active_form(request: Request, settings: SettingsDep, session: SessionDep, principal: PageAdmin,
                    username: Username, csrf_token_: Annotated[str, Form(alias="csrf_token")],
                    active: Annotated[bool, Form()], confirm: Annotated[bool, Form()] = False,
                    reason: Annotated[str, Form(max_length=500)] = "") -> Response:
    """停用 (or 启用) a user: their sessions and API keys end with it (as the API's PATCH). 停用
    locks a person out, so it takes a reason and a ticked confirmation (a slip of one click changes
    nothing); the reason goes to the service log with who did it."""
    require_page_csrf(settings, principal, csrf_token_)
    reason = " ".join(reason.split())
    try:
        if username == principal.username and not active:
            raise Conflict("an admin cannot deactivate their own account", field="active")
        if not active and (not confirm or len(reason) < 2):
            field = "confirm" if not confirm else "reason"
            return _users_page(request, session, settings, principal,
                               form={"deactivate_for": username, "reason": reason}, error_field=field,
                               error=_say(request, f"deactivate_needs_{field}"), status_code=422)
        users.set_active(session, username, active)
        if not active:
            logger.info("user %s deactivated by %s: %s", username, principal.username, reason)
    except ServiceError as exc:
        return _users_page(request, session, settings, principal, form={}, error_field=exc.field,
                           error=_service_message(request, exc, {"username": username}),
                           status_code=exc.status_code)
    return RedirectResponse(f"/admin/users?done={'activated' if active else 'deactivated'}", status_code=303)


@router.post("/admin/users/{username}/password", response_class=HTMLResponse)
def reset_password_form(request: Request, settings: SettingsDep, session: SessionDep, principal: PageAdmin,
                        username: Username, csrf_token_: Annotated[str, Form(alias="csrf_token")],
                        password: Annotated[str, Form(max_length=200)] = "") -> Response:
    """重置密码 under the password policy; the user's current sessions end."""
    require_page_csrf(settings, principal, csrf_token_)
    try:
        users.reset_password(session, username, password)
    except ServiceError as exc:
        session.rollback()
        return _users_page(request, session, settings, principal, form={"reset_for": username},
                           error_field=exc.field, error=_service_message(request, exc, {"username": username}),
                           status_code=exc.status_code)
    return RedirectResponse("/admin/users?done=reset", status_code=303)


# -- API keys ----------------------------------------------------------------------------------

def _keys_page(request: Request, session: Any, settings: Any, principal: Principal, *, form: dict[str, str],
               new_key: dict[str, str] | None = None, error: str | None = None, status_code: int = 200) -> Response:
    return _page(request, "admin_keys.html", principal, settings, {
        "keys": users.list_api_keys(session), "form": form, "new_key": new_key, "error": error,
        "usernames": [u.username for u in users.list_users(session) if u.active]}, status_code=status_code)


@router.get("/admin/api-keys", response_class=HTMLResponse)
def keys_page(request: Request, settings: SettingsDep, session: SessionDep, principal: PageAdmin) -> Response:
    return _keys_page(request, session, settings, principal, form={})


@router.post("/admin/api-keys", response_class=HTMLResponse)
def create_key_form(request: Request, settings: SettingsDep, session: SessionDep, principal: PageAdmin,
                    csrf_token_: Annotated[str, Form(alias="csrf_token")],
                    username: Annotated[str, Form(max_length=80)] = "",
                    name: Annotated[str, Form(max_length=200)] = "") -> Response:
    """A key for a (machine) user: its secret is shown on this response only, never again."""
    require_page_csrf(settings, principal, csrf_token_)
    form = {"username": username.strip(), "name": name.strip()}
    if not form["name"] or len(form["name"]) > 80:
        message = _say(request, "field_rule", field=_field_name(request, "key_name"),
                       rule=_say(request, "rule_key_name"))
        return _keys_page(request, session, settings, principal, form=form, error=message, status_code=422)
    try:
        row, key = users.create_api_key(session, form["username"], form["name"])
    except ServiceError as exc:
        session.rollback()
        return _keys_page(request, session, settings, principal, form=form,
                          error=_service_message(request, exc, form), status_code=exc.status_code)
    response = _keys_page(request, session, settings, principal, form={},
                          new_key={"key": key, "prefix": row.prefix, "username": form["username"], "name": row.name},
                          status_code=201)
    response.headers["Cache-Control"] = "no-store"  # the secret must not stay in a cache
    return response


@router.post("/admin/api-keys/{prefix}/revoke", response_class=HTMLResponse)
def revoke_key_form(request: Request, settings: SettingsDep, session: SessionDep, principal: PageAdmin,
                    prefix: Annotated[str, Path(min_length=8, max_length=8, pattern=r"^[A-Za-z0-9_-]+$")],
                    csrf_token_: Annotated[str, Form(alias="csrf_token")]) -> Response:
    require_page_csrf(settings, principal, csrf_token_)
    try:
        users.revoke_api_key(session, prefix)
    except ServiceError as exc:
        return _keys_page(request, session, settings, principal, form={},
                          error=_service_message(request, exc, {"prefix": prefix}), status_code=exc.status_code)
    return RedirectResponse("/admin/api-keys", status_code=303)


# -- the query log -----------------------------------------------------------------------------

def _day(request: Request, name: str, value: str) -> dt.date | None:
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise InvalidInput(_say(request, "field_rule", field=_field_name(request, name),
                                rule=_say(request, "rule_date")), field=name) from None


def _start_of(day: dt.date) -> dt.datetime:
    """The start of a Beijing-time day, in UTC (the log stores UTC)."""
    return dt.datetime.combine(day, dt.time(), BEIJING).astimezone(dt.UTC)


def _querylog_page(request: Request, session: Any, settings: Any, principal: Principal, *, actor: str, uscc: str,
                   since: str, until: str, offset: int, check: Any = None) -> Response:
    filters = {"actor": actor.strip(), "uscc": uscc.strip().upper(), "since": since, "until": until}
    error, total, rows = None, 0, []
    try:
        if filters["uscc"] and not re.fullmatch(USCC_PATTERN, filters["uscc"]):
            raise InvalidInput(_say(request, "field_rule", field=_field_name(request, "uscc"),
                                    rule=_say(request, "rule_uscc")), field="uscc")
        first, last = _day(request, "since", since), _day(request, "until", until)
        if first and last and last < first:
            raise InvalidInput(_say(request, "range_reversed"), field="until")
        total, rows = querylog.list_entries(
            session, actor=filters["actor"] or None, uscc=filters["uscc"] or None,
            since=_start_of(first) if first else None,
            until=_start_of(last + dt.timedelta(days=1)) if last else None, offset=offset, limit=PAGE_SIZE)
    except InvalidInput as exc:
        error = exc.message
    return _page(request, "admin_querylog.html", principal, settings, {
        "filters": filters, "rows": rows, "total": total, "offset": offset, "page_size": PAGE_SIZE,
        "names": users.display_names(session, {e.actor for e in rows}),  # 姓名 as the user list shows it
        "error": error, "check": check}, status_code=422 if error else 200)


PAGE_SIZE = 100


@router.get("/admin/querylog", response_class=HTMLResponse)
def querylog_page(request: Request, settings: SettingsDep, session: SessionDep, principal: PageAdmin,
                  actor: Annotated[str, Query(max_length=80)] = "",
                  uscc: Annotated[str, Query(max_length=40)] = "",
                  since: Annotated[str, Query(max_length=20)] = "",
                  until: Annotated[str, Query(max_length=20)] = "",
                  offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0) -> Response:
    """查询使用登记: search by user, subject and Beijing-time dates, newest first."""
    return _querylog_page(request, session, settings, principal, actor=actor, uscc=uscc, since=since,
                          until=until, offset=offset)


@router.post("/admin/querylog/check", response_class=HTMLResponse)
def querylog_check_form(request: Request, settings: SettingsDep, session: SessionDep, principal: PageAdmin,
                        csrf_token_: Annotated[str, Form(alias="csrf_token")]) -> Response:
    """Verify every entry's MAC, the chain, the head and the signed checkpoints; show the verdict."""
    require_page_csrf(settings, principal, csrf_token_)
    check = check_chain(session)
    session.rollback()
    return _querylog_page(request, session, settings, principal, actor="", uscc="", since="", until="", offset=0,
                          check=check)


# -- promotion audit, applications ---------------------------------------------------------------

@router.get("/admin/promotions", response_class=HTMLResponse)
def promotions_page(request: Request, settings: SettingsDep, session: SessionDep, principal: PageAdmin) -> Response:
    """Every promotion attempt (refused ones too), newest first, with the gate's verdict."""
    return _page(request, "admin_promotions.html", principal, settings,
                 {"audit": registry_service.audit_entries(session, principal, limit=500)})


@router.get("/admin/applications", response_class=HTMLResponse)
def applications_page(request: Request, settings: SettingsDep, session: SessionDep, principal: PageAdmin,
                      today: TodayDep,
                      status: Annotated[str, Query(pattern="^(|pending|upheld|rejected|approved)$")] = "") -> Response:
    """Objections and repair applications of every department (read only), with links to the subject."""
    return _page(request, "admin_applications.html", principal, settings, {
        "status": status,
        "objections": [objection_out(o, today) for o in objections.list_objections(session, status=status or None,
                                                                                     limit=500)],
        "repairs": repairs.list_repairs(session, status=status or None, limit=500)})
