"""一公开: public pages and files (no login) — per department, the published inspection results and
each tiers-draw-v2 plan's commitment (shown from the moment it is committed, before the draw), its
bundle and its verification status.

Nothing here shows a grade or an undrawn subject: the bundle is built to reveal neither
(docs/draw-algorithm.md §16), and results are the public table of ``plans.public_department_results``.
"""

from __future__ import annotations

from pathlib import Path as FilePath
from typing import Annotated

from fastapi import Path, Request
from fastapi.responses import HTMLResponse, Response

from serving.deps import SessionDep, SettingsDep, TodayDep
from serving.errors import NotFound
from serving.i18n import page_text
from serving.labels import department_names
from serving.pages import page_lang, render
from serving.routes._routers import page_router
from serving.routes.plans import PERSON_NAMED_FORMS, PlanId, _csv, _json_download
from serving.services import plans as plan_service

router = page_router()
Department = Annotated[str, Path(min_length=1, max_length=40, pattern=r"^[\w\-]+$")]


# the standard-library verifier (verifier/README.md), offered to whoever reads a plan's commitment
VERIFIER_FILE = FilePath(__file__).resolve().parents[2] / "verifier" / "tiers_draw_verify.py"
VERIFIER_PATH = "/public/verifier/tiers_draw_verify.py"


def _page(request: Request, template: str, context: dict) -> HTMLResponse:
    lang = page_lang(request)
    return render(request, template, {"pp": lambda key: page_text("public", key, lang), "user": None,
                                      "verifier_path": VERIFIER_PATH, **context})


@router.get(VERIFIER_PATH)
def verifier_file() -> Response:
    """The independent verifier, one Python file (standard library only), as the repository holds
    it: the public checks a draw without the repository. 404 where the service runs without it."""
    try:
        content = VERIFIER_FILE.read_bytes()
    except OSError as exc:
        raise NotFound(f"the verifier is not installed here ({VERIFIER_FILE.name})",
                       zh="本服务器未提供校验程序文件，请向发布部门索取。") from exc
    return Response(content, media_type="text/x-python; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{VERIFIER_FILE.name}"'})


def _plan_view(plan_row, draw) -> dict:
    """What the public sees of one plan: commitment, salt and times, and the bundle's verdict."""
    drawn = "plan" in draw.payload
    return {"id": plan_row.id, "name": plan_row.name, "department": plan_row.department, "status": plan_row.status,
            "commitment": plan_service.commitment_v2(draw), "salt": draw.payload.get("salt"),
            "drawn_at": draw.revealed_at,
            "verification": plan_service.verify_public_bundle(draw) if drawn else None}


@router.get("/public/plans/{plan_id}/commitment.json")
def commitment_file(plan_id: PlanId, session: SessionDep) -> Response:
    """The commitment as published before the draw (JSON, for `tiers plan verify --commitment`)."""
    _, draw = plan_service.public_plan(session, plan_id)
    return _json_download(plan_service.commitment_v2(draw), f"plan-{plan_id}-commitment.json")


@router.get("/public/plans/{plan_id}/bundle.json")
def bundle_file(plan_id: PlanId, session: SessionDep) -> Response:
    """The public bundle of a drawn plan: no grade, no undrawn subject."""
    _, draw = plan_service.public_plan(session, plan_id)
    return _json_download(plan_service.plan_bundle(draw), f"plan-{plan_id}-bundle.json")


@router.get("/public/plans/{plan_id}", response_class=HTMLResponse)
def plan_page(request: Request, plan_id: PlanId, session: SessionDep) -> Response:
    """One plan's commitment (before and after the draw), its salt and times, bundle and verdict."""
    return _page(request, "public_plan.html", {"plan": _plan_view(*plan_service.public_plan(session, plan_id))})


@router.get("/public/{department}", response_class=HTMLResponse)
def department_page(request: Request, department: Department, session: SessionDep, today: TodayDep,
                    settings: SettingsDep) -> Response:
    """The department's published results and its plans (commitment, bundle, verification); a
    department neither in the catalogue nor with a plan is a 404, not an empty page (a typo read as
    "this department published nothing")."""
    plans = [_plan_view(p, d) for p, d in plan_service.public_plans(session, department)]
    if not plans and department not in department_names(settings.data_dir):
        raise NotFound(f"no department {department!r}", zh=f"没有名为「{department}」的部门")
    results = plan_service.public_results(session, today, PERSON_NAMED_FORMS, department=department)
    return _page(request, "public_department.html", {"department": department, "plans": plans,
                                                     "results": results.to_dict("records"), "today": today})


@router.get("/public/{department}/results.csv")
def department_results_csv(department: Department, session: SessionDep, today: TodayDep) -> Response:
    """The department's published results as CSV (UTF-8 with BOM, Chinese headers, cells neutralised)."""
    frame = plan_service.public_results(session, today, PERSON_NAMED_FORMS, department=department)
    return _csv(plan_service.public_results_table_csv(frame), f"{department}-results.csv")
