"""Second outside-in review of issue 17 (review17b): a Chinese official, reading no English and
knowing nothing of the code, did the newcomer tasks of every role on `tiers demo` in Chromium.
Each test pins one thing that confused or blocked them; the review's report ranks them."""

from __future__ import annotations

import html
import re

import pytest
from test_srv_plans_flow import city, settings  # noqa: F401  (fixtures: data dir and graded city)
from test_srv_regrade import store  # noqa: F401  (fixture: ENT1 ingested into a feature store)
from test_srv_review17 import _as, _drawn

# the module fixture (app, database, models) is built once, on one worker
# A second newcomer's findings (session 9), written as failing tests by someone who had not built the
# pages, not yet mended: each is a strict xfail, so it keeps running and the day a finding is mended
# its test passes and fails the run until the mark is taken off (mended ones carry no mark).
KNOWN = pytest.mark.xfail(strict=True, reason="review17b finding, not yet mended (issue 17)")
pytestmark = pytest.mark.xdist_group("srv_review17b")

PURPOSE = "日常监管"
LATIN_WORD = re.compile(r"\b[A-Za-z][A-Za-z_]{2,}\b")


def _visible(page: str) -> str:
    """The text a person reads: no scripts, styles, tags or attributes."""
    page = re.sub(r"<(script|style)\b.*?</\1>", " ", page, flags=re.S)
    return html.unescape(re.sub(r"<[^>]+>", " ", page))


def _committed(client, **form) -> str:
    """A plan committed by reg_samr with a named public salt source (3 digits); returns its path."""
    from test_srv_lang import _plan_form

    _as(client, "reg_samr", "/regulator/plans")
    data = _plan_form(client, salt_source="福彩3D 第2026330期", salt_pattern=r"\d \d \d", **form)
    created = client.post("/regulator/plans", data=data, follow_redirects=False)
    assert created.status_code == 303, created.text[-600:]
    return created.headers["location"]


# ------------------------------------------------------------------ regulator


@pytest.mark.parametrize("typed", [{"value": "581"}, {"value": "5 8 1", "known_at": "2027-05-01T21:15"}],
                         ids=["salt-not-in-its-format", "salt-known-in-the-future"])
def test_refused_salt_is_said_in_chinese_on_the_plan_page_with_what_was_typed(client, city, typed):  # noqa: F811
    """The second regulator types the lottery number as "581" (the commitment fixed "5 8 1"), or a
    publication time in the future: a bare 出错了 422 page says "salt value '581' is not written as
    the commitment fixed it (salt_pattern '\\d \\d \\d'); rule: …" / "the salt was entered at
    2026-12-07T05:41:48.978240Z, before it became known at …", with only 返回; what was typed is gone."""
    location = _committed(client, plan_id="typed-number")  # a plan id of its own words, not the page's
    csrf = _as(client, "reg_samr2", location)
    r = client.post(location + "/salt", data={**typed, "csrf_token": csrf})
    assert r.status_code == 422
    text = _visible(r.text)
    assert not re.search(r"salt|pattern|rule|entered at|\\d|\d{2}:\d{2}:\d{2}\.\d+Z", text), text[-400:]
    assert 'name="value"' in r.text and f'value="{typed["value"]}"' in r.text, "the number typed is lost"
    field = "known_at" if "known_at" in typed else "value"
    assert re.search(rf'name="{field}"[^>]*aria-invalid="true"', r.text), "the reason is not at the field to correct"
    assert f'value="{typed.get("known_at", "")}"' in r.text, "the time typed is lost"


def test_staff_opening_a_company_without_purpose_get_a_chinese_way_on(client, world):
    """A regulator opening /credit/{uscc} (a bookmark, a link mailed by a colleague) gets 出错了 422
    "purpose is required for staff reads of credit data (查询用途): pass ?purpose=… or the X-Purpose
    header"."""
    _as(client, "reg_samr", "/regulator")
    r = client.get(f"/credit/{world.ent1}")
    text = _visible(r.text)
    assert not re.search(r"purpose|X-Purpose|header|pass", text), text[-400:]
    assert "查询用途" in text


