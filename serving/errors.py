"""The one error hierarchy of the service and its mapping to HTTP (one JSON shape).

Every error leaves the API as ``{"error": {"code", "message", "field"?}}``; pages render the
same message in HTML.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as SQLAlchemyTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException

logger = logging.getLogger(__name__)


class ServiceError(Exception):
    """Base of every error the service reports to a caller."""

    status_code = 400
    code = "bad_request"

    def __init__(self, message: str, *, field: str | None = None, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.message = message
        self.field = field
        self.headers = headers or {}


class InvalidInput(ServiceError):
    status_code = 422
    code = "invalid_input"


class NotAuthenticated(ServiceError):
    status_code = 401
    code = "not_authenticated"

    def __init__(self, message: str = "authentication required", **kw: Any):
        kw.setdefault("headers", {"WWW-Authenticate": "Bearer"})
        super().__init__(message, **kw)


class NotAllowed(ServiceError):
    status_code = 403
    code = "not_allowed"


class CsrfFailed(NotAllowed):
    code = "csrf_failed"


class NotFound(ServiceError):
    status_code = 404
    code = "not_found"


class UnknownSubject(NotFound):
    code = "unknown_subject"


class UnknownRecord(NotFound):
    code = "unknown_record"


class UnknownObjection(NotFound):
    code = "unknown_objection"


class UnknownRepair(NotFound):
    code = "unknown_repair"


class GradeUnavailable(NotFound):
    code = "grade_unavailable"


class Conflict(ServiceError):
    status_code = 409
    code = "conflict"


class AlreadyDecided(Conflict):
    code = "already_decided"


class RepairNotEligible(Conflict):
    code = "repair_not_eligible"


class TooManyAttempts(ServiceError):
    status_code = 429
    code = "too_many_attempts"


class ModelUnavailable(ServiceError):
    status_code = 503
    code = "model_unavailable"


class UnknownReport(NotFound):
    code = "unknown_report"


class ReportUnavailable(ServiceError):
    """A credit report cannot be made here (no font covering Chinese installed)."""

    status_code = 503
    code = "report_unavailable"


class Overloaded(ServiceError):
    """The worker is saturated (requests in flight at the limit, or no database connection free
    within the pool timeout): answered at once with ``Retry-After`` instead of queueing."""

    status_code = 503
    code = "overloaded"

    def __init__(self, message: str = "the service is saturated; retry shortly", *, retry_after_s: int = 1,
                 **kw: Any):
        kw.setdefault("headers", {"Retry-After": str(retry_after_s)})
        super().__init__(message, **kw)


class ErrorBody(BaseModel):
    code: str
    message: str
    field: str | None = None


class ErrorOut(BaseModel):
    """The one error shape of the API."""

    error: ErrorBody


# Answered by the HTTP server (uvicorn with httptools or h11) before the request reaches the app:
# a request that is not valid HTTP (a control or non-ASCII character in a header, a malformed
# request line, a header too large for the parser). Plain text, not the API's JSON error shape.
HTTP_SERVER_400 = {"description": "the request is not valid HTTP (answered by the HTTP server itself, in plain "
                                  "text: e.g. a control character in a header)",
                   "content": {"text/plain": {"schema": {"type": "string"}}}}


def error_responses(*errors: type[ServiceError]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for a route raising ``errors`` (plus the 422 and the 503 ``overloaded``
    every route may give, and the 400 the HTTP server gives to a request that is not valid HTTP)."""
    out: dict[int | str, dict[str, Any]] = {400: HTTP_SERVER_400, 422: _json_error("invalid input")}
    for err in (*errors, Overloaded):
        entry = out.setdefault(err.status_code, _json_error(""))
        entry["description"] = ", ".join(filter(None, [entry["description"], err.code]))
    return out


def _json_error(description: str) -> dict[str, Any]:
    # the content type said outright: for a route whose answer is a file or a page (CSV, a report),
    # FastAPI would otherwise document its errors in that type, though they are JSON
    return {"model": ErrorOut, "description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}}}


def _wants_html(request: Request) -> bool:
    # pages answer in HTML whatever the Accept header; the API and /health always in JSON
    return not (request.url.path.startswith("/api/") or request.url.path in {"/health", "/openapi.json"})


def _render(request: Request, status: int, code: str, message: str, field: str | None,
            headers: dict[str, str] | None = None) -> Response:
    if _wants_html(request):
        from serving.pages import render_error_page

        return render_error_page(request, status, code, message, headers=headers)
    body: dict[str, Any] = {"code": code, "message": message}
    if field is not None:
        body["field"] = field
    return JSONResponse({"error": body}, status_code=status, headers=headers)


def _validation_message(err: dict[str, Any]) -> tuple[str, str]:
    loc = [str(p) for p in err.get("loc", ())]
    field = ".".join(loc[1:] if loc and loc[0] in {"body", "query", "path", "header", "cookie", "form"}
                     else loc) or "request"
    value = err.get("input")
    shown = repr(value) if not isinstance(value, dict | list) else type(value).__name__
    if len(shown) > 80:
        shown = shown[:77] + "..."
    return field, f"{field}={shown}: {err.get('msg', 'invalid')}"


def install_error_handlers(app: FastAPI) -> None:
    """Map every error (ours, validation, routing) to the one JSON shape."""

    @app.exception_handler(ServiceError)
    async def _service_error(request: Request, exc: ServiceError) -> Response:
        return _render(request, exc.status_code, exc.code, exc.message, exc.field, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
        errors = exc.errors()
        field, message = _validation_message(errors[0]) if errors else ("request", "invalid request")
        if len(errors) > 1:
            message += f" (and {len(errors) - 1} more)"
        return _render(request, 422, "invalid_input", message, field)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        code = {404: "not_found", 405: "method_not_allowed", 413: "body_too_large"}.get(exc.status_code, "http_error")
        return _render(request, exc.status_code, code, str(exc.detail), None, getattr(exc, "headers", None))

    @app.exception_handler(SQLAlchemyTimeoutError)
    async def _pool_exhausted(request: Request, exc: SQLAlchemyTimeoutError) -> Response:
        # every connection busy for the whole (short) pool timeout: shed load, do not queue
        err = Overloaded("no database connection free; retry shortly")
        return _render(request, err.status_code, err.code, err.message, None, err.headers)

    @app.exception_handler(OperationalError)
    async def _database_busy(request: Request, exc: OperationalError) -> Response:
        if "database is locked" not in str(exc.orig):
            return await _unexpected(request, exc)
        err = Overloaded("the database is busy; retry shortly")
        return _render(request, err.status_code, err.code, err.message, None, err.headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        logger.exception("unhandled error on %s", request.url.path)
        return _render(request, 500, "internal_error", "internal error; the incident was logged", None)
