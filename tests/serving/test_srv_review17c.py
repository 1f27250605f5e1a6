"""Third outside-in review of issue 17 (review17c): a Chinese official and an enterprise clerk,
reading no English and knowing nothing of the code, did the newcomer tasks of every role on
`tiers demo` in Chromium (1280 px, and 375 px for the enterprise). Each test pins one thing that
confused, blocked or misinformed them; the review's report ranks them. The enterprise, sector and admin tests share one
module-scoped app on a copy of the seeded database; the plan and monitoring tests use the fixtures
of test_srv_plans_flow and test_srv_monitoring, as the earlier reviews' tests do."""

from __future__ import annotations

import re
import shutil
from io import BytesIO

import pytest
from fastapi.testclient import TestClient
from srv_fixtures import ENT1, ENT2, TODAY, form_login, principal
from test_srv_monitoring import _cookie_client, drifted_result, mon_client, mon_settings, stored  # noqa: F401
from test_srv_plans_flow import city, settings  # noqa: F401  (fixtures: data dir and graded city)
from test_srv_review17 import _as, _drawn

from serving.app import create_app
from serving.db.session import dispose_engine, iter_session
from serving.deps import get_today
from serving.keys import with_keys
from serving.security import create_access_token
from serving.services.grades import store_grades
from serving.services.querylog import LogKeys, use_keys
from serving.services.subjects import store_records
from serving.settings import Settings

# ENT2 entered the abnormal operation list and left it a month later (移出): no longer on any list
EXTRA_RECORDS = [
    dict(record_id="L9", uscc=ENT2, kind="list_abnormal_operation", decision_date="2025-03-01",
         end_date="2025-04-01", publicity_end="2028-03-01", department="samr", document_no="宁市监异〔2025〕9号"),
]
pytestmark = pytest.mark.xdist_group("srv_review17c")
# ENT2 graded again with two independent ways up (each from today's state), as the demo's company has
ENT2_TWO_WAYS = dict(
    uscc=ENT2, as_of="2026-10-31", score=600.0, grade="C", probability=0.2, model_version="general-v3",
    profile_hash="c" * 64, base_score=720.0, reasons=[],
    what_if=[dict(action="repair", label_zh="修复记录 R4 后", label_en="After repairing R4", record_id="R4",
                  score=610.0, grade="C"),
             dict(action="repair", label_zh="修复记录 L9 后", label_en="After repairing L9", record_id="L9",
                  score=610.0, grade="C")])
XFAIL = pytest.mark.xfail(strict=True, reason="review17c finding, not yet mended (issue 17)")


@pytest.fixture(scope="module")
def site(_template_db, tmp_path_factory):
    if _template_db is None:
        pytest.skip("runs on the SQLite template copy")
    base = tmp_path_factory.mktemp("review17c")
    shutil.copy(_template_db, base / "tiers.db")
    url = f"sqlite:///{base / 'tiers.db'}"
    cfg = with_keys(Settings(database_url=url, run_migrations_on_startup=False, data_dir=base,
                             mlflow_tracking_uri=f"sqlite:///{base / 'mlflow.db'}", keys_dir=base / "keys"))
    use_keys(url, LogKeys.of(cfg))
    session = next(iter_session(url))
    store_records(session, EXTRA_RECORDS)
    store_grades(session, [ENT2_TWO_WAYS])
    session.close()
    app = create_app(cfg)
    app.dependency_overrides[get_today] = lambda: TODAY
    yield {"app": app, "url": url}
    dispose_engine(url)


def _headers(site, username: str) -> dict[str, str]:
    token, _ = create_access_token(principal(username), site["app"].state.settings.jwt_key, 30)
    return {"Authorization": f"Bearer {token}"}


def _logged_in(site, username: str) -> TestClient:
    client = TestClient(site["app"])
    assert form_login(client, username).status_code == 303
    return client