def test_objection_queue_links_to_the_record_in_dispute(client, world):
    """异议申请 · 处理中 on /regulator lists USCC, record number and reason but links nowhere: the
    officer deciding 异议成立 / 不予支持 cannot see the record the company disputes."""
    _as(client, "ent1", f"/credit/{world.ent1}")
    page = client.get(f"/credit/{world.ent1}").text
    csrf = re.search(r'name="csrf_token" value="([0-9a-f]+)"', page).group(1)
    for record_id in sorted(set(re.findall(r'name="record_id" value="([^"]+)"', page))):
        client.post(f"/credit/{world.ent1}/objections", follow_redirects=False,
                    data={"record_id": record_id, "reason": "该记录不属于本企业，请核实。", "csrf_token": csrf})
    _as(client, "reg_samr", "/regulator")
    queue = client.get("/regulator").text
    section = queue[queue.index("异议申请"):]
    assert world.ent1 in section, "no objection reached the samr queue"
    assert re.search(rf'href="/credit/{world.ent1}[^"]*"', section), "no way from the objection to the record"
    href, record = re.search(rf'class="record-link" href="(/credit/{world.ent1}[^"#]*)#record-([^"]+)"',
                             section).group(1, 2)
    opened = client.get(html.unescape(href))
    assert opened.status_code == 200 and f'id="record-{record}"' in opened.text, "the link does not show the record"
    assert len(re.findall(r'<td [^>]*id="record-', opened.text)) == 1, "the record in dispute is not shown alone"


def test_subject_list_and_company_page_mask_an_individual_business_alike(client, city):  # noqa: F811
    """监管对象信用等级 shows an individual business as "建******" but its page, one click away,
    titles it in full "建邺区力创商行": the same officer sees the name masked and unmasked."""
    business = city[0]  # the one individual business of the test city
    _as(client, "reg_samr", "/regulator")
    listing = _visible(client.get("/regulator", params={"purpose": PURPOSE, "search": business["uscc"]}).text)
    company = _visible(client.get(f"/credit/{business['uscc']}", params={"purpose": PURPOSE}).text)
    assert (business["name"] in listing) == (business["name"] in company), "masked in one place, not the other"


def test_plan_page_names_the_model_not_its_registry_code(client, session, city):  # noqa: F811
    """The drawn plan's header: "模型版本 tiers-general/1;tiers-sector-F/1" (the demo's pools are
    graded by the general and a sector model, registered under these names)."""
    from test_srv_plans_flow import AS_OF

    from serving.services.grades import store_grades

    store_grades(session, [dict(uscc=s["uscc"], as_of=AS_OF, score=700.0, grade="B", probability=0.05,
                                model_version="tiers-general/1" if n % 2 else "tiers-sector-C/1",
                                profile_hash="c" * 64) for n, s in enumerate(city)])
    location = _drawn(client, plan_id="model-words")
    _as(client, "reg_samr", location)
    text = _visible(client.get(location).text)
    shown = re.search(r"模型版本\s*([^;；\n]*(?:[;；][^\n;；]*)*)", text)
    assert shown, "no model version on the plan page"
    assert not LATIN_WORD.search(shown.group(1).split("抽取承诺")[0]), shown.group(1)[:120]


def test_result_form_takes_the_document_number_the_public_table_shows(client, city):  # noqa: F811
    """/public/{department} and its CSV have a 文书号 column, but the result form on the plan page has
    only outcome, dates and correction reason: a 发现问题已立案 result is published without one."""
    location = _drawn(client, plan_id="document-no")
    _as(client, "reg_samr", location)
    form = re.search(r'<form[^>]*class="result-form".*?</form>', client.get(location).text, re.S).group(0)
    client.cookies.clear()
    assert "文书号" in client.get("/public/samr").text
    assert "文书号" in form, "the result form has no 文书号 field"
    # and what is typed there is what the public table shows (entered and published in the period)
    import datetime as dt

    from serving.deps import get_today

    csrf = _as(client, "reg_samr", location)
    fields = {**dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form)), "csrf_token": csrf}
    client.app.dependency_overrides[get_today] = lambda: dt.date(2026, 12, 15)  # this test's app only
    entered = client.post(location + "/results", follow_redirects=False, data={
        **fields, "outcome": "case_opened", "inspected_on": "2026-12-10", "published_on": "2026-12-11",
        "document_no": "宁市监立〔2026〕17号"})
    assert entered.status_code == 303, " ".join(_visible(entered.text).split())[-300:]
    client.cookies.clear()
    assert "宁市监立〔2026〕17号" in client.get("/public/samr").text


# ------------------------------------------------------------------ public (一公开)


def test_public_page_of_an_unknown_department_is_not_an_empty_department(client):
    """/public/verifier (or any typo) answers 200 "双随机抽查结果公示 · verifier … 暂无公示结果": the
    public is told a department with that name published nothing."""
    r = client.get("/public/nosuchdept")
    assert r.status_code == 404, r.status_code


