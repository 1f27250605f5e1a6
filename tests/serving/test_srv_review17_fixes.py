"""The rules behind fix17's answers to the review17 findings, below the pages: one department
catalogue for every way a user is made, and salt formats said in words, never as a pattern."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from serving.labels import department_names, salt_format
from supervision.bundle import salt_pattern_problem


def test_api_refuses_a_department_outside_the_catalogue_in_chinese(client, auth):
    body = {"username": "wang_samr", "password": "Qiuyue-Lantern-8813-Harbor", "role": "regulator",
            "department": "南京市市场监督管理局"}  # the name typed where the catalogue's code belongs
    r = client.post("/api/v1/admin/users", headers=auth("admin"), json=body)
    error = r.json()["error"]
    assert r.status_code == 422 and error["field"] == "department" and "部门" in error["message_zh"]
    assert "samr" in department_names()
    made = client.post("/api/v1/admin/users", headers=auth("admin"), json={**body, "department": "samr"})
    assert made.status_code == 201


_UNITS = st.sampled_from([r"\d", "[0-9]", "[A-Z]", "[ -~]", "[a-z0-9]", " ", "-", ":", "x"])
_COUNTS = st.sampled_from(["", "{2}", "{1,3}"])


@given(st.lists(st.tuples(_UNITS, _COUNTS), min_size=1, max_size=6))
def test_salt_formats_are_said_without_the_pattern(parts):
    pattern = "".join(u + c for u, c in parts)
    if salt_pattern_problem(pattern) is not None:
        return
    for lang in ("zh", "en"):
        words = salt_format(pattern, lang)
        assert words and not re.search(r"\\d|\{\d|\[[^\]]*\]", words), (pattern, words)


def test_common_salt_formats_read_as_people_say_them():
    assert salt_format(r"[ -~]{1,64}") == "1–64 个可打印的英文字符（字母、数字、标点或空格）"
    assert salt_format(r"\d \d \d") == "3 个数字，以空格分隔"
    assert salt_format(r"\d \d \d", "en") == "3 digits separated by a space"


def test_a_reason_shows_three_records_and_folds_the_rest_and_its_contribution_never_wraps(client, world):
    """At 375 px a reason's contribution wrapped inside the number (-13.8 as -1/3./8) beside up to
    20 record ids (review17): the contribution cell is a number that does not break, and a reason
    lists three records, the rest folded."""
    from serving.db.session import iter_session
    from serving.services.grades import latest_grade

    session = next(iter_session(client.app.state.settings.database_url))
    try:
        grade = latest_grade(session, world.ent1)
        reasons = [dict(r) for r in grade.reasons]
        reasons[0]["record_ids"] = [f"R{i:012d}" for i in range(20)]
        grade.reasons = reasons
        session.commit()
    finally:
        session.close()
    from srv_fixtures import form_login

    assert form_login(client, "ent1").status_code == 303
    page = client.get(f"/credit/{world.ent1}").text
    row = re.search(r"<td class=\"num [^\"]*\">[^<]*</td>\s*<td class=\"record-ids\">(.*?)</td>", page, re.S)
    assert row, "the contribution is not marked as a number"
    shown, _, folded = row.group(1).partition("<details>")
    assert shown.count("R0000000") == 3 and folded.count("R0000000") == 17 and "等 17 条" in folded
    css = client.get("/static/style.css").text
    assert re.search(r"td\.num\s*\{[^}]*white-space:\s*nowrap", css)
