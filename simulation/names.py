"""Synthetic Chinese names for subjects, legal representatives and inspectors (no real persons)."""

from __future__ import annotations

import numpy as np

_SURNAMES = list("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈")
_GIVEN = list("伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉萍红建国文辉鹏飞燕宇浩然欣怡子涵晨雨梓轩思远嘉")
_TRADE = list("金鑫华盛泰和瑞丰源鼎宏达恒通新宁康汇德润隆昌嘉兴远航博锦诚信安顺天宝聚力中联众创")
_INDUSTRY_WORD = {
    "A": "农业科技", "B": "矿业", "C": "机械制造", "D": "能源", "E": "建设工程", "F": "商贸", "G": "物流",
    "H": "餐饮管理", "I": "信息技术", "J": "投资管理", "K": "房地产开发", "L": "企业管理咨询", "M": "科技",
    "N": "环境工程", "O": "家政服务", "P": "教育咨询", "Q": "医疗管理", "R": "文化传媒", "S": "公益服务",
    "T": "国际交流",
}
_SMALL_SHOP = {"F": "商行", "H": "小吃店", "O": "便民服务部", "G": "运输部", "C": "加工厂", "R": "工作室"}
_SUFFIX = {
    "llc": "有限公司", "joint_stock": "股份有限公司", "sole_proprietorship": "个人独资企业",
    "partnership": "合伙企业（有限合伙）", "farmer_coop": "专业合作社", "branch": "有限公司分公司",
    "social_org": "协会",
}


def person_names(rng: np.random.Generator, n: int) -> list[str]:
    """n synthetic Chinese personal names (surname + one or two given characters)."""
    surname = rng.integers(0, len(_SURNAMES), n)
    given1 = rng.integers(0, len(_GIVEN), n)
    given2 = rng.integers(0, len(_GIVEN), n)
    two = rng.random(n) < 0.7
    return [
        _SURNAMES[s] + _GIVEN[a] + (_GIVEN[b] if t else "")
        for s, a, b, t in zip(surname.tolist(), given1.tolist(), given2.tolist(), two.tolist(), strict=True)
    ]


def subject_names(
    rng: np.random.Generator, city: str, districts: list[str], industries: list[str], legal_forms: list[str]
) -> list[str]:
    """Company-style names: city or district, a trade name, an industry word and a legal-form suffix."""
    n = len(industries)
    t1 = rng.integers(0, len(_TRADE), n).tolist()
    t2 = rng.integers(0, len(_TRADE), n).tolist()
    names = []
    for i in range(n):
        trade = _TRADE[t1[i]] + _TRADE[t2[i]]
        form = legal_forms[i]
        if form == "individual_business":
            names.append(f"{districts[i]}{trade}{_SMALL_SHOP.get(industries[i], '经营部')}")
        else:
            names.append(f"{city}{trade}{_INDUSTRY_WORD[industries[i]]}{_SUFFIX[form]}")
    return names