def test_public_plan_page_names_items_and_offers_the_verifier(client, city):  # noqa: F811
    """/public/plans/{id} lists pools as "南京市市场监督管理局/SAMR-03" (the regulator's page names
    the item) and says anyone can check the draw with "仓库中的独立校验程序 python3
    tiers_draw_verify.py …" without a link to get it: the public has no repository."""
    location = _drawn(client, plan_id="public-verifier")
    client.cookies.clear()
    public = client.get(location.replace("/regulator/plans/", "/public/plans/")).text
    assert not re.search(r"/SAMR-\d\d\b", _visible(public)), "pools named by item code"
    assert re.search(r'href="[^"]*(verify|verifier)[^"]*"', public), "no link to the verifier"
    href = re.search(r'class="verifier-download" href="([^"]+)"', public).group(1)
    got = client.get(href)
    assert got.status_code == 200 and got.content.startswith(b"#!/usr/bin/env python3"), got.status_code


# ------------------------------------------------------------------ enterprise


def test_enterprise_sees_the_commitments_it_has_signed(client, world):
    """After 签署承诺 the page returns to #commitments and the matter simply leaves the choice list:
    nowhere on 我的信用 does the company see what it signed, when, or by when it is checked."""
    _as(client, "ent1", f"/credit/{world.ent1}")
    page = client.get(f"/credit/{world.ent1}").text
    form = re.search(r'<form[^>]*id="commitment-form".*?</form>', page, re.S).group(0)
    value, label = re.search(r'<option value="([^"]+)">([^（<]+)', form).groups()
    csrf = re.search(r'name="csrf_token" value="([0-9a-f]+)"', form).group(1)
    signed = client.post(f"/credit/{world.ent1}/commitments", data={"matter_code": value, "csrf_token": csrf},
                         follow_redirects=False)
    assert signed.status_code in (302, 303), signed.text[-400:]
    after = client.get(f"/credit/{world.ent1}").text
    outside_form = re.sub(r'<form[^>]*id="commitment-form".*?</form>', " ", after, flags=re.S)
    assert label.strip() in _visible(outside_form), f"signed {label} is not shown"


# ------------------------------------------------------------------ sector department


def test_labelled_file_page_gives_the_headers_the_template_has(client):
    """/sector/fit says "列名（表头照此填写）：uscc、as_of、label、industry" and lists the 52 features
    by code (n_penalty_12m …), while 下载表头模板 gives Chinese headers (统一社会信用代码, 评价基准日,
    是否发生不良结果, 近12个月行政处罚次数 …): which header is the user to write?"""
    _as(client, "sector_c", "/sector/fit")
    text = _visible(client.get("/sector/fit").text)
    assert not re.search(r"\bas_of\b|\bn_penalty_12m\b|\buscc\b", text), "the page asks for code headers"


# ------------------------------------------------------------------ analyst and admin


def test_analyst_can_reach_held_batches_from_its_pages(client):
    """The analyst's home (/analyst) links only to 模型监测运行与图表: 数据质量拦截 (/analyst/gates)
    is reachable only by typing its address (the admin's menu has it)."""
    _as(client, "analyst", "/analyst")
    assert 'href="/analyst/gates"' in client.get("/analyst").text


def test_query_log_says_what_was_read_without_http_routes(client, world):
    """查询使用登记's 查询内容 reads "企业信用信息（页面） GET /credit/{uscc}"."""
    _as(client, "ent1", f"/credit/{world.ent1}")
    client.get(f"/credit/{world.ent1}")
    _as(client, "admin", "/admin/querylog")
    text = _visible(client.get("/admin/querylog").text)
    assert "企业信用信息" in text
    assert not re.search(r"\b(GET|POST)\s+/", text), "HTTP routes shown to the admin"


# ------------------------------------------------------------------ after a decision


def test_reasons_after_an_upheld_objection_cite_only_records_the_enterprise_has(session, store):  # noqa: F811
    """After 异议成立 on the demo the enterprise's reason "近36个月共有45条信用记录，提高了信用风险" became
    "…共有46条…", citing "CMT000000001-M, SRV-REVOKE-R000000166602": the service's own revocation of the
    wrong record (and the commitment it signed) count, under internal codes, as records raising its risk."""
    import numpy as np
    import pandas as pd
    from srv_fixtures import ENT1
    from srv_models import CountsModel
    from test_srv_regrade import _uphold

    from serving.services.champions import ChampionHolder
    from serving.services.grades import latest_grade, store_grades
    from serving.services.regrade import make_regrader

    class RecordsModel(CountsModel):
        """Risk rises with the number of records of the last 36 months (the demo's n_records_36m)."""

        features = ("n_records_36m",)

        def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
            p = 1 / (1 + np.exp(-(-3.0 + 0.2 * frame["n_records_36m"].fillna(0).to_numpy(float))))
            return np.column_stack([1 - p, p])

        def reasons(self, frame: pd.DataFrame, *, top: int = 5, evidence=None) -> list[list[dict]]:
            cited = evidence if evidence is not None else [{}] * len(frame)
            return [[{"code": "n_records_36m", "label_zh": "近36个月记录数", "label_en": "records", "override": False,
                      "contribution": -float(n), "value": float(n),
                      "record_ids": [e["record_id"] for e in c.get("n_records_36m", [])]}]
                    for n, c in zip(frame["n_records_36m"].fillna(0), cited, strict=True)]

    class Registry:
        def alias_version(self, name: str, alias: str) -> int | None:
            return 1 if name == "tiers-general" and alias == "champion" else None

        def load_model(self, name: str, version: int) -> RecordsModel:
            return RecordsModel()

    regrader = make_regrader(store_dir=store, models=ChampionHolder(Registry))
    store_grades(session, [dict(uscc=ENT1, as_of="2026-10-31", score=600.0, grade="C", probability=0.3,
                                model_version="tiers-general/1", profile_hash="0" * 64)])
    regrader(session, ENT1, "baseline")
    session.commit()
    before = latest_grade(session, ENT1).reasons[0]["value"]
    _uphold(session, regrader, "R2")
    after = latest_grade(session, ENT1).reasons[0]
    cited = set(after["record_ids"])
    assert after["value"] < before, f"{before} records before the objection, {after['value']} after"
    assert not {rid for rid in cited if rid.startswith("SRV-")}, sorted(cited)


