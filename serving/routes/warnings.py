"""预警 early warnings for staff: the warnings of the subjects they cover (each shown subject is
logged as read), acknowledged and closed, downloaded as CSV; and their page."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Depends, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse

from serving.deps import (
    Decider,
    PageDecider,
    ReadLogDep,
    Refusal,
    RefusedTry,
    SessionDep,
    SettingsDep,
    page_csrf,
    page_principal,
    require_page_csrf,
    require_role,
    row_id,
)
from serving.errors import (
    AlreadyDecided,
    Conflict,
    InvalidInput,
    NotAllowed,
    NotAuthenticated,
    NotOwningDepartment,
    error_responses,
    human_message,
    validated,
)
from serving.pages import page_lang, render
from serving.routes._page_lists import key_window, page_size
from serving.routes._routers import api_and_page_routers
from serving.schemas import WarningCause, WarningClose, WarningOut
from serving.security import Principal, Role
from serving.services import warning_lists, warnings
from serving.services.subjects import get_subject
from serving.services.warning_lists import WarningFilter
from serving.services.warnings import CAUSE_LABELS_ZH, NotYourWarning, UnknownWarning
from serving.validation import MAX_ROW_ID, PURPOSE_LENGTH, NoControlChars

router, pages_router = api_and_page_routers("/api/v1/warnings", "warnings")
WarningId = Annotated[int, Path(ge=1, le=MAX_ROW_ID)]
ActionPath = Annotated[str, Path(pattern="^(acknowledge|close)$")]
HANDLER_ROLES: tuple[Role, ...] = ("regulator", "admin")  # who may reach a handling (warnings.may_handle decides)
PurposeParam = Annotated[str, Query(**PURPOSE_LENGTH, description="查询用途, logged"), NoControlChars]
StatusParam = Literal["open", "acknowledged", "closed", "active"]
CauseParam = WarningCause
AfterParam = Annotated[str | None, Query(max_length=400, description="the `next` cursor of the previous page")]
_ERRORS = (NotAuthenticated, NotAllowed)
CSV_CHUNK = 2000  # warnings per piece of a streamed CSV (read, logged, then sent)
_CSV = {200: {"content": {"text/csv": {"schema": {"type": "string"}}}, "description": "CSV (UTF-8, BOM)"}}


def _refusing(action: str | None) -> Refusal:
    """Another role's try at handling a warning (an enterprise closing its own, an analyst):
    refused, and logged as every refused role is (``deps.require_role``), naming the warning's
    subject (none for an id that is malformed or names no warning). ``action`` None: the page's,
    from its path."""

    def refused(session, principal: Principal, params: dict[str, str]) -> RefusedTry:
        error = NotAllowed(f"role {principal.role!r} may not acknowledge or close a warning", field="warning_id",
                           zh="您的账号不能处理预警：只有引起预警的部门（或覆盖该企业的监管部门）才能确认和关闭预警。")
        warning_id = row_id(params.get("warning_id"))
        done = action or ("acknowledge" if params.get("action") == "acknowledge" else "close")
        return RefusedTry(error, warnings.refused_handling_purpose(error, warning_id or "?", done),
                          warnings.subject_of(session, warning_id) if warning_id else "")

    return refused


Acknowledger = Annotated[Principal, Depends(require_role(*HANDLER_ROLES, refused=_refusing("acknowledge")))]
Closer = Annotated[Principal, Depends(require_role(*HANDLER_ROLES, refused=_refusing("close")))]
PageHandler = Annotated[Principal, Depends(require_role(*HANDLER_ROLES, principal_dep=page_principal,
                                                        refused=_refusing(None)))]


def _out(w, name: str) -> WarningOut:
    return WarningOut(id=w.id, uscc=w.uscc, name=name, cause=w.cause, cause_zh=CAUSE_LABELS_ZH.get(w.cause, w.cause),
                      message=w.message, record_ids=list(w.record_ids or []), department=w.department,
                      status=w.status, raised_on=w.raised_on, acknowledged_by=w.acknowledged_by,
                      closed_by=w.closed_by, close_note=w.close_note)


def _first(session, principal, log, purpose, filters: WarningFilter, limit: int = 500):
    """The first ``limit`` warnings of the list, their subjects logged as read before shown."""
    rows = warning_lists.warning_page(session, principal, filters, limit=limit).rows
    log.shown(principal, purpose, dict.fromkeys(w.uscc for w, _ in rows))  # logged before shown
    return rows


def _streamed_csv(session, principal, log, purpose, filters: WarningFilter) -> StreamingResponse:
    """The whole filtered list as CSV, streamed a chunk at a time. Each chunk's subjects are
    logged as read (durably: ``ReadLog.shown``) before its rows are sent, so a client that goes
    away mid-way has been sent nothing unlogged; the first chunk is read and logged before the
    answer starts, so a failure there is an error answer, not a cut-off file."""
    chunks = warning_lists.all_warnings(session, principal, filters, chunk=CSV_CHUNK)

    def logged():
        for rows in chunks:
            log.shown(principal, purpose, dict.fromkeys(w.uscc for w, _ in rows))
            yield rows

    pieces = warnings.warnings_csv_chunks(logged())
    first = [next(pieces), next(pieces, b"")]  # the header, then the first chunk: logged now

    def body():
        yield b"".join(first)
        yield from pieces

    return StreamingResponse(body(), media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": 'attachment; filename="warnings.csv"'})


@router.get("", response_model=list[WarningOut], responses=error_responses(*_ERRORS, InvalidInput))
def list_warnings(principal: Decider, session: SessionDep, log: ReadLogDep, purpose: PurposeParam,
                  status: StatusParam | None = "active", cause: CauseParam | None = None) -> list[WarningOut]:
    """The newest 500 warnings of the subjects the caller's department covers (default: not
    closed); the whole list: ``export.csv``."""
    return [_out(w, n) for w, n in _first(session, principal, log, purpose, WarningFilter(status, cause))]


@router.get("/export.csv", response_class=Response, responses={**error_responses(*_ERRORS, InvalidInput), **_CSV})
def export_warnings(principal: Decider, session: SessionDep, log: ReadLogDep, purpose: PurposeParam,
                    status: StatusParam | None = "active", cause: CauseParam | None = None) -> Response:
    """The whole list as CSV, streamed (UTF-8 with BOM, Chinese headers, every cell
    formula-neutralised); each subject shown is logged as read before its rows are sent."""
    return _streamed_csv(session, principal, log, purpose, WarningFilter(status, cause))


@router.post("/{warning_id}/acknowledge", response_model=WarningOut,
             responses=error_responses(*_ERRORS, UnknownWarning, NotOwningDepartment, AlreadyDecided))
def acknowledge(principal: Acknowledger, session: SessionDep, log: ReadLogDep, warning_id: WarningId) -> WarningOut:
    """Mark a warning seen (the answer is a logged read of its subject; a refusal, another role's
    too, is logged denied). Only the department that owns it (``warnings.may_handle``): an admin
    reads it, gets 403."""
    w = _handled(session, principal, log, warning_id, "acknowledge", None, warnings.HANDLING_PURPOSE)
    return _out(w, get_subject(session, w.uscc).name)


@router.post("/{warning_id}/close", response_model=WarningOut,
             responses=error_responses(*_ERRORS, UnknownWarning, NotOwningDepartment, AlreadyDecided))
def close(body: WarningClose, principal: Closer, session: SessionDep, log: ReadLogDep,
          warning_id: WarningId) -> WarningOut:
    """Close a warning with a note (the answer is a logged read of its subject; a refusal, another
    role's too, is logged denied)."""
    w = _handled(session, principal, log, warning_id, "close", body.note, warnings.HANDLING_PURPOSE)
    return _out(w, get_subject(session, w.uscc).name)


def _handled(session, principal, log, warning_id: int, action: str, note: str | None, purpose: str):
    """Acknowledge or close: the warning's subject is logged as read before the warning is
    shown; a try refused to the caller (not covered, another department's) is logged denied."""
    try:
        if action == "acknowledge":
            warning = warnings.acknowledge(session, principal, warning_id)
        else:
            warning = warnings.close(session, principal, warning_id, note or "")
    except (UnknownWarning, NotYourWarning, NotOwningDepartment) as exc:
        session.rollback()
        log.reads(principal, warnings.refused_handling_purpose(exc, warning_id, action), [(exc.uscc, "denied")])
        exc.logged = True
        raise
    log.shown(principal, purpose, [warning.uscc])
    return warning


# --- pages ----------------------------------------------------------------------------------

@pages_router.get("/regulator/warnings", response_class=HTMLResponse)
def warnings_page(request: Request, session: SessionDep, settings: SettingsDep, principal: PageDecider,
                  log: ReadLogDep,
                  purpose: Annotated[str | None, Query(**PURPOSE_LENGTH), NoControlChars] = None,
                  status: StatusParam | None = "active", after: AfterParam = None) -> Response:
    """预警处理: without a purpose only the count (nothing read); with one, a page of the list by
    key (each subject shown logged), with the whole list's CSV."""
    return _warnings_page(request, session, settings, principal, log, purpose, status, after)


def _warnings_page(request: Request, session, settings, principal, log, purpose: str | None,
                   status: str | None, after: str | None = None, refused: dict | None = None,
                   status_code: int = 200) -> Response:
    """The warnings page; ``refused``: a handling form as typed, the reason at its field."""
    filters = WarningFilter(status)
    open_count = warning_lists.count_open(session, principal)
    window = None
    if purpose:
        size = page_size(request.query_params.get("size"))
        page = warning_lists.warning_page(session, principal, filters, after=after, limit=size)
        previous = warning_lists.previous_warning_cursor(session, principal, filters, after, limit=size) if after else None
        log.shown(principal, purpose, dict.fromkeys(w.uscc for w, _ in page.rows))  # logged before shown
        window = key_window(request, [_out(w, n) for w, n in page.rows], page.total, page.next, previous=previous,
                            anchor="warnings")
    return render(request, "warnings.html", {"user": principal, "window": window, "purpose": purpose,
                                             "status": status, "open_count": open_count,
                                             "may_handle": warnings.may_handle, "refused": refused,
                                             "csrf": page_csrf(settings, principal)}, status_code=status_code)


@pages_router.get("/regulator/warnings.csv")
def warnings_page_csv(session: SessionDep, principal: PageDecider, log: ReadLogDep, purpose: PurposeParam,
                      status: StatusParam | None = "active") -> Response:
    return _streamed_csv(session, principal, log, purpose, WarningFilter(status))


@pages_router.post("/regulator/warnings/{warning_id}/{action}")
def act_on_warning(request: Request, session: SessionDep, settings: SettingsDep, principal: PageHandler,
                   log: ReadLogDep, warning_id: WarningId, action: ActionPath,
                   csrf_token_: Annotated[str, Form(alias="csrf_token")],
                   purpose: Annotated[str, Form(**PURPOSE_LENGTH), NoControlChars],
                   note: Annotated[str, Form(max_length=2000), NoControlChars] = "") -> Response:
    """Acknowledge or close a warning; refused (a note too short, already closed), the page again
    with the form as typed and the reason at it (nothing written)."""
    require_page_csrf(settings, principal, csrf_token_)
    try:
        closing = validated(WarningClose, {"note": note}).note if action == "close" else None
        _handled(session, principal, log, warning_id, action, closing, purpose)
    except (InvalidInput, Conflict) as exc:
        session.rollback()
        refused = {"id": warning_id, "action": action, "note": note, "field": exc.field or "",
                   "message": human_message(exc.code, exc.message, status=exc.status_code, zh=exc.zh,
                                            lang=page_lang(request))}
        return _warnings_page(request, session, settings, principal, log, purpose, "active", refused=refused,
                              status_code=exc.status_code)
    from urllib.parse import urlencode

    return RedirectResponse(f"/regulator/warnings?{urlencode({'purpose': purpose})}", status_code=303)