def _shown(html: str) -> str:
    """The page's visible words: tags, scripts and styles dropped."""
    html = re.sub(r"<(script|style)\b.*?</\1>", " ", html, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def _pdf_text(pdf: bytes) -> str:
    from pypdf import PdfReader

    return "\n".join(page.extract_text() or "" for page in PdfReader(BytesIO(pdf)).pages)


def _row(page: str, record_id: str) -> str:
    """The records table's row of one record (the what-if table also names records: skip it)."""
    rows = re.findall(r"<tr\b(?:(?!</tr>).)*</tr>", page, re.S)
    return next(r for r in rows if re.search(rf'data-label="记录编号"[^>]*>\s*(<a[^>]*>)?\s*{record_id}\b', r))


def test_a_record_that_no_longer_counts_is_not_called_in_force_nor_offered_for_repair(site):
    """我的信用 lists a general penalty whose publicity ended (R4, 公示截止 2026-01-05, before the grade's
    base date) under "评价基准日 … 在效的记录" as 有效 with 申请信用修复, and an 经营异常名录 entry the company
    left a month later (L9, 移出 2025-04-01) as 有效 with 申请信用修复. The page shows no publicity end nor
    exit date anywhere; the credit report (rightly) shows neither and says 未被列入…经营异常名录. The clerk
    believes the company is still listed and applies to repair records nobody sees any more (demo:
    R000000007809, R000000007810)."""
    page = _logged_in(site, "ent2").get(f"/credit/{ENT2}").text
    for record_id in ("R4", "L9"):
        row = _row(page, record_id)
        assert "/repairs" not in row, f"{record_id}: repair offered for a record that no longer counts"
        assert re.search(r"公示期满|已移出|移出|已届满|不再公示", _shown(row)), f"{record_id}: {_shown(row)[:300]}"
    # mended at the service too: an application for such a record is refused, saying why
    refused = TestClient(site["app"]).post(f"/api/v1/subjects/{ENT2}/repairs", headers=_headers(site, "ent2"),
                                           json={"record_id": "L9", "statement": "已整改完毕，申请修复。"})
    assert refused.status_code in (409, 422) and "不再计入" in refused.text, refused.text


def test_credit_report_names_the_commitment_signed_not_its_internal_number(site):
    """After 签署承诺 (依法诚信纳税承诺) on 我的信用, the downloaded 公共信用信息报告's 四、信用承诺 lists a row
    "CMT000000001-M 信用承诺 — 2026-12-07 — 国家税务总局南京市税务局 —": an internal number, broken over two
    lines, under the records' headers (严重程度, 文书号 all "—"); which matter was promised, and by when
    it is checked, is nowhere in the official document."""
    headers = _headers(site, "ent1")
    client = TestClient(site["app"])
    matters = client.get("/api/v1/commitments/matters", headers=headers).json()
    # a public matter (主动公示型): a report lists no other (issue 20, open question 3)
    matter = next(m for m in matters if m["public"])
    signed = client.post(f"/api/v1/commitments/subjects/{ENT1}", json={"matter_code": matter["code"]},
                         headers=headers)
    assert signed.status_code in (200, 201), signed.text
    issued = client.post(f"/api/v1/credit-reports/{ENT1}", headers=headers)
    assert issued.status_code == 201, issued.text
    text = _pdf_text(issued.content)
    section = text[text.index("四、信用承诺"):]
    assert matter["title"] in section.replace("\n", ""), section[:400]
    assert "CMT" not in section, section[:400]


def test_what_if_rows_say_whether_they_add_up(site):
    """如果……会怎样 (demo, grade D 455): "缴清欠款 30,900.00 元 → 信用分 463 C" and "缴清欠款 85,900.00 元 →
    信用分 463 C", under the sentence "完成以上全部措施后预计达到的分数与等级". Each row is one measure on its
    own, and there is no row for all of them: the clerk reads 463 as what paying both brings (or
    pays 85,900 more expecting a higher score than the 30,900 brings), and cannot tell which."""
    page = _logged_in(site, "ent2").get(f"/credit/{ENT2}").text
    section = _shown(re.search(r'<section id="what-if">.*?</section>', page, re.S).group(0))
    # Mended at the engine's meaning: the grading job's what-if (training.whatif) is ONE set of
    # steps, the smallest that improves the grade, and every row carries that set's score (the
    # demo's two 463s are one promise: paying both). So the score is said once, on a row for all
    # the steps together, and no step's row claims a score of its own.
    assert section.count("信用分 610") == 1 and "完成以上全部措施后" in section, section
    assert "R4" in section and "L9" in section, section


# ------------------------------------------------------------------ regulator


def _form_as_shown(form: str) -> dict[str, str]:
    """What a browser posts for a form as the page shows it: every input's value, each select's
    selected option (the first when none is marked)."""
    fields = dict(re.findall(r'<input[^>]*name="([^"]+)"[^>]*value="([^"]*)"', form))
    for name, options in re.findall(r'<select[^>]*name="([^"]+)"[^>]*>(.*?)</select>', form, re.S):
        values = re.findall(r'<option value="([^"]*)"([^>]*)>', options)
        fields[name] = next((v for v, attrs in values if "selected" in attrs), values[0][0])
    return fields


def test_entered_result_is_published_as_entered_with_its_document_number(client, city):  # noqa: F811
    """检查结果: after 录入 (发现问题已立案, 文书号 宁市监立〔2026〕3号, no 公示日期 yet) the row's form comes back
    as if nothing had been entered: 未发现问题 and an empty 文书号. Adding the 公示日期 to publish it is then
    refused ("已有检查结果：录入不同的结果即为更正，须填写更正理由"); re-choosing the outcome publishes a
    new version without the 文书号 typed the first time (demo plan #1: the public table shows the
    result with an empty 文书号, "更正（第2版）")."""
    import datetime as dt

    from serving.deps import get_today

    location = _drawn(client, plan_id="publish-later")
    client.app.dependency_overrides[get_today] = lambda: dt.date(2026, 12, 15)  # inside the period
    csrf = _as(client, "reg_samr", location)
    form = re.search(r'<form[^>]*class="result-form".*?</form>', client.get(location).text, re.S).group(0)
    hidden = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form))
    entered = client.post(location + "/results", follow_redirects=False, data={
        **hidden, "csrf_token": csrf, "outcome": "case_opened", "inspected_on": "2026-12-10",
        "document_no": "宁市监立〔2026〕3号"})
    assert entered.status_code == 303, _shown(entered.text)[-300:]
    page = client.get(location).text
    mine = next(f for f in re.findall(r'<form[^>]*class="result-form".*?</form>', page, re.S)
                if f'value="{hidden["uscc"]}"' in f and f'value="{hidden["inspection_item"]}"' in f)
    # the official adds only the publication date to what the form shows, and submits
    published = client.post(location + "/results", follow_redirects=False,
                            data={**_form_as_shown(mine), "published_on": "2026-12-15"})
    assert published.status_code == 303, _shown(published.text)[-300:]
    client.cookies.clear()
    public = _shown(client.get("/public/samr").text)
    assert "宁市监立〔2026〕3号" in public and "发现问题已立案" in public, public[-600:]


