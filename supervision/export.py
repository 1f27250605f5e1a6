"""Plan outputs a regulator can use: the visit list (CSV, Excel) and the per-grade summary.

The list is internal: it shows grades, which are never published (docs/domain.md §3).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from supervision.plan import InspectionPlan


def plan_table(plan: InspectionPlan) -> pd.DataFrame:
    """The regulator's list (internal: it shows grades, which are never published)."""
    return pd.DataFrame(
        [
            {
                "visit_order": v.visit_order,
                "uscc": v.uscc,
                "name": v.name,
                "district_code": v.district_code,
                "district_name": v.district_name,
                "grade": v.grade,
                "items": ";".join(v.items),
                "departments": ";".join(v.departments),
                "inspectors": ";".join(v.inspectors),
                "unstaffed": ";".join(v.unstaffed),
            }
            for v in plan.visits
        ],
        columns=[
            "visit_order",
            "uscc",
            "name",
            "district_code",
            "district_name",
            "grade",
            "items",
            "departments",
            "inspectors",
            "unstaffed",
        ],
    )


def summary_table(plan: InspectionPlan) -> pd.DataFrame:
    return pd.DataFrame([s.model_dump() for s in plan.summary])


def write_plan_csv(plan: InspectionPlan, path: str | Path) -> Path:
    """UTF-8 with BOM so Excel opens the Chinese names correctly."""
    path = Path(path)
    plan_table(plan).to_csv(path, index=False, encoding="utf-8-sig")
    return path


def write_plan_excel(plan: InspectionPlan, path: str | Path) -> Path:
    """Workbook with sheets 检查名单 (visits) and 汇总 (per-grade summary) and 承诺 (commitment)."""
    path = Path(path)
    commitment = pd.DataFrame(
        [{"field": k, "value": str(v)} for k, v in plan.commitment.model_dump().items()]
        + [
            {"field": "draw_seed_hex (revealed)", "value": plan.draw_seed_hex},
            {"field": "visits_saved", "value": str(plan.visits_saved)},
        ]
    )
    with pd.ExcelWriter(path, engine="openpyxl") as writer:
        plan_table(plan).to_excel(writer, sheet_name="检查名单", index=False)
        summary_table(plan).to_excel(writer, sheet_name="汇总", index=False)
        commitment.to_excel(writer, sheet_name="承诺", index=False)
    return path


def results_template(plan: InspectionPlan) -> pd.DataFrame:
    """One row per (visit, item) for inspectors to fill in: the input of ``tiers plan results``.

    ``inspected_on``, ``outcome`` (no_problem / corrected / case_opened), ``document_no``,
    ``description`` and ``published_on`` are left empty.
    """
    department_of = {td.item: td.department for td in plan.tasks}
    rows = [
        {
            "plan_id": plan.plan_id,
            "visit_order": v.visit_order,
            "uscc": v.uscc,
            "name": v.name,
            "department": department_of[item],
            "inspection_item": item,
            "inspectors": ";".join(v.inspectors),
            "inspected_on": "",
            "outcome": "",
            "document_no": "",
            "description": "",
            "published_on": "",
        }
        for v in plan.visits
        for item in v.items
    ]
    return pd.DataFrame(rows)
