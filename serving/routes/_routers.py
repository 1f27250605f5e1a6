"""The routers a route module declares: its API, under one path prefix and one OpenAPI tag, and
its pages, which the OpenAPI schema leaves out (a page is HTML for a browser, not an API call).

Every route is a `CallerFirstRoute`: a body that does not parse (JSON, or a page's form) is judged
after the route's dependencies (who calls, its role, the route's own rules), as a body that parses
but breaks the route's model is."""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response, params
from fastapi.dependencies.models import Dependant
from fastapi.dependencies.utils import field_annotation_is_sequence
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from python_multipart.exceptions import FormParserError
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.formparsers import MultiPartException

from serving.errors import InvalidInput
from serving.i18n import text

# what an unparsable body is given to the route as: no body model accepts it (checked per route)
_UNPARSED = object()


class NestedTooDeep(ValueError):
    """A JSON body nested deeper than the parser recurses (``json`` raises RecursionError)."""


def parse_json_body(raw: bytes) -> Any:
    """A request body parsed as JSON: the one parse of a request body in the service. Raises
    ValueError for every body that does not parse: not JSON, not UTF-8 (UnicodeDecodeError), or
    nested too deep (`NestedTooDeep`: ``json.loads`` raises RecursionError, not a ValueError, so a
    caller catching ValueError answered it 500, or FastAPI 400 before the route's dependencies)."""
    try:
        return json.loads(raw)
    except RecursionError as exc:
        raise NestedTooDeep("JSON nested too deep") from exc


class _BodyParsedLate(Request):
    """The request as the route sees it: a JSON body that does not parse reads as ``_UNPARSED``
    (which the route's body model refuses after its dependencies ran), its error kept."""

    unparsed: Exception | None = None
    unparsed_form: FormData | None = None  # what a form body that does not parse reads as (a Form route)

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            try:
                self._json = parse_json_body(await self.body())
            except ValueError as exc:  # not JSON, not UTF-8, or nested too deep (parse_json_body)
                self.unparsed = exc
                return _UNPARSED
        return self._json

    async def _get_form(self, **limits: Any) -> FormData:
        if self.unparsed_form is None:
            return await super()._get_form(**limits)
        try:
            return await super()._get_form(**limits)
        # no boundary, too many fields or files (Starlette's); a part header without a colon, bytes
        # after the boundary … (python-multipart's own, which Starlette lets through)
        except (StarletteHTTPException, MultiPartException, FormParserError) as exc:
            self.unparsed = exc
            self._form = self.unparsed_form
            return self._form


class CallerFirstRoute(APIRoute):
    """A route whose dependencies run before its body is judged, however broken the body.

    FastAPI parses a JSON body before it runs any dependency and answers one that does not parse
    at once (422, or 400 for bytes that are not UTF-8): a caller refused by role got that answer,
    unlogged, instead of the role check's 403, logged (``deps.require_role``), and a wrong API key
    its 422 before its 401. Here such a body reaches the route as a value its model refuses, so the
    dependencies run first, as for any body that breaks the model; a caller they let through then
    gets the answer FastAPI would have given (the same 422 or 400). One path decides who calls and
    whether the role may: the route's own dependencies."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        body = self.body_field
        if body is None:
            return handler  # no body: nothing is judged before the dependencies
        unparsed_form = self._unparsed_form() if isinstance(body.field_info, params.Form) else None
        if unparsed_form is None and (self._embed_body_fields or not body.validate(_UNPARSED, {}, loc=("body",))[1]):
            raise TypeError(f"{self.path}: its body must be one model that refuses an unparsable body, "
                            "so that the body is judged after the route's dependencies")

        async def caller_first(request: Request) -> Response:
            late = _BodyParsedLate(request.scope, request.receive)
            late.unparsed_form = unparsed_form
            try:
                return await handler(late)
            except RequestValidationError:
                if late.unparsed is None:
                    raise
                raise _unparsed_answer(late.unparsed) from late.unparsed

        return caller_first

    def _unparsed_form(self) -> FormData:
        """What a form body that does not parse (a multipart body without a boundary, over the
        parser's 1000 fields or files …) is given to the route as: every field the route declares,
        each with a value no field accepts (``_UNPARSED``, not a string), so the form is refused as
        one that parses but breaks the route's fields, after the route's dependencies. Not an
        empty form: its optional fields would take their defaults and the route could act.
        Checked here: at least one field of the route refuses it (a form model or a field of type
        Any would not: then this raises, and the route must be made to)."""
        fields = _body_params(self.dependant)
        if not any(f.validate([_UNPARSED] if field_annotation_is_sequence(f.field_info.annotation) else _UNPARSED,
                              {}, loc=("body", f.alias))[1] for f in fields):
            raise TypeError(f"{self.path}: no field of its form refuses a form that does not parse, so that the "
                            "body would be judged after the route's dependencies")
        return FormData([(f.alias, _UNPARSED) for f in fields])


def _body_params(dependant: Dependant) -> list:
    """The body fields of a route and of its dependencies."""
    return [*dependant.body_params, *(field for sub in dependant.dependencies for field in _body_params(sub))]


def _unparsed_answer(exc: Exception) -> Exception:
    """What FastAPI answers a body that does not parse (``fastapi.routing.get_request_handler``;
    a form: Starlette's 400 naming the parser's error)."""
    if isinstance(exc, StarletteHTTPException):
        return exc
    if isinstance(exc, MultiPartException):
        return HTTPException(status_code=400, detail=exc.message)
    if isinstance(exc, NestedTooDeep):
        return InvalidInput(text("body_nested_too_deep", "en"), field="body", zh=text("body_nested_too_deep", "zh"))
    if isinstance(exc, json.JSONDecodeError):
        return RequestValidationError([{"type": "json_invalid", "loc": ("body", exc.pos), "msg": "JSON decode error",
                                        "input": {}, "ctx": {"error": exc.msg}}], body=exc.doc)
    return HTTPException(status_code=400, detail="There was an error parsing the body")


def page_router() -> APIRouter:
    """A router of HTML pages: served, and kept out of the OpenAPI schema."""
    return APIRouter(include_in_schema=False, route_class=CallerFirstRoute)


def api_and_page_routers(prefix: str, tag: str) -> tuple[APIRouter, APIRouter]:
    """A module's API router (its paths under ``prefix``, listed under ``tag`` in the schema) and
    the router of its pages (``page_router``)."""
    return APIRouter(prefix=prefix, tags=[tag], route_class=CallerFirstRoute), page_router()