def test_the_plans_creator_is_not_offered_the_salt_form_it_may_not_use(client, city):  # noqa: F811
    """The plan's creator, back on its page after 公布抽取承诺, is offered 公开随机数 and 录入公开随机数并抽取;
    typing the number and submitting leads to a bare "出错了 403 创建抽查计划的人员不能录入公开随机数，须由本部门
    另一名人员录入" page with only 返回: the number typed is gone, and the form should not have been offered."""
    from test_srv_lang import _plan_form

    _as(client, "reg_samr", "/regulator/plans")
    created = client.post("/regulator/plans", data=_plan_form(client, plan_id="creator-salt"), follow_redirects=False)
    assert created.status_code == 303, _shown(created.text)[-300:]
    location = created.headers["location"]
    page = client.get(location).text
    assert f'action="{location}/salt"' not in page, "the creator is offered the salt form"


def test_public_verifier_command_names_the_files_the_page_downloads(client, city):  # noqa: F811
    """/public/plans/{id} says: download 承诺 and 公开包, then in that folder run "python3
    tiers_draw_verify.py bundle.json --commitment commitment.json". The downloads are saved as
    plan-2-bundle.json and plan-2-commitment.json (demo plan #2), so the command as written answers only "error:
    bundle.json: cannot be read as JSON ([Errno 2] No such file or directory …)", in English."""
    location = _drawn(client, plan_id="public-verify")
    plan_id = location.rstrip("/").rsplit("/", 1)[-1]
    client.cookies.clear()
    page = client.get(f"/public/plans/{plan_id}").text
    command = re.search(r"python3 tiers_draw_verify\.py\s+(\S+)\s+--commitment\s+(\S+)", _shown(page))
    assert command, "no command on the page"
    saved = []
    for what in ("bundle", "commitment"):
        href = re.search(rf'href="([^"]*/public/plans/{plan_id}/{what}\.json)"', page).group(1)
        disposition = client.get(href).headers.get("content-disposition", "")
        saved.append(re.search(r'filename="?([^";]+)', disposition).group(1) if "filename" in disposition
                     else href.rsplit("/", 1)[-1])
    assert [command.group(1), command.group(2)] == saved, (command.groups(), saved)


