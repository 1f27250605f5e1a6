"""Administrators: users, API keys, the query log and (with a logged purpose) personal information."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.responses import Response

from serving.deps import Admin, ReadLogDep, SessionDep, SettingsDep
from serving.errors import (
    ROLE_ERRORS,
    Conflict,
    InvalidInput,
    NotFound,
    UnknownSubject,
    error_responses,
)
from serving.keys import public_key_pem
from serving.routes._routers import CallerFirstRoute
from serving.schemas import (
    ApiKeyCreate,
    ApiKeyOut,
    ApiKeyRevoked,
    ChainCheckOut,
    PersonalInfoOut,
    QueryLogOut,
    QueryLogPage,
    UserCreate,
    UserOut,
    UserUpdate,
)
from serving.services import querylog, subjects, users
from serving.services.querylog_check import check_chain
from serving.validation import PURPOSE_LENGTH, USCC_PATTERN, NoControlChars

router = APIRouter(prefix="/api/v1/admin", tags=["admin"], route_class=CallerFirstRoute)


@router.get("/querylog", response_model=QueryLogPage, responses=error_responses(*ROLE_ERRORS))
def read_query_log(principal: Admin, session: SessionDep,
                   uscc: Annotated[str | None, Query(pattern=USCC_PATTERN)] = None,
                   actor: Annotated[str | None, Query(max_length=80), NoControlChars] = None,
                   offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
                   limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> QueryLogPage:
    total, rows = querylog.list_entries(session, uscc=uscc, actor=actor, offset=offset, limit=limit)
    return QueryLogPage(total=total, items=[QueryLogOut.model_validate(r) for r in rows])


@router.get("/querylog/check", response_model=ChainCheckOut, responses=error_responses(*ROLE_ERRORS))
def check_query_log(principal: Admin, session: SessionDep) -> ChainCheckOut:
    """Verify every entry's MAC, the chain, the head and the signed checkpoints; names each break."""
    return ChainCheckOut.model_validate(check_chain(session).as_json())


@router.get("/querylog/checkpoints", response_class=Response, responses={
    **error_responses(*ROLE_ERRORS), 200: {"content": {"application/x-ndjson": {"schema": {"type": "string"}}},
                                       "description": "the signed checkpoints, one JSON object per line"}})
def download_checkpoints(principal: Admin, settings: SettingsDep) -> Response:
    """The query log's signed checkpoints (its head anchored outside the database), for a second
    party to keep and later check the log against (``tiers querylog check --checkpoints``)."""
    path = settings.checkpoint_path
    content = path.read_bytes() if path.is_file() else b""
    return Response(content, media_type="application/x-ndjson",
                    headers={"Content-Disposition": 'attachment; filename="querylog-checkpoints.jsonl"'})


@router.get("/querylog/public-key", response_class=Response, responses={
    **error_responses(*ROLE_ERRORS), 200: {"content": {"application/x-pem-file": {"schema": {"type": "string"}}},
                                       "description": "the Ed25519 public key of the checkpoints (PEM)"}})
def checkpoint_public_key(principal: Admin, settings: SettingsDep) -> Response:
    """The public key that verifies the checkpoints."""
    return Response(public_key_pem(settings.secret("querylog_signing_key")), media_type="application/x-pem-file",
                    headers={"Content-Disposition": 'attachment; filename="querylog-public-key.pem"'})


@router.post("/users", response_model=UserOut, status_code=201,
             responses=error_responses(*ROLE_ERRORS, Conflict, InvalidInput))
def create_user(body: UserCreate, principal: Admin, session: SessionDep, settings: SettingsDep) -> UserOut:
    return UserOut.model_validate(users.create_user(session, body, data_dir=settings.data_dir))


USERNAME = r"^[A-Za-z0-9_.@-]+$"  # as UserCreate


@router.patch("/users/{username}", response_model=UserOut,
              responses=error_responses(*ROLE_ERRORS, NotFound, Conflict))
def update_user(body: UserUpdate, principal: Admin, session: SessionDep,
                username: Annotated[str, Path(min_length=3, max_length=80, pattern=USERNAME)]) -> UserOut:
    """Deactivate (or reactivate) a user, e.g. staff who left: their sessions and keys end with it."""
    if username == principal.username and not body.active:
        raise Conflict("an admin cannot deactivate their own account", field="active")
    return UserOut.model_validate(users.set_active(session, username, body.active))


@router.delete("/api-keys/{prefix}", response_model=ApiKeyRevoked, responses=error_responses(*ROLE_ERRORS, NotFound))
def revoke_api_key(principal: Admin, session: SessionDep,
                   prefix: Annotated[str, Path(min_length=8, max_length=8, pattern=r"^[A-Za-z0-9_-]+$")]
                   ) -> ApiKeyRevoked:
    """Revoke a key by its prefix (shown when it was created); it stops working within 10 s."""
    return ApiKeyRevoked.model_validate(users.revoke_api_key(session, prefix))


@router.post("/api-keys", response_model=ApiKeyOut, status_code=201,
             responses=error_responses(*ROLE_ERRORS, NotFound))
def create_api_key(body: ApiKeyCreate, principal: Admin, session: SessionDep) -> ApiKeyOut:
    """A key for a machine account (header ``X-API-Key``); shown once, stored hashed."""
    row, key = users.create_api_key(session, body.username, body.name)
    return ApiKeyOut(id=row.id, name=row.name, username=body.username, prefix=row.prefix, key=key)


@router.get("/subjects/{uscc}/personal-info", response_model=PersonalInfoOut,
            responses=error_responses(*ROLE_ERRORS, UnknownSubject))
def personal_info(principal: Admin, session: SessionDep, log: ReadLogDep,
                  uscc: Annotated[str, Path(pattern=USCC_PATTERN)],
                  purpose: Annotated[str, Query(**PURPOSE_LENGTH,
                                                description="legal basis for reading personal information"),
                                    NoControlChars],
                  ) -> PersonalInfoOut:
    """The legal representative unmasked: admins only, with a stated legal basis, logged as such."""
    subject = subjects.get_subject(session, uscc)
    log.reads(principal, purpose, [(uscc, "allowed")], personal_info_unmasked=True)
    return PersonalInfoOut(uscc=uscc, legal_rep_name=subject.legal_rep_name, legal_rep_id=subject.legal_rep_id)