def test_file_wide_refusal_names_the_date_column_as_the_file_heads_it():
    """A file headed as the template heads it (评价基准日 …) with a single date is refused with
    "文件，字段「as_of」：须至少有一个比最晚基准日 2024-09-30 早 12 个月以上的基准日用于训练": the
    column is named by a code the user never wrote (a refused cell names 「近12个月行政处罚次数」)."""
    from test_srv_sector_fit import labelled_csv

    from serving.errors import InvalidInput
    from serving.services import sector_fit

    coded = labelled_csv(n=40)
    header, _, body = coded.partition("\n")
    names = {code: heading for heading, code in sector_fit.column_names().items()
             if heading != code and re.search("[\u4e00-\u9fff]", heading)}
    one_date = [line for line in body.splitlines() if ",2025-09-30," in line]
    worded = ",".join(names.get(c, c) for c in header.split(",")) + "\n" + "\n".join(one_date) + "\n"
    with pytest.raises(InvalidInput) as refused:
        sector_fit.parse_labelled_csv(worded.encode(), "C", "zh")
    assert refused.value.field == names["as_of"], refused.value.field


# ------------------------------------------------------------------ smaller findings of the same review


def test_plan_form_chooses_districts_from_the_citys_list(client, city):  # noqa: F811
    """新建抽查计划's 区县 was a free text box (codes or names, separated by ；): the other pages
    choose a district from the city's list."""
    from test_srv_lang import _plan_form

    _as(client, "reg_samr", "/regulator/plans")
    page = client.get("/regulator/plans").text
    chooser = re.search(r'<select[^>]*name="district_codes"[^>]*>.*?</select>', page, re.S)
    assert chooser and " multiple" in chooser.group(0), "the districts are typed, not chosen"
    offered = re.findall(r'<option value="(\d{6})"[^>]*>([^<]+)</option>', chooser.group(0))
    assert offered and all(name.strip() != code for code, name in offered), offered
    codes = [code for code, _ in offered[:2]]
    refused = client.post("/regulator/plans", data=_plan_form(client, plan_id="two-districts", period_end="2026-11-01",
                                                              district_codes=codes))
    assert refused.status_code == 422
    assert all(re.search(rf'<option value="{c}" selected', refused.text) for c in codes), "the choice is lost"
    created = client.post("/regulator/plans", data=_plan_form(client, plan_id="two-districts", district_codes=codes),
                          follow_redirects=False)
    assert created.status_code == 303, _visible(created.text)[-300:]


def test_commitment_and_warning_lists_mask_an_individual_business_as_the_subject_list(client, session, city):  # noqa: F811
    """Beyond the review (found mending its masking finding): 信用承诺公示 — a page without login —
    named an individual business (a person's name) in full, where every list of subjects masks it."""
    import datetime as dt

    from serving.db.tables import Commitment

    business = city[0]
    session.add(Commitment(uscc=business["uscc"], matter_code="samr-quality-public", kind="主动公示型",
                           title="产品质量承诺", department="samr", text="本单位承诺……", catalogue_version="t",
                           public=True, signed_by="ent", signed_on=dt.date(2026, 11, 20),
                           due_on=dt.date(2027, 5, 20)))
    session.commit()
    public = client.get("/commitments/public").text
    api = client.get("/api/v1/commitments/public").json()
    assert business["uscc"] in public and business["name"] not in public, "named in full on the public page"
    assert {c["name"] for c in api if c["uscc"] == business["uscc"]} == {business["name"][0] + "*" * (len(business["name"]) - 1)}
    _as(client, "reg_samr", "/regulator/commitments")
    assert business["name"] not in client.get("/regulator/commitments").text
