"""Jinja2 page rendering shared by the page routes and the error handler."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from serving.errors import CsrfFailed
from serving.i18n import kind_name, text
from serving.security import Principal, csrf_token, csrf_valid

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
                            secure=_settings(request).secure_cookies)
    return response


def _settings(request: Request):
    from serving.deps import settings_of

    return settings_of(request)


def page_csrf(settings: Any, principal: Principal) -> str:
    """The CSRF token of every form on a page of ``principal``'s session (bound to its token id)."""
    return csrf_token(settings.jwt_key, principal.token_id or "")


def require_page_csrf(settings: Any, principal: Principal, token: str | None) -> None:
    """Refuse (403 ``csrf_failed``) a page form post whose token is not this session's."""
    if not csrf_valid(settings.jwt_key, principal.token_id, token):
        raise CsrfFailed("the form expired or did not come from this site; reload the page", field="csrf_token")


def render_error_page(request: Request, status: int, code: str, message: str,
                      headers: dict[str, str] | None = None) -> Response:
    if status == 401:
        return RedirectResponse("/login", status_code=303)
    return render(request, "error.html", {"status": status, "code": code, "message": message, "user": None},
                  status_code=status, headers=headers)
