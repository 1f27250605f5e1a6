"""信用承诺 commitments: the catalogue and the public list (no login), an enterprise signing for
itself, the department's finding (kept or broken, with its basis); and their pages."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from serving.deps import (
    Decider,
    PageDecider,
    PurposeQuery,
    ReadLogDep,
    RefusedTry,
    RegraderDep,
    RowIdPath,
    SessionDep,
    SettingsDep,
    SubjectAccessDep,
    TodayDep,
    page_csrf,
    page_principal,
    require_page_csrf,
    require_role,
    row_id,
)
from serving.errors import (
    ROLE_ERRORS,
    AlreadyDecided,
    Conflict,
    InvalidInput,
    ModelUnavailable,
    NotAllowed,
    NotAuthenticated,
    NotOwningDepartment,
    UnknownSubject,
    error_responses,
    human_message,
    validated,
)
from serving.pages import page_lang, render
from serving.routes._page_lists import key_window, page_size
from serving.routes._routers import api_and_page_routers
from serving.schemas import (
    CommitmentDecisionIn,
    CommitmentOut,
    CommitmentSign,
    CommitmentStatus,
    DepartmentCommitmentOut,
    MatterOut,
    PublicCommitmentOut,
)
from serving.security import Principal, Role
from serving.services import commitments
from serving.services.commitments import UnknownCommitment

router, pages_router = api_and_page_routers("/api/v1/commitments", "commitments")
DECIDER_ROLES: tuple[Role, ...] = ("regulator", "admin")  # who may reach a finding (commitments.may_decide decides)


def _refused_finding(session, principal: Principal, params: dict[str, str]) -> RefusedTry:
    """Another role's try at a finding (an enterprise marking its own commitment kept): refused,
    and logged as every refused role is (``deps.require_role``), naming the commitment's subject
    (none for an id that is malformed or names no commitment)."""
    refused = NotAllowed(f"role {principal.role!r} may not find a commitment kept or broken",
                         field="commitment_id", zh="您的账号不能认定信用承诺：只有受理该承诺的部门才能认定履约或违约。")
    commitment_id = row_id(params.get("commitment_id"))
    return RefusedTry(refused, commitments.refused_decision_purpose(refused, commitment_id or "?"),
                      commitments.subject_of(session, commitment_id) if commitment_id else "")


LoggedDecider = Annotated[Principal, Depends(require_role(*DECIDER_ROLES, refused=_refused_finding))]
PageLoggedDecider = Annotated[Principal, Depends(require_role(*DECIDER_ROLES, principal_dep=page_principal,
                                                              refused=_refused_finding))]


def _matter_out(m) -> MatterOut:
    return MatterOut(code=m.code, kind=m.kind, title=m.title, department=m.department, due_days=m.due_days,
                     template=m.template, kept_when=m.kept_when, public=m.public,
                     breaches={k: o.label or k for k, o in m.breaches.items()})


def _public_out(c, name: str) -> PublicCommitmentOut:
    return PublicCommitmentOut(uscc=c.uscc, name=name, kind=c.kind, title=c.title, text=c.text,
                               department=c.department, signed_on=c.signed_on, due_on=c.due_on, status=c.status)


@router.get("/matters", response_model=list[MatterOut])
def list_matters() -> list[MatterOut]:
    """The commitment catalogue (承诺事项目录): standard texts, departments, periods, breaches. Public."""
    return [_matter_out(m) for m in commitments.default_catalogue().matters]


@router.get("/public", response_model=list[PublicCommitmentOut], responses=error_responses(InvalidInput))
def public_commitments(request: Request, response: Response, session: SessionDep,
                       limit: Annotated[int, Query(ge=1, le=200)] = 50,
                       after: Annotated[str | None, Query(max_length=400,
                                                          description="the cursor of the previous page")] = None,
                       ) -> list[PublicCommitmentOut]:
    """The 主动公示型 commitments, newest first (no login: they are signed to be shown), a page at
    a time, by key: ``X-Total-Count`` says how many, ``Link: <…>; rel="next"`` where the next page is."""
    page = commitments.public_page(session, after=after, limit=limit)
    response.headers["X-Total-Count"] = str(page.total)
    if page.next:
        response.headers["Link"] = f'<{request.url.include_query_params(after=page.next)}>; rel="next"'
    return [_public_out(c, n) for c, n in page.rows]


@router.get("/subjects/{uscc}", response_model=list[CommitmentOut],
            responses=error_responses(NotAuthenticated, NotAllowed, InvalidInput, UnknownSubject))
def subject_commitments(access: SubjectAccessDep, session: SessionDep) -> list[CommitmentOut]:
    """A subject's commitments (the enterprise itself, or staff covering it; the read is logged)."""
    return [CommitmentOut.model_validate(c) for c in commitments.of_subject(session, access.uscc)]


