"""The one error hierarchy of the service and its mapping to HTTP (one JSON shape).

Every error leaves the API as ``{"error": {"code", "message", "field"?}}``; pages render the
same message in HTML.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import Any, TypeVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field, ValidationError
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as SQLAlchemyTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException

from features.schema import FIELD_LABELS
from serving.i18n import ERROR_TEXTS, PATTERN_RULES, VALIDATION_RULES

M = TypeVar("M", bound=BaseModel)

logger = logging.getLogger(__name__)


class ServiceError(Exception):
    """Base of every error the service reports to a caller."""

    status_code = 400
    code = "bad_request"

    def __init__(self, message: str, *, field: str | None = None, headers: dict[str, str] | None = None,
                 zh: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field
        self.headers = headers or {}
        self.zh = zh  # the sentence a person reads in Chinese (``human_message`` otherwise finds one)


class InvalidInput(ServiceError):
    status_code = 422
    code = "invalid_input"


class UnknownDepartment(InvalidInput):
    """A department code outside the department catalogue (``serving.labels.department_names``)."""

    code = "unknown_department"


class NotAuthenticated(ServiceError):
    status_code = 401
    code = "not_authenticated"

    def __init__(self, message: str = "authentication required", **kw: Any):
        kw.setdefault("headers", {"WWW-Authenticate": "Bearer"})
        super().__init__(message, **kw)


class NotAllowed(ServiceError):
    status_code = 403
    code = "not_allowed"
    logged = False  # set once the refusal is in the query log (deps: one entry per refusal)


class CsrfFailed(NotAllowed):
    code = "csrf_failed"


class NotOwningDepartment(NotAllowed):
    """A decision on a department's matter (a commitment's finding, a warning's handling) by
    someone who may read it but does not own it: an admin reads every department's, decides none
    (``services.access.owning_department_decides``). ``uscc``: the matter's subject, for the
    caller to log the refusal."""

    code = "not_owning_department"
    uscc = ""


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


class UnknownMonitoringRun(NotFound):
    code = "unknown_monitoring_run"


class MonitoringReportUnavailable(NotFound):
    """A stored monitoring run without its Evidently report (not a credit report: ``ReportUnavailable``)."""

    code = "report_unavailable"


class ReportUnavailable(ServiceError):
    """A credit report cannot be made here (no font covering Chinese installed)."""

    status_code = 503
    code = "credit_report_unavailable"  # not the analyst's report_unavailable (a run without its report)


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
    message_zh: str | None = Field(default=None, description="the message in Chinese, for people")


class ErrorOut(BaseModel):
    """The one error shape of the API."""

    error: ErrorBody


# Answered by the HTTP server (uvicorn with httptools or h11) before the request reaches the app:
# a request that is not valid HTTP (a control or non-ASCII character in a header, a malformed
# request line, a header too large for the parser). Plain text, not the API's JSON error shape.
HTTP_SERVER_400 = {"description": "the request is not valid HTTP (answered by the HTTP server itself, in plain "
                                  "text: e.g. a control character in a header)",
                   "content": {"text/plain": {"schema": {"type": "string"}}}}


# what every route behind a sign-in and a role check may answer besides its own errors (401, 403)
ROLE_ERRORS: tuple[type[ServiceError], ...] = (NotAuthenticated, NotAllowed)


def error_responses(*errors: type[ServiceError]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for a route raising ``errors`` (plus the 422 and the 503 ``overloaded``
    every route may give, and the 400 the HTTP server gives to a request that is not valid HTTP).
    A route that may refuse (403) may also answer 429 past the caller's hourly refusals
    (``deps.refusal_allowed``)."""
    out: dict[int | str, dict[str, Any]] = {400: HTTP_SERVER_400, 422: _json_error("invalid input")}
    if any(issubclass(err, NotAllowed) for err in errors):
        errors = (*errors, TooManyAttempts)
    for err in dict.fromkeys((*errors, Overloaded)):
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


# --------------------------------------------------------------------------- people's words
# The one place where an error becomes a sentence a person reads: Chinese by default, English with
# the page toggle. The API keeps its machine ``code`` and English ``message`` and adds ``message_zh``.

