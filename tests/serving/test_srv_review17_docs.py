"""Outside-in review of issue 17 (review17), the documents and pages of the other roles: the signed
credit report an enterprise downloads, the analyst's monitoring page, the sector's gate result."""

from __future__ import annotations

import re

import pytest
from srv_fixtures import ENT1
from test_srv_credit_reports import _text, world  # noqa: F401  (module fixture: one signed report of ENT1)
from test_srv_monitoring import _cookie_client, drifted_result, mon_client, mon_settings, stored  # noqa: F401
from test_srv_sector_models import (  # noqa: F401  (fixtures: a registry with a promotable challenger)
    SECTOR_MODEL,
    page_login,
    populated_store,
    registry,
    trained,
)

DEPARTMENT_CODES = ("samr", "tax", "hrss", "ecology", "emergency", "fire")


def test_credit_report_names_departments_industry_and_type_and_times_in_beijing(world):  # noqa: F811
    """公共信用信息报告 (PDF, 电子签名): 主体类型 "llc", 所属行业（门类） "C", 作出部门 "samr"/"hrss"/…,
    出具时间 "… UTC" — an official document in codes and a foreign time zone."""
    text = _text(world["pdf"])
    assert "南京市市场监督管理局" in text, "作出部门 is a code"
    assert not any(re.search(rf"(?<![A-Za-z]){code}(?![A-Za-z])", text) for code in DEPARTMENT_CODES)
    assert "制造业" in text, "所属行业 is a bare letter"
    assert "UTC" not in text and "llc" not in text
    assert ENT1 in text


def test_monitoring_page_has_a_way_back_and_no_model_jargon(stored, mon_client, mon_settings):  # noqa: F811
    """/analyst/monitoring/{id} links only to English and the Evidently download: no 返回 to /analyst;
    its header reads "模型 tiers-general@champion"."""
    client = _cookie_client(mon_client, mon_settings, "analyst")
    page = client.get(f"/analyst/monitoring/{stored}").text
    assert re.search(r'href="/analyst"', page), "no way back to the analyst's start page"
    assert "@champion" not in page


@pytest.mark.slow
def test_promotion_gate_result_speaks_chinese(client, settings, registry):  # noqa: F811
    """准入检验结果 after 提交晋升: checks named auc, brier, ece, grade_monotonicity, grade_share_shift and
    each explained in English ("AUC 0.6566 vs champion …; may not fall below −0.01")."""
    csrf = page_login(client, settings, "sector_c")
    page = client.post(f"/sector/models/{SECTOR_MODEL}/versions/3/promote",
                       data={"reason": "数据更新", "csrf_token": csrf}).text
    body = re.search(r"<main>.*</main>", page, re.S).group(0)
    shown = re.sub(r"<[^>]+>", " ", body)
    assert not re.search(r"\b(grade_monotonicity|grade_share_shift|champion|may not|vs)\b", shown), shown[:800]