# ------------------------------------------------------------------ analyst


def test_downloaded_monitoring_report_speaks_chinese(stored, mon_client, mon_settings):  # noqa: F811
    """Task "read drift, download the report": /analyst/monitoring/{id} is in Chinese, but 下载完整
    Evidently 报告 gives an English page ("Dataset Drift", "Drift is detected for 8.772% of columns",
    "Wasserstein distance (normed)", columns by code: w_inspection_problem_12m …). On the demo it also
    contradicts the page: the page says 本次运行未触发预警 (every PSI under 0.25), the download says drift
    is "Detected" for 5 of 57 columns, by another test the analyst cannot read."""
    client = _cookie_client(mon_client, mon_settings, "analyst")
    report = client.get(f"/analyst/monitoring/{stored}/report.html")
    assert report.status_code == 200
    # the page is drawn by script from the data it carries: its sentences are in that data, not in tags
    english = re.findall(r"Dataset [Dd]rift is (?:NOT )?detected|Drift is detected for|Data Drift Summary",
                         report.text)
    assert not english, sorted(set(english))
    # mended: our own report of the run (the page's facts), Evidently's English one named apart
    assert "模型监测报告" in report.text and f"/analyst/monitoring/{stored}/evidently.html" in report.text
    assert report.headers["content-disposition"].startswith("attachment")
    assert client.get(f"/analyst/monitoring/{stored}/evidently.html").status_code == 200


# ------------------------------------------------------------------ sector department


def test_profile_columns_the_fit_does_not_take_are_named_at_once_or_left_aside(site):
    """With no labelled file to start from (下载表头模板 is a header without rows), the sector user
    builds one from the service's own point-in-time profiles (`tiers profile`, as the README runs it)
    and adds the label. The upload is refused for "文件第 1 行，字段「n_admin_check_12m」：不是可识别的列名",
    then, one upload at a time, for n_admin_check_36m, n_repaired_36m, n_exempted_36m and district_code:
    five round trips for columns the service itself computes and the model does not use."""
    from test_srv_sector_fit import _upload, labelled_csv

    client = _logged_in(site, "sector_c")
    lines = labelled_csv(n=40).splitlines()
    extra = ("n_admin_check_12m", "n_repaired_36m", "district_code")
    text = "\n".join([lines[0] + "," + ",".join(extra), *(line + ",0,0,320102" for line in lines[1:])]) + "\n"
    r = _upload(client, text)
    if r.status_code == 422:
        named = [c for c in extra if c in _shown(r.text)]
        assert named == list(extra), f"one refusal names only {named}"


# ------------------------------------------------------------------ admin


def test_query_log_finds_a_person_by_the_name_the_user_list_shows(site):
    """查询使用登记 (who read which company): the admin made 李晓明's account as lisi_samr, 姓名 李晓明 (the
    user list shows both). Searching 查询人 for 李晓明 finds 0 entries (so does "lisi", or "LISI_SAMR");
    only the exact login name finds his 103, and the table names him "lisi_samr · 监管部门", not by
    name: an audit of a person's reads needs his login name, which the admin must look up first."""
    from serving.security import Principal

    admin = _headers(site, "admin")
    client = TestClient(site["app"])
    made = client.post("/api/v1/admin/users", headers=admin, json={
        "username": "lisi_samr", "display_name": "李晓明", "role": "regulator", "department": "samr",
        "password": "Qm7#vT2pXw9!kLr4"})
    assert made.status_code in (200, 201), made.text
    token, _ = create_access_token(Principal(username="lisi_samr", role="regulator", department="samr",
                                             section=None, uscc=None), site["app"].state.settings.jwt_key, 30)
    read = client.get(f"/api/v1/subjects/{ENT1}", params={"purpose": "日常监管"},
                      headers={"Authorization": f"Bearer {token}"})
    assert read.status_code == 200, read.text
    page = _logged_in(site, "admin").get("/admin/querylog", params={"actor": "李晓明"}).text
    assert ENT1 in page and "没有符合条件" not in page, _shown(page)[-300:]
