"""The routers a route module declares: its API, under one path prefix and one OpenAPI tag, and
its pages, which the OpenAPI schema leaves out (a page is HTML for a browser, not an API call)."""

from __future__ import annotations

from fastapi import APIRouter


def page_router() -> APIRouter:
    """A router of HTML pages: served, and kept out of the OpenAPI schema."""
    return APIRouter(include_in_schema=False)


def api_and_page_routers(prefix: str, tag: str) -> tuple[APIRouter, APIRouter]:
    """A module's API router (its paths under ``prefix``, listed under ``tag`` in the schema) and
    the router of its pages (``page_router``)."""
    return APIRouter(prefix=prefix, tags=[tag]), page_router()
