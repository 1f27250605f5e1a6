"""Admin pages (issue 17 item 6): users, API keys, the query log with its chain check, the
promotion audit and objections and repairs across departments, in Chinese (English with the toggle),
through the same services as the admin API."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from srv_fixtures import ENT1, ENT2, form_login, principal

from serving.db.tables import ApiKey, Objection, PromotionAudit, RepairApplication, User
from serving.services.querylog import append_entries

# the module fixture (app, database, models) is built once, on one worker
pytestmark = pytest.mark.xdist_group("admin_pages")

STRONG = "Qz7!rain-Lantern-Ox42"


def _csrf(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


@pytest.fixture
def admin_client(client):
    response = form_login(client, "admin")
    assert response.status_code == 303
    return client


def test_admin_lands_on_the_admin_page_others_are_refused(client, session):
    form_login(client, "reg_samr")
    assert client.get("/admin/users", follow_redirects=False).status_code == 403
    client.cookies.clear()
    response = form_login(client, "admin")
    assert response.headers["location"] == "/admin"
    page = client.get("/admin")
    assert page.status_code == 200
    for link in ("/admin/users", "/admin/api-keys", "/admin/querylog", "/admin/promotions", "/admin/applications"):
        assert f'href="{link}"' in page.text
    assert "系统管理" in page.text
    _create_user_refused_in_chinese_keeps_the_form_then_created(client, session)


def _create_user_refused_in_chinese_keeps_the_form_then_created(admin_client, session):
    page = admin_client.get("/admin/users")
    assert "reg_samr" in page.text
    form = {"csrf_token": _csrf(page.text), "username": "new_reg", "role": "regulator", "department": "tax",
            "section": "", "uscc": "", "display_name": "王科员"}
    weak = admin_client.post("/admin/users", data={**form, "password": "abc"})
    assert weak.status_code == 422
    assert "密码" in weak.text and "至少" in weak.text
    assert 'value="new_reg"' in weak.text and 'value="王科员"' in weak.text  # nothing typed is lost
    unscoped = admin_client.post("/admin/users", data={**form, "department": "", "password": STRONG})
    assert unscoped.status_code == 422 and "部门" in unscoped.text
    made = admin_client.post("/admin/users", data={**form, "password": STRONG}, follow_redirects=False)
    assert made.status_code == 303
    user = session.query(User).filter_by(username="new_reg").one()
    assert user.department == "tax" and user.active
    taken = admin_client.post("/admin/users", data={**form, "password": STRONG})
    assert taken.status_code == 409 and "已被使用" in taken.text


def test_audit_applications_deactivate_and_reset_password(admin_client, session):
    _promotion_audit_and_applications_across_departments(admin_client, session)
    page = admin_client.get("/admin/users")
    token = _csrf(page.text)
    done = admin_client.post("/admin/users/reg_tax/active", follow_redirects=False, data={
        "csrf_token": token, "active": "false", "confirm": "true", "reason": "已调离本单位"})
    assert done.status_code == 303
    session.expire_all()
    assert not session.query(User).filter_by(username="reg_tax").one().active
    own = admin_client.post("/admin/users/admin/active", data={"csrf_token": token, "active": "false"})
    assert own.status_code == 409 and "不能停用自己的账号" in own.text
    weak = admin_client.post("/admin/users/reg_samr/password", data={"csrf_token": token, "password": "reg_samr-1234567"})
    assert weak.status_code == 422 and "不得包含用户名" in weak.text
    reset = admin_client.post("/admin/users/reg_samr/password", data={"csrf_token": token, "password": STRONG},
                              follow_redirects=False)
    assert reset.status_code == 303
    admin_client.cookies.clear()
    assert form_login(admin_client, "reg_samr", STRONG).status_code == 303
    missing_csrf = admin_client.post("/admin/users/reg_eco/active", data={"csrf_token": "x", "active": "false"})
    assert missing_csrf.status_code in (403, 422)


def test_deactivation_asks_for_a_reason_and_a_confirmation(admin_client, session):
    """Review17b (smaller): 停用 acted on one click, with no confirmation and no reason: a slip
    locked a colleague out. Now the form asks for both; a post without them changes nothing and
    says so at the field, the reason typed kept."""
    page = admin_client.get("/admin/users").text
    row = re.search(r'<tr class="user-row" data-username="reg_tax">.*?</tr>', page, re.S).group(0)
    form = re.search(r'<form[^>]*action="/admin/users/reg_tax/active".*?</form>', row, re.S).group(0)
    assert 'name="reason"' in form and 'name="confirm"' in form, "停用 takes no reason or confirmation"
    token = _csrf(page)
    unconfirmed = admin_client.post("/admin/users/reg_tax/active",
                                    data={"csrf_token": token, "active": "false", "reason": "已调离本单位"})
    assert unconfirmed.status_code == 422 and "确认" in unconfirmed.text
    assert 'value="已调离本单位"' in unconfirmed.text and 'aria-invalid="true"' in unconfirmed.text
    unexplained = admin_client.post("/admin/users/reg_tax/active",
                                    data={"csrf_token": token, "active": "false", "confirm": "true", "reason": " "})
    assert unexplained.status_code == 422 and "原因" in unexplained.text
    session.expire_all()
    assert session.query(User).filter_by(username="reg_tax").one().active, "deactivated without confirmation"
    done = admin_client.post("/admin/users/reg_tax/active", follow_redirects=False, data={
        "csrf_token": token, "active": "false", "confirm": "true", "reason": "已调离本单位"})
    assert done.status_code == 303 and done.headers["location"].endswith("done=deactivated")
    session.expire_all()
    assert not session.query(User).filter_by(username="reg_tax").one().active
    back = admin_client.post("/admin/users/reg_tax/active", data={"csrf_token": token, "active": "true"},
                             follow_redirects=False)
    assert back.status_code == 303  # 启用 needs neither: it locks no one out


def test_api_key_shown_once_then_revoked_query_log_searched_and_checked(admin_client, session):
    page = admin_client.get("/admin/api-keys")
    made = admin_client.post("/admin/api-keys", data={"csrf_token": _csrf(page.text), "username": "analyst",
                                                      "name": "夜间报表"})
    assert made.status_code == 201
    key = re.search(r'id="new-key"[^>]*>([^<]+)<', made.text).group(1).strip()
    assert len(key) > 20 and "只显示这一次" in made.text
    listing = admin_client.get("/admin/api-keys")
    assert key not in listing.text and "夜间报表" in listing.text
    row = session.query(ApiKey).one()
    assert row.prefix in listing.text
    revoked = admin_client.post(f"/admin/api-keys/{row.prefix}/revoke", data={"csrf_token": _csrf(listing.text)},
                                follow_redirects=False)
    assert revoked.status_code == 303
    session.expire_all()
    assert session.query(ApiKey).one().revoked
    unknown = admin_client.post("/admin/api-keys", data={"csrf_token": _csrf(listing.text), "username": "nobody",
                                                         "name": "x"})
    assert unknown.status_code == 404 and "没有用户" in unknown.text
    _query_log_search_and_chain_check(admin_client, session)


def _query_log_search_and_chain_check(admin_client, session):
    append_entries(session, principal=principal("reg_samr"), reads=[(ENT1, "allowed")], purpose="日常监管",
                   endpoint="/credit")
    append_entries(session, principal=principal("reg_tax"), reads=[(ENT2, "allowed")], purpose="税务稽查",
                   endpoint="/credit")
    everything = admin_client.get("/admin/querylog")
    assert everything.status_code == 200 and "日常监管" in everything.text and "税务稽查" in everything.text
    by_actor = admin_client.get("/admin/querylog", params={"actor": "reg_tax"})
    assert "税务稽查" in by_actor.text and "日常监管" not in by_actor.text
    by_subject = admin_client.get("/admin/querylog", params={"uscc": ENT1})
    assert "日常监管" in by_subject.text and "税务稽查" not in by_subject.text
    tomorrow = (dt.datetime.now(dt.UTC) + dt.timedelta(days=2)).date().isoformat()
    later = admin_client.get("/admin/querylog", params={"since": tomorrow})
    assert "日常监管" not in later.text
    bad_range = admin_client.get("/admin/querylog", params={"since": "2026-05-02", "until": "2026-05-01"})
    assert bad_range.status_code == 422 and "结束日期" in bad_range.text
    check = admin_client.post("/admin/querylog/check", data={"csrf_token": _csrf(everything.text)})
    assert check.status_code == 200 and 'data-ok="true"' in check.text and "完整" in check.text


def _promotion_audit_and_applications_across_departments(admin_client, session):
    session.add(PromotionAudit(model_name="tiers-sector-C", from_version="1", to_version="2", decided_by="sector_c",
                               decision="refused", evidence={"reason": "新版更好", "gate": {"passed": False}}))
    today = dt.date(2026, 11, 23)
    session.add(Objection(uscc=ENT1, record_id="R1", record_version=1, department="samr", reason="处罚已撤销",
                          status="pending", filed_by="ent1", filed_on=today, due_on=today))
    session.add(RepairApplication(uscc=ENT2, record_id="R4", record_version=1, department="ecology",
                                  statement="已整改", status="pending", applied_by="ent2", applied_on=today,
                                  eligible_from=today))
    session.commit()
    audit = admin_client.get("/admin/promotions")
    assert audit.status_code == 200 and "新版更好" in audit.text and "未通过准入检验" in audit.text
    apps = admin_client.get("/admin/applications")
    assert "处罚已撤销" in apps.text and "已整改" in apps.text
    assert f'href="/credit/{ENT1}' in apps.text and f'href="/credit/{ENT2}' in apps.text
    english = admin_client.get("/admin/applications?lang=en")
    assert "Objections" in english.text and "异议申请" not in english.text
    admin_client.get("/admin", params={"lang": "zh"})
