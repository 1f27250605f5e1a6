"""Login (OAuth2 password flow → JWT) and who-am-I."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.security import OAuth2PasswordRequestForm

from serving.deps import CurrentUser, SessionDep, SettingsDep, bearer_scheme, client_ip, end_token
from serving.errors import (
    ROLE_ERRORS,
    InvalidInput,
    NotAllowed,
    NotAuthenticated,
    TooManyAttempts,
    error_responses,
)
from serving.routes._routers import CallerFirstRoute
from serving.schemas import MeOut, TokenOut
from serving.security import create_access_token
from serving.services.logins import LoginLimits
from serving.services.users import authenticate, principal_of

router = APIRouter(prefix="/api/v1/auth", tags=["auth"], route_class=CallerFirstRoute)


@router.post("/token", response_model=TokenOut, responses=error_responses(NotAuthenticated, TooManyAttempts, InvalidInput))
def login(form: Annotated[OAuth2PasswordRequestForm, Depends()], request: Request, session: SessionDep,
          settings: SettingsDep) -> TokenOut:
    """Exchange username and password for a bearer token (failed attempts rate-limited)."""
    # issued as of before the user was read: a deactivation committed meanwhile ends this token too
    now = dt.datetime.now(dt.UTC)
    user = authenticate(session, form.username, form.password, client_ip(request),
                        limits=LoginLimits.of(settings), now=now)
    token, expires = create_access_token(principal_of(user), settings.jwt_key, settings.jwt_ttl_minutes, now=now)
    return TokenOut(access_token=token, expires_at=expires)


@router.post("/logout", status_code=204, responses=error_responses(*ROLE_ERRORS))
def logout(request: Request, principal: CurrentUser, session: SessionDep,
           settings: SettingsDep, token: Annotated[str | None, Depends(bearer_scheme)] = None) -> Response:
    """End this bearer token before its expiry (API keys are revoked by an admin instead)."""
    if principal.kind == "machine" or not token:
        raise NotAllowed("an API key does not log out: an admin revokes it (DELETE /api/v1/admin/api-keys/{prefix})")
    end_token(request, settings, session, token)
    return Response(status_code=204)


@router.get("/me", response_model=MeOut, responses=error_responses(NotAuthenticated))
async def me(principal: CurrentUser) -> MeOut:  # no I/O: no thread-pool hop
    return MeOut(username=principal.username, role=principal.role, kind=principal.kind,
                 department=principal.department, section=principal.section, uscc=principal.uscc)
