"""Review17b, sector department: after promoting a challenger on /sector, the page goes on naming
the old version as the one in use (its own fixtures: the registry of test_srv_sector_models, with
the conftest's settings, so no test reads var/mlflow.db)."""

from __future__ import annotations

import html
import re

import pytest
from test_srv_sector_models import (  # noqa: F401  (fixtures: a registry with a champion and challengers)
    SECTOR_MODEL,
    page_login,
    populated_store,
    registry,
    trained,
)

from serving.services.grades import store_grades

# A second newcomer's finding (session 9), written as a failing test by someone who had not built the
# pages; mended (the strict xfail mark it carried is off).
pytestmark = [pytest.mark.xdist_group("srv_sector_models")]


@pytest.mark.slow
def test_sector_page_after_promotion_says_which_version_is_in_use(client, settings, registry, session,  # noqa: F811
                                                                  world):
    """Demo: 提交晋升 v3 → "已晋升为在用版本 (1 → 3)"; back on /sector, 本行业在用模型版本 still reads
    "批发和零售业行业模型 第 1 版 1736 2025-09-30", with nothing saying the grades change only at the next
    grading: the sector user believes the promotion did not take."""
    store_grades(session, [dict(uscc=world.ent1, as_of="2026-09-30", score=640.0, grade="C", probability=0.2,
                                model_version=f"{SECTOR_MODEL}/1", profile_hash="d" * 64)])
    session.commit()
    csrf = page_login(client, settings, "sector_c")
    promoted = client.post(f"/sector/models/{SECTOR_MODEL}/versions/3/promote",
                           data={"reason": "数据更新", "csrf_token": csrf})
    assert promoted.status_code == 200 and 'data-outcome="promoted"' in promoted.text
    page = re.sub(r"<[^>]+>", " ", client.get("/sector").text)
    section = html.unescape(page[page.index("本行业在用模型版本"):])
    said = " ".join(section.split())
    assert "制造业行业模型 第 3 版" in said or re.search(r"下次评级|重新评级|尚未按", said), said[:300]
    # and the grades' own row says which version grades them from the next grading
    assert re.search(r"制造业行业模型 第 1 版 在用版本已改为 制造业行业模型 第 3 版", said), said[:300]