_CJK = re.compile("[\u3400-\u9fff]")
_GENERIC_BY_STATUS = {401: "not_authenticated", 403: "not_allowed", 404: "not_found", 405: "method_not_allowed",
                      409: "conflict", 413: "body_too_large", 422: "invalid_input", 429: "too_many_attempts",
                      500: "internal_error", 503: "overloaded"}


def _split_bilingual(message: str) -> tuple[str | None, str | None]:
    """(Chinese, English) parts of a message written as ``中文；English`` (either may be absent).
    The English is after the last ``；``: the Chinese may itself hold one (``中文；中文；English``).
    A message mixing the two in any other form is Chinese whole: such errors pass ``zh=``."""
    if not _CJK.search(message):
        return None, message
    head, sep, tail = message.rpartition("；")
    if sep and not _CJK.search(tail):
        return head, tail.strip()
    return message, None


def field_label(field: str | None, lang: str) -> str:
    """A field in the words of the person filling the form (the last part of a dotted path)."""
    if not field:
        return ""
    key = field.split(".")[-1] if not field.split(".")[-1].isdigit() else field.split(".")[-2 if "." in field else -1]
    names = FIELD_LABELS.get(key)
    return (names[1] if lang == "en" else names[0]) if names else key


def human_message(code: str, message: str, *, status: int = 400, zh: str | None = None, lang: str = "zh") -> str:
    """The sentence a person reads for an error: ``zh`` (or the Chinese half of a bilingual
    message) in Chinese, else the text of its code (``serving.i18n.ERROR_TEXTS``); in English the
    message itself (its English half if bilingual)."""
    chinese, english = _split_bilingual(message)
    if lang == "en":
        return english or (ERROR_TEXTS.get(code) or ERROR_TEXTS.get(_GENERIC_BY_STATUS.get(status, ""), {})
                           ).get("en") or message
    if zh:
        return zh
    if chinese:
        return chinese
    entry = ERROR_TEXTS.get(code) or ERROR_TEXTS.get(_GENERIC_BY_STATUS.get(status, "http_error")) \
        or ERROR_TEXTS["http_error"]
    return entry["zh"]


# our own validators' messages (written for developers) → (field, Chinese, English)
_VALUE_RULES: list[tuple[re.Pattern[str], str | None, str, str]] = [
    (re.compile(r"period_end \S+ is before period_start"), "period_end",
     "检查期结束不能早于检查期开始", "the period must not end before it starts"),
    (re.compile(r"as_of \S+ is after period_start"), "as_of",
     "等级基准日须不晚于检查期开始（等级须在检查前已经评定）", "grades must be known before the period starts"),
    (re.compile(r"published_on \S+ is before inspected_on"), "published_on",
     "公示日期不能早于检查日期", "the publication date must not be before the inspection"),
    (re.compile(r"tasks list a department/item twice"), "items",
     "同一抽查事项不能重复选择", "an item is listed twice"),
    (re.compile(r"not a valid unified social credit code"), None,
     "不是有效的统一社会信用代码（18 位，末位校验码须正确）", "is not a valid unified social credit code"),
    (re.compile(r"control characters"), None, "不能包含控制字符", "must not contain control characters"),
]


def validation_error(err: dict[str, Any], lang: str = "zh") -> tuple[str, str]:
    """(field, sentence) for one pydantic error: the field in the user's words and the rule in plain
    language, never pydantic's English or a regular expression."""
    loc = [str(p) for p in err.get("loc", ())]
    field = ".".join(loc[1:] if loc and loc[0] in {"body", "query", "path", "header", "cookie", "form"}
                     else loc) or ""
    kind = err.get("type", "")
    ctx = err.get("ctx") or {}
    key = [p for p in field.split(".") if not p.isdigit()][-1:] or [""]
    zh_rule = en_rule = None
    if kind == "value_error" or kind == "assertion_error":
        raw = str(ctx.get("error") or err.get("msg", ""))
        raw = raw.removeprefix("Value error, ")
        for pattern, rule_field, zh, en in _VALUE_RULES:
            if pattern.search(raw):
                field = field or rule_field or ""
                if rule_field and not loc[1:]:
                    field = rule_field
                zh_rule, en_rule = zh, en
                break
        else:
            chinese, english = _split_bilingual(raw)
            zh_rule, en_rule = chinese or "不符合要求", english or raw
    elif kind == "string_pattern_mismatch" and key[0] in PATTERN_RULES:
        zh_rule, en_rule = PATTERN_RULES[key[0]]
    elif kind in VALIDATION_RULES:
        limit = next((ctx[k] for k in ("min_length", "max_length", "ge", "le") if k in ctx), "")
        zh_rule, en_rule = (r.format(n=limit) for r in VALIDATION_RULES[kind])
    else:
        zh_rule, en_rule = "不符合要求", str(err.get("msg", "is not valid"))
    label = field_label(field, lang)
    rule = en_rule if lang == "en" else zh_rule
    if not label:
        return field or "request", rule
    return field, f"{label}：{rule}" if lang != "en" else f"{label}: {rule}"


