"""Jinja2 page rendering shared by the page routes and the error handler."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from serving.i18n import kind_name, text
from serving.settings import settings_of

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
LANG_COOKIE = "lang"


@lru_cache
def templates() -> Jinja2Templates:
    return Jinja2Templates(directory=str(TEMPLATES_DIR))


def page_lang(request: Request) -> str:
    """``?lang=`` first, then the cookie, then Chinese."""
    lang = request.query_params.get("lang") or request.cookies.get(LANG_COOKIE) or "zh"
    return lang if lang in {"zh", "en"} else "zh"


def render(request: Request, template: str, context: dict[str, Any], status_code: int = 200,
           headers: dict[str, str] | None = None) -> HTMLResponse:
    lang = page_lang(request)
    ctx = {"lang": lang, "t": lambda key: text(key, lang), "kind_name": lambda k: kind_name(k, lang),
           "path": request.url.path, **context}
    response = templates().TemplateResponse(request, template, ctx, status_code=status_code, headers=headers)
    if request.query_params.get("lang") in {"zh", "en"}:
        response.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, samesite="strict",
                            secure=settings_of(request).secure_cookies)
    return response




def render_error_page(request: Request, status: int, code: str, message: str,
                      headers: dict[str, str] | None = None) -> Response:
    if status == 401:
        return RedirectResponse("/login", status_code=303)
    return render(request, "error.html", {"status": status, "code": code, "message": message, "user": None},
                  status_code=status, headers=headers)
