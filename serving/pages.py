"""Jinja2 page rendering shared by the page routes and the error handler."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from jinja2 import pass_context

from serving import labels
from serving.errors import human_message
from serving.i18n import kind_name, text
from serving.settings import settings_of

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
LANG_COOKIE = "lang"


def _lang(ctx: Any) -> str:
    return ctx.get("lang", "zh")


def _data_dir(ctx: Any) -> Any:
    request = ctx.get("request")
    try:
        return settings_of(request).data_dir if request is not None else None
    except (AttributeError, KeyError):
        return None


# Names, not codes (``serving.labels``): ``{{ rec.department | dept }}``, ``{{ s.industry | industry }}``, ``{{ s.legal_form | legal_form }}``,
# ``{{ p.status | status }}``, ``{{ rec.kind | kind }}``, ``{{ v.inspectors | inspectors }}``, ``{{ t | when }}``.
FILTERS = {
    "dept": pass_context(lambda ctx, code: labels.department_name(code, _lang(ctx), _data_dir(ctx))),
    "industry": pass_context(lambda ctx, section: labels.industry_name(section, _lang(ctx))),
    "legal_form": pass_context(lambda ctx, form: labels.legal_form_name(form, _lang(ctx))),
    "status": pass_context(lambda ctx, status: labels.status_name(status, _lang(ctx))),
    "kind": pass_context(lambda ctx, kind: labels.record_kind_name(kind, _lang(ctx))),
    "inspectors": pass_context(lambda ctx, ids: "、".join(
        labels.inspector_label(i, labels.inspector_names(_data_dir(ctx))) for i in ids or ())),
    "item_name": pass_context(lambda ctx, code: labels.item_label(code, _lang(ctx), _data_dir(ctx))),
    "model": pass_context(lambda ctx, name: labels.model_label(name, _lang(ctx))),
    "purpose": pass_context(lambda ctx, value: labels.purpose_text(value, _lang(ctx))),
    "endpoint": pass_context(lambda ctx, value: labels.endpoint_name(value, _lang(ctx))),
    "gate_check": pass_context(lambda ctx, name: labels.gate_check_name(name, _lang(ctx))),
    "alert_rule": pass_context(lambda ctx, rule: labels.alert_rule_name(rule, _lang(ctx))),
    "when": labels.beijing_minute,
    "one_language": pass_context(lambda ctx, value: labels.one_language(value, _lang(ctx))),
    "salt_format": pass_context(lambda ctx, pattern: labels.salt_format(pattern, _lang(ctx))),
}


@lru_cache
def templates() -> Jinja2Templates:
    env = Jinja2Templates(directory=str(TEMPLATES_DIR))
    env.env.filters.update(FILTERS)
    return env


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




def error_page(request: Request, status: int, code: str, message: str, zh: str | None,
               headers: dict[str, str] | None = None) -> Response:
    """The page a browser gets for an error (``serving.errors.install_error_handlers``): the sentence
    a person reads, in the page's language."""
    shown = human_message(code, message, status=status, zh=zh, lang=page_lang(request))
    return render_error_page(request, status, code, shown, headers=headers)


def render_error_page(request: Request, status: int, code: str, message: str,
                      headers: dict[str, str] | None = None) -> Response:
    if status == 401:
        return RedirectResponse("/login", status_code=303)
    user, csrf = _signed_in(request)
    # the language toggle re-reads the page: after a refused form post, the start page instead
    path = {"path": "/"} if request.method != "GET" else {}
    return render(request, "error.html", {"status": status, "code": code, "message": message, "user": user,
                                          "csrf": csrf, "home": _home_of(user), **path},
                  status_code=status, headers=headers)


def _signed_in(request: Request) -> tuple[Any, str]:
    """The page's user and CSRF token when the session cookie is valid, so an error page keeps its
    header (user name, 退出); (None, "") otherwise or if checking it fails too."""
    from serving.deps import page_csrf, page_principal

    try:
        settings = settings_of(request)
        principal = page_principal(request, settings)
        return principal, page_csrf(settings, principal)
    except Exception:
        return None, ""


def _home_of(user: Any) -> str:
    if user is None:
        return "/"
    return f"/credit/{user.uscc}" if user.role == "enterprise" else "/"
