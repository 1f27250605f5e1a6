"""数据质量拦截 page: the batches held by the ingest gates (``features.gates``) in the store at
``settings.store_dir`` (TIERS_STORE_DIR), each finding with its feed, rule, observed value,
threshold and example records, and release / reject buttons for an analyst or an admin.

A decision goes through ``serving.services.gate_decisions.decide`` (the one the CLI calls too):
audited in ``gate_decisions`` with who, when, what and why. Forms carry the session's CSRF token;
a decision redirects to the list (POST-redirect-GET); a refused one shows the list again with why.
"""

from __future__ import annotations

from pathlib import Path as FsPath
from typing import Annotated, Any

from fastapi import Form, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from features.gates import GateError
from serving.deps import PageAnalyst, SessionDep, SettingsDep, page_csrf, require_page_csrf
from serving.labels import department_name, record_kind_name
from serving.pages import render
from serving.presenters import local_minute
from serving.routes._routers import page_router
from serving.security import Principal
from serving.services import gate_decisions

router = page_router()
BatchId = Annotated[str, Path(min_length=1, max_length=80, pattern=r"^[0-9A-Za-z_-]+$")]
DONE = {"released": "已放行：批次已按拦截时的内容发布。", "rejected": "已拒绝：批次已丢弃，存储未变。"}


def _feed_label(feed: str, data_dir: Any) -> str:
    """``samr/penalty`` → 市场监管局 · 行政处罚; ``samr/*`` (a department-level rule) → … · 全部类别."""
    dept, _, kind = feed.partition("/")
    return f"{department_name(dept, 'zh', data_dir)} · {'全部类别' if kind == '*' else record_kind_name(kind, 'zh')}"


def _page(request: Request, session: Any, settings: Any, principal: Principal, *, error: str | None = None,
          done: str | None = None, reason: str = "", status_code: int = 200) -> Response:
    store = settings.store_dir
    batches = gate_decisions.held(store) if store is not None and FsPath(store).is_dir() else []
    return render(request, "analyst_gates.html", {
        "user": principal, "csrf": page_csrf(settings, principal), "store": store, "batches": batches,
        "recent": gate_decisions.decisions(session, limit=20), "error": error, "done": DONE.get(done or ""),
        "reason": reason, "feed_label": lambda f: _feed_label(f, settings.data_dir),
        "rule_name": gate_decisions.rule_name, "action_name": gate_decisions.ACTION_NAMES.get,
        "decision_name": {"released": "放行", "rejected": "拒绝"}.get, "local": local_minute,
    }, status_code=status_code)


@router.get("/analyst/gates", response_class=HTMLResponse)
def gates_page(request: Request, settings: SettingsDep, session: SessionDep, principal: PageAnalyst,
               done: Annotated[str | None, Query(max_length=20)] = None) -> Response:
    return _page(request, session, settings, principal, done=done)


@router.post("/analyst/gates/{batch_id}/{action}", response_class=HTMLResponse)
def decide_form(request: Request, settings: SettingsDep, session: SessionDep, principal: PageAnalyst,
                batch_id: BatchId, action: Annotated[str, Path(pattern="^(release|reject)$")],
                csrf_token_: Annotated[str, Form(alias="csrf_token")],
                reason: Annotated[str, Form(max_length=2000)] = "") -> Response:
    require_page_csrf(settings, principal, csrf_token_)
    if settings.store_dir is None:
        return _page(request, session, settings, principal, error="未配置数据存储目录，请联系系统管理员",
                     status_code=409)
    decision = "released" if action == "release" else "rejected"
    try:
        gate_decisions.decide(session, settings.store_dir, batch_id, decision=decision, actor=principal.username,
                              reason=reason)
    except GateError as exc:  # nothing changed: the message says why (Chinese part first)
        return _page(request, session, settings, principal, error=str(exc).split(" / ")[0], reason=reason,
                     status_code=422 if not reason.strip() else 409)
    return RedirectResponse(f"/analyst/gates?done={decision}", status_code=303)