@router.post("/subjects/{uscc}", response_model=CommitmentOut, status_code=201,
             dependencies=[Depends(require_role("enterprise"))],
             responses=error_responses(NotAuthenticated, NotAllowed, InvalidInput, UnknownSubject, Conflict))
def sign_commitment(body: CommitmentSign, access: SubjectAccessDep, session: SessionDep,
                    today: TodayDep) -> CommitmentOut:
    """Sign a matter's standard text for the enterprise's own USCC (another's is a 404)."""
    return CommitmentOut.model_validate(
        commitments.sign(session, access.principal, access.uscc, body.matter_code, today))


@router.get("/department", response_model=list[DepartmentCommitmentOut],
            responses=error_responses(*ROLE_ERRORS))
def department_commitments(principal: Decider, session: SessionDep, log: ReadLogDep,
                           status: CommitmentStatus | None = None,
                           purpose: PurposeQuery = None) -> list[DepartmentCommitmentOut]:
    """The commitments signed to the caller's department, the earliest due first (each subject
    shown is logged as read, with ``purpose`` or 信用承诺核查)."""
    rows = _department_rows(session, principal, log, purpose, status)
    return [DepartmentCommitmentOut.model_validate({**CommitmentOut.model_validate(c).model_dump(), "name": n})
            for c, n in rows]


def _department_rows(session, principal, log, purpose: str | None, status: str | None = None):
    # a commitment that is not public is part of the subject's credit file: listing it is a read
    rows = commitments.of_department(session, principal, status=status)
    log.shown(principal, purpose or commitments.REVIEW_PURPOSE, dict.fromkeys(c.uscc for c, _ in rows))
    return rows


@router.post("/{commitment_id}/decision", response_model=CommitmentOut,
             responses=error_responses(NotAuthenticated, NotAllowed, InvalidInput, UnknownCommitment,
                                       NotOwningDepartment, AlreadyDecided, ModelUnavailable))
def decide_commitment(body: CommitmentDecisionIn, principal: LoggedDecider, session: SessionDep, today: TodayDep,
                      regrader: RegraderDep, commitment_id: RowIdPath, log: ReadLogDep) -> CommitmentOut:
    """Mark a pending commitment of the caller's department kept or broken, with its basis. Only
    that department decides (it accepted the commitment and holds the basis): an admin, who may
    read every department's, gets 403 (``not_owning_department``); another department's regulator
    the same 404 as for an absent commitment; either refusal is logged as a denied read. The
    finding's record is written (a broken one counts against the subject, makes it a lead of the
    department's next plan and raises its early warning) and the subject is regraded."""
    decided = _decide(session, principal, commitment_id, body, today, regrader, log)
    log.shown(principal, commitments.REVIEW_PURPOSE, [decided.uscc])  # the answer shows the subject's file
    return CommitmentOut.model_validate(decided)


