"""Requests with a body to an authenticated API route are refused before the body is read when
they carry no credential, or a bearer token this service would refuse (a pure ASGI middleware).

FastAPI reads and parses a request's body (up to ``Settings.max_request_body_bytes``) before it
solves the route's dependencies, authentication included, so without this anyone could make a
worker receive and parse 2 MiB per request. The routes are those whose OpenAPI operation
declares a security scheme (every route that depends on ``deps.api_principal``); the answer is
the 401 the route itself would give. An API key, or a token that verifies, goes on to the route,
whose dependency checks it against the database as before.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.routing import Match
from starlette.types import ASGIApp, Receive, Scope, Send

_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def protected_operations(openapi: dict[str, Any]) -> frozenset[tuple[str, str]]:
    """(path template, method) of every body-carrying operation that declares a security requirement."""
    return frozenset((template, m.upper()) for template, operations in openapi.get("paths", {}).items()
                     for m, op in operations.items()
                     if isinstance(op, dict) and op.get("security") and m.upper() in _BODY_METHODS)


class CredentialsBeforeBody:
    """See the module's docstring; ``service`` is the FastAPI app (its OpenAPI and settings)."""

    def __init__(self, app: ASGIApp, service: Any) -> None:
        self.app = app
        self.service = service
        self._protected: frozenset[tuple[str, str]] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in _BODY_METHODS or not _has_body(scope):
            await self.app(scope, receive, send)
            return
        refusal = self._refusal(scope)
        if refusal is None:
            await self.app(scope, receive, send)
            return
        from serving.errors import _render_any

        request = Request(scope)
        response = _render_any(request, refusal.status_code, refusal.code, refusal.message, refusal.field,
                           {**refusal.headers, "Connection": "close"})  # the unread body ends the connection
        await response(scope, receive, send)

    def _refusal(self, scope: Scope) -> Any:
        if self._protected is None:
            self._protected = protected_operations(self.service.openapi())
        # the route the router will choose (the first full match, in its order): a template alone
        # would take /credit-reports/verify (public) for /credit-reports/{uscc} (authenticated)
        template = _route_template(self.service.router.routes, scope)
        if template is None or (template, scope["method"]) not in self._protected:
            return None
        from serving.deps import decode_token
        from serving.errors import NotAuthenticated
        from serving.settings import settings_of

        headers = {k.lower(): v for k, v in scope.get("headers", ())}
        if headers.get(b"x-api-key"):
            return None  # checked against the database by the route's dependency
        scheme, _, token = headers.get(b"authorization", b"").decode("latin-1").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return NotAuthenticated()
        if decode_token(settings_of(Request(scope)), token.strip()) is None:
            return NotAuthenticated("invalid or expired access token")
        return None


def _route_template(routes: list[Any], scope: Scope) -> str | None:
    """The path template of the route the router will run for ``scope``: the first full match, in
    its order, included routers' routes in theirs (FastAPI keeps them nested)."""
    for route in routes:
        contexts = route.effective_route_contexts() if hasattr(route, "effective_route_contexts") else [route]
        for ctx in contexts:
            if ctx.matches(scope)[0] == Match.FULL:
                return getattr(ctx, "path_format", None) or getattr(ctx, "path", None)
    return None


def _has_body(scope: Scope) -> bool:
    for name, value in scope.get("headers", ()):
        if name == b"transfer-encoding" or (name == b"content-length" and value.strip() not in (b"0", b"")):
            return True
    return False
