"""Chinese-pattern passwords (issue 14 finding 4): zxcvbn's lists know no pinyin, so a pinyin name
or phrase plus a date or a "love number" passed the policy."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from serving.security import password_problem

ATTACKERS = ["zhangsan123456", "woaini1314520", "1314520woaini", "wangwei19880808", "liuyang1990abc",
             "Beijing2008!!", "Shanghai@2024"]
NAMES = ["zhangsan", "lisi", "wangwei", "liuyang", "zhangwei", "wangfang", "lina", "chenjing", "liqiang",
         "woaini", "beijing", "shanghai", "xiaoming", "zhaolei", "huangmin"]


@pytest.mark.parametrize("password", ATTACKERS)
def test_the_attackers_passwords_are_refused_with_a_chinese_message(password):
    problem = password_problem(password, username="reg_x", role="regulator")
    assert problem is not None and "拼音" in problem


dates = st.dates(min_value=dt.date(1950, 1, 1), max_value=dt.date(2030, 12, 31))


@settings(max_examples=200, deadline=None)
@given(name=st.sampled_from(NAMES), day=dates, form=st.sampled_from(["%Y%m%d", "%Y", "%m%d%Y", "%y%m%d"]),
       capital=st.booleans(), before=st.booleans(), tail=st.sampled_from(["", "!", "!!", "@", ".", "abc", "qq"]))
def test_a_pinyin_name_with_a_date_is_always_refused(name, day, form, capital, before, tail):
    name = name.capitalize() if capital else name
    digits = day.strftime(form)
    password = (digits + name if before else name + digits) + tail
    if len(password) < 12:  # the length rule refuses it anyway
        password += "1314"
    assert password_problem(password, username="reg_x", role="regulator") is not None


@settings(max_examples=100, deadline=None)
@given(name=st.sampled_from(NAMES), love=st.sampled_from(["5201314", "1314520", "520520", "1314", "123456", "888888"]),
       sep=st.sampled_from(["", "@", "_", "."]))
def test_a_pinyin_phrase_with_a_love_number_is_always_refused(name, love, sep):
    password = f"{name}{sep}{love}"
    if len(password) < 12:
        password += "520"
    assert password_problem(password, username="reg_x", role="regulator") is not None


@pytest.mark.parametrize("password", ["kY7#vQ2!mZ9@pL4$", "Tr0ub4dor&3xyzQ!", "风险分级-Q7v#pL4m9Z", "correct horse battery staple 42"])
def test_strong_passwords_are_still_accepted(password):
    assert password_problem(password, username="reg_x", role="regulator") is None


def test_random_passwords_are_not_taken_for_chinese_patterns():
    """The rule must not refuse what a password manager makes (as the demo accounts' passwords)."""
    import random
    import string

    from serving.cn_passwords import chinese_pattern

    rng = random.Random(14)  # noqa: S311 - a seeded, reproducible sample, not a secret
    alphabet = string.ascii_letters + string.digits + "-_"
    flagged = [p for p in ("".join(rng.choice(alphabet) for _ in range(24)) for _ in range(20000))
               if chinese_pattern(p)]
    assert flagged == []