def invalid_input(exc: ValidationError | RequestValidationError) -> InvalidInput:
    """A pydantic failure as the service's 422: the first problem, its field, in both languages."""
    errors = exc.errors()
    if not errors:
        return InvalidInput("invalid input", zh="填写的内容不符合要求。")
    field, zh = validation_error(errors[0], "zh")
    _, en = validation_error(errors[0], "en")
    if len(errors) > 1:
        zh += f"（另有 {len(errors) - 1} 处问题）"
        en += f" (and {len(errors) - 1} more)"
    return InvalidInput(en, field=field, zh=zh)


def validated(model: type[M], data: dict[str, Any]) -> M:
    """``model`` from a form's fields; a pydantic failure raised as the service's 422 (:func:`invalid_input`)."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise invalid_input(exc) from exc


# what a page shows for an error: (request, status, code, message, zh, headers) -> the page; given by the
# app (serving.pages.error_page), so that this module, which every service imports, imports no page code
ErrorPage = Callable[[Request, int, str, str, "str | None", "dict[str, str] | None"], Response]


def _render_any(request: Request, status: int, code: str, message: str, field: str | None,
            headers: dict[str, str] | None = None, zh: str | None = None, *,
            error_page: ErrorPage | None = None) -> Response:
    if error_page is not None and _wants_html(request):
        return error_page(request, status, code, message, zh, headers)
    body: dict[str, Any] = {"code": code, "message": message}
    if field is not None:
        body["field"] = field
    body["message_zh"] = human_message(code, message, status=status, zh=zh, lang="zh")
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


def install_error_handlers(app: FastAPI, error_page: ErrorPage | None = None,
                           refused: Callable[[Request, NotAllowed], Awaitable[None]] | None = None) -> None:
    """Map every error (ours, validation, routing) to the one JSON shape, or for a browser asking for
    a page, to ``error_page``. ``refused``: logs a 403 not logged yet (``deps.log_unlogged_refusal``)
    before it is answered."""
    _render = functools.partial(_render_any, error_page=error_page)

    @app.exception_handler(ServiceError)
    async def _service_error(request: Request, exc: ServiceError) -> Response:
        if refused is not None and isinstance(exc, NotAllowed) and not exc.logged:
            try:
                await refused(request, exc)
            except TooManyAttempts as held:  # past the caller's hourly refusals: answered instead
                exc = held
        return _render(request, exc.status_code, exc.code, exc.message, exc.field, exc.headers, exc.zh)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
        errors = exc.errors()
        field, message = _validation_message(errors[0]) if errors else ("request", "invalid request")
        if len(errors) > 1:
            message += f" (and {len(errors) - 1} more)"
        human = invalid_input(exc)
        if _wants_html(request):  # pages: the friendly sentence in both languages
            return _render(request, 422, "invalid_input", human.message, human.field, zh=human.zh)
        return _render(request, 422, "invalid_input", message, field, zh=human.zh)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        code = {404: "not_found", 405: "method_not_allowed", 413: "body_too_large"}.get(exc.status_code, "http_error")
        detail = str(exc.detail)
        if _wants_html(request) and detail == HTTPStatus(exc.status_code).phrase and code in ERROR_TEXTS:
            detail = ERROR_TEXTS[code]["en"]  # Starlette's bare phrase ("Not Found"): the sentence of its code
        return _render(request, exc.status_code, code, detail, None, getattr(exc, "headers", None))

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