def _decide(session, principal, commitment_id: int, body: CommitmentDecisionIn, today: dt.date, regrader, log):
    """``commitments.decide``; a finding refused to the caller (not its department's, an admin's)
    is logged as a refused read of the subject before it is answered."""
    try:
        return commitments.decide(session, principal, commitment_id, outcome=body.outcome, basis=body.basis,
                                  document_no=body.document_no, breach=body.breach, today=today, regrader=regrader)
    except (UnknownCommitment, NotOwningDepartment) as exc:
        session.rollback()
        log.reads(principal, commitments.refused_decision_purpose(exc, commitment_id), [(exc.uscc, "denied")])
        exc.logged = True
        raise


# --- pages ----------------------------------------------------------------------------------

@pages_router.get("/commitments/public", response_class=HTMLResponse)
def public_commitments_page(request: Request, session: SessionDep,
                            after: Annotated[str | None, Query(max_length=400)] = None) -> Response:
    """信用承诺公示 (no login): the 主动公示型 commitments, paged by key."""
    page = commitments.public_page(session, after=after, limit=page_size(request.query_params.get("size")))
    window = key_window(request, [_public_out(c, n) for c, n in page.rows], page.total, page.next,
                        anchor="public-commitments")
    return render(request, "public_commitments.html", {"user": None, "rows": window.items, "window": window,
                                                       "status_zh": commitments.STATUS_ZH})


@pages_router.get("/regulator/commitments", response_class=HTMLResponse)
def department_commitments_page(request: Request, session: SessionDep, settings: SettingsDep,
                                principal: PageDecider, today: TodayDep, log: ReadLogDep) -> Response:
    """The department's commitments, with the form to mark a pending one kept or broken."""
    return _department_page(request, session, settings, principal, today, log)


def _department_page(request: Request, session, settings, principal, today: dt.date, log,
                     refused: dict | None = None, status_code: int = 200) -> Response:
    """The department's commitments (each subject shown is logged as read); ``refused``: a decision
    form as typed, the reason at its field."""
    rows = _department_rows(session, principal, log, None)
    breaches = {m.code: {k: o.label or k for k, o in m.breaches.items()}
                for m in commitments.default_catalogue().matters}
    return render(request, "commitments_department.html", {
        "user": principal, "rows": rows, "breaches": breaches, "today": today, "refused": refused,
        "status_zh": commitments.STATUS_ZH, "csrf": page_csrf(settings, principal),
        "may_decide": commitments.may_decide,
        "path": "/regulator/commitments"}, status_code=status_code)


@pages_router.post("/regulator/commitments/{commitment_id}/decision")
def decide_commitment_page(request: Request, session: SessionDep, settings: SettingsDep, today: TodayDep,
                           regrader: RegraderDep, principal: PageLoggedDecider, commitment_id: RowIdPath,
                           log: ReadLogDep,
                           csrf_token_: Annotated[str, Form(alias="csrf_token")],
                           outcome: Annotated[str, Form(max_length=40)] = "",
                           basis: Annotated[str, Form(max_length=2000)] = "",
                           document_no: Annotated[str, Form(max_length=120)] = "",
                           breach: Annotated[str, Form(max_length=40)] = "") -> Response:
    """Mark a commitment kept or broken; refused, the page again with the form as typed."""
    require_page_csrf(settings, principal, csrf_token_)
    try:
        body = validated(CommitmentDecisionIn, {"outcome": outcome, "basis": basis,
                                               "document_no": document_no or None, "breach": breach or None})
        decided = _decide(session, principal, commitment_id, body, today, regrader, log)
    except (InvalidInput, Conflict) as exc:
        session.rollback()
        refused = {"id": commitment_id, "outcome": outcome, "basis": basis, "document_no": document_no,
                   "breach": breach, "field": exc.field or "", "message": human_message(
                       exc.code, exc.message, status=exc.status_code, zh=exc.zh, lang=page_lang(request))}
        return _department_page(request, session, settings, principal, today, log, refused, exc.status_code)
    log.shown(principal, commitments.REVIEW_PURPOSE, [decided.uscc])
    return RedirectResponse("/regulator/commitments", status_code=303)
