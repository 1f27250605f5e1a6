"""Files in the national 双公示 and list layouts, as offices send them, with the truth of every row.

For tests and ``data_samples/national/``: the simulator writes what a credit office receives (Chinese
headers with their real spellings, amounts in 万元, no severity, dates written several ways,
natural persons among the subjects), in CSV (GB18030 or UTF-8 with BOM), .xlsx or .xls. The truth
says what ingestion must make of each row: accepted with this severity and amount in yuan, or
quarantined under this rule. ``simulation`` does not import ``features``: the layouts here are the
national standards' headers (docs/data-contract.md, "National formats"), not ingestion's mappings.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from simulation.codes import make_resident_ids

Format = Literal["csv-gb18030", "csv-utf8-bom", "xlsx", "xls"]
FORMATS: tuple[Format, ...] = ("csv-gb18030", "csv-utf8-bom", "xlsx", "xls")
_SUFFIX = {"csv-gb18030": ".csv", "csv-utf8-bom": ".csv", "xlsx": ".xlsx", "xls": ".xls"}

_SUBJECT_CODES = ["行政相对人代码_2（工商注册号）", "行政相对人代码_3（组织机构代码）", "行政相对人代码_4（税务登记号）",
                  "行政相对人代码_5（事业单位证书号）", "行政相对人代码_6（社会组织登记证号）"]
HEADERS: dict[str, list[str]] = {
    "penalty_current": [
        "行政相对人名称", "行政相对人类别", "行政相对人代码_1（统一社会信用代码）", *_SUBJECT_CODES, "法定代表人",
        "法定代表人证件类型", "法定代表人证件号码", "证件类型", "证件号码", "行政处罚决定书文号", "违法行为类型",
        "违法事实", "处罚依据", "处罚类别", "处罚内容", "罚款金额（万元）", "没收违法所得、没收非法财物的金额（万元）",
        "暂扣或吊销证照名称及编号", "处罚决定日期", "处罚有效期", "公示截止期", "处罚机关", "处罚机关统一社会信用代码",
        "数据来源单位", "数据来源单位统一社会信用代码", "备注"],
    "license_current": [
        "行政相对人名称", "行政相对人类别", "行政相对人代码_1（统一社会信用代码）", *_SUBJECT_CODES, "法定代表人",
        "法定代表人证件类型", "法定代表人证件号码", "证件类型", "证件号码", "行政许可决定文书名称", "行政许可决定文书号",
        "许可类别", "许可证书名称", "许可编号", "许可内容", "许可决定日期", "有效期自", "有效期至", "许可机关",
        "许可机关统一社会信用代码", "当前状态", "数据来源单位", "数据来源单位统一社会信用代码", "备注"],
    "penalty_legacy": ["CF_WSH", "CF_CFMC", "CF_CFLB1", "CF_CFLB2", "CF_SY", "CF_YJ", "CF_XDR_MC", "CF_XDR_SHXYM",
                       "CF_FR", "CF_JG", "CF_JDRQ", "CF_XZJG", "CF_ZT", "DFBM", "SJC", "BZ"],
    "penalty_legacy_names": ["行政处罚决定书文号", "处罚名称", "处罚类别1", "处罚类别2", "处罚事由", "处罚依据",
                             "行政相对人名称", "行政相对人代码_1(统一社会信用代码)", "法定代表人姓名", "处罚结果",
                             "处罚决定日期", "处罚机关", "当前状态", "地方编码", "数据更新时间戳", "备注"],
    "license_legacy": ["XK_WSH", "XK_XMMC", "XK_SPLB", "XK_NR", "XK_XDR_MC", "XK_XDR_SHXYM", "XK_FR", "XK_JDRQ",
                       "XK_JZQ", "XK_XZJG", "XK_ZT", "DFBM", "SJC", "BZ"],
    "list_abnormal_operation": ["序号", "企业名称", "统一社会信用代码", "列入决定书文号", "列入日期", "列入原因",
                                "移出日期", "移出原因", "作出决定机关"],
    "list_serious_dishonesty": ["企业名称", "统一社会信用代码", "列入严重违法失信名单决定书文号", "列入日期",
                                "列入严重违法失信名单原因", "作出决定机关（列入）", "移出日期", "移出原因"],
    "list_dishonest_debtor": ["被执行人姓名/名称", "身份证号码/组织机构代码", "法定代表人或者负责人姓名", "执行法院",
                              "省份", "执行依据文号", "案号", "立案时间", "作出执行依据单位", "生效法律文书确定的义务",
                              "被执行人的履行情况", "失信被执行人行为具体情形", "发布时间"],
    "tax_credit": ["序号", "纳税人识别号", "纳税人名称", "评价年度", "纳税信用级别", "主管税务机关"],
}
LAYOUTS = tuple(HEADERS)

# (处罚类别, 罚款 万元, 没收 万元, 处罚机关, expected severity or the rule that quarantines the row)
_PENALTY_CASES: list[tuple[str, float | None, float | None, str, str]] = [
    ("警告", None, None, "南京市市场监督管理局", "minor"),
    ("通报批评", None, None, "南京市市场监督管理局", "minor"),
    ("罚款", 0.2, None, "南京市市场监督管理局", "minor"),
    ("罚款", 1.5, None, "南京市市场监督管理局", "general"),
    ("警告；罚款", 12.0, None, "南京市市场监督管理局", "serious"),
    ("罚款", 15.0, None, "南京市生态环境局", "general"),  # ecology's own serious threshold (20 万)
    ("没收违法所得、没收非法财物", None, 0.5, "国家税务总局南京市税务局", "general"),
    ("暂扣许可证件", None, None, "南京市交通运输局", "general"),
    ("降低资质等级", None, None, "南京市住房和城乡建设局", "serious"),
    ("吊销许可证", None, None, "南京市文化和旅游局", "serious"),
    ("限制开展生产经营活动", None, None, "南京市应急管理局", "serious"),
    ("责令停产停业", None, None, "南京市应急管理局", "serious"),
    ("责令关闭", None, None, "南京市生态环境局", "serious"),
    ("限制从业", None, None, "南京市卫生健康委员会", "serious"),
    ("罚款;吊销许可证", 1.0, None, "南京市市场监督管理局", "serious"),
    ("警告、罚款", 0.1, None, "南京市消防救援支队", "minor"),
    ("其他-责令退还", None, None, "南京市市场监督管理局", "severity_underivable"),
    ("罚款", None, None, "南京市市场监督管理局", "severity_underivable"),
]


def _dates(n: int, rng: np.random.Generator, start: dt.date = dt.date(2024, 1, 1), span: int = 600) -> list[dt.date]:
    return [start + dt.timedelta(days=int(d)) for d in rng.integers(0, span, n)]


def _written(day: dt.date, i: int) -> str:
    """Dates as offices write them: ISO, with slashes, in Chinese, or as eight digits."""
    return (day.isoformat(), f"{day.year}/{day.month}/{day.day}", f"{day.year}年{day.month}月{day.day}日",
            day.strftime("%Y%m%d"))[i % 4]


def _people(n: int, rng: np.random.Generator) -> tuple[list[str], list[str]]:
    births = np.datetime64("1980-01-01") + rng.integers(0, 9000, n).astype("timedelta64[D]")
    ids = make_resident_ids(np.full(n, 320102), births, np.arange(1, n + 1))
    names = [f"{'王李张刘陈'[i % 5]}{'伟芳敏静磊'[(i // 5) % 5]}" for i in range(n)]
    return names, [str(x) for x in ids]


def national_table(layout: str, subjects: Sequence[tuple[str, str]], *, seed: int = 0,
                   people: int = 2) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(file rows under the layout's headers, truth) for ``subjects`` [(uscc, name)] plus ``people``
    natural persons. Truth columns: ``row`` (1-based data row), ``expected`` (``accepted`` or a rule),
    ``severity`` (penalties), ``amount_yuan`` (what the stored amount must be), ``kind``."""
    rng = np.random.default_rng(seed)
    header = HEADERS[layout]
    rows: list[dict[str, object]] = []
    truth: list[dict[str, object]] = []
    names, ids = _people(people, rng)
    n = len(subjects)

    def add(values: dict[str, object], expected: str, kind: str, severity=None, amount=None) -> None:
        rows.append({h: values.get(h) for h in header})
        truth.append({"row": len(rows), "expected": expected, "kind": kind, "severity": severity,
                      "amount_yuan": amount})

    days = _dates(n + people, rng)
    if layout == "penalty_current":
        for i, (code, name) in enumerate(subjects):
            types, fine, conf, authority, want = _PENALTY_CASES[i % len(_PENALTY_CASES)]
            accepted = want in ("minor", "general", "serious")
            add({"行政相对人名称": name, "行政相对人类别": "法人及非法人组织", "行政相对人代码_1（统一社会信用代码）": code,
                 "法定代表人": "赵某", "法定代表人证件类型": "身份证", "法定代表人证件号码": ids[0],
                 "行政处罚决定书文号": f"宁罚〔2025〕{i + 1}号", "违法行为类型": "违反市场监管规定",
                 "违法事实": "经查，当事人……", "处罚依据": "《中华人民共和国行政处罚法》", "处罚类别": types,
                 "处罚内容": f"{types}处理", "罚款金额（万元）": fine, "没收违法所得、没收非法财物的金额（万元）": conf,
                 "处罚决定日期": _written(days[i], i), "公示截止期": (days[i] + dt.timedelta(days=365)).isoformat(),
                 "处罚机关": authority, "处罚机关统一社会信用代码": "11320100MB0000000X", "数据来源单位": authority},
                "accepted" if accepted else want, "admin_penalty", want if accepted else None,
                round(fine * 10_000, 2) if fine is not None and accepted else None)
        for j in range(people):
            add({"行政相对人名称": names[j], "行政相对人类别": "自然人", "证件类型": "身份证", "证件号码": ids[j],
                 "行政处罚决定书文号": f"宁罚〔2025〕个{j + 1}号", "处罚类别": "罚款", "罚款金额（万元）": 0.05,
                 "处罚决定日期": days[n + j].isoformat(), "处罚机关": "南京市公安局"}, "natural_person", "admin_penalty")
    elif layout == "license_current":
        for i, (code, name) in enumerate(subjects):
            add({"行政相对人名称": name, "行政相对人类别": "法人及非法人组织", "行政相对人代码_1（统一社会信用代码）": code,
                 "行政许可决定文书名称": "准予行政许可决定书", "行政许可决定文书号": f"宁许〔2025〕{i + 1}号",
                 "许可类别": "普通", "许可证书名称": "食品经营许可证", "许可编号": f"JY{i:010d}",
                 "许可内容": "预包装食品销售", "许可决定日期": _written(days[i], i),
                 "有效期自": days[i].isoformat(), "有效期至": (days[i] + dt.timedelta(days=1826)).isoformat(),
                 "许可机关": "南京市市场监督管理局", "当前状态": "有效"}, "accepted", "admin_license")
        for j in range(people):
            add({"行政相对人名称": names[j], "行政相对人类别": "自然人", "证件类型": "身份证", "证件号码": ids[j],
                 "行政许可决定文书号": f"宁许〔2025〕个{j + 1}号", "许可决定日期": days[n + j].isoformat(),
                 "许可机关": "南京市交通运输局"}, "natural_person", "admin_license")
    elif layout in ("penalty_legacy", "penalty_legacy_names"):
        codes = HEADERS["penalty_legacy"]
        for i, (code, name) in enumerate(subjects):
            fine_yuan = [500, 8000, 150000][i % 3]
            want = ["minor", "general", "serious"][i % 3]
            values = dict(zip(codes, [f"宁罚〔2023〕{i + 1}号", "罚款处罚", "罚款", None, "未按规定公示年报",
                                      "《企业信息公示暂行条例》", name, code, "赵某", f"罚款人民币{fine_yuan}元",
                                      _written(days[i], i), "南京市市场监督管理局", "正常", "320100",
                                      "2024-01-01 00:00:00", None], strict=True))
            add(dict(zip(header, values.values(), strict=True)), "accepted", "admin_penalty", want, float(fine_yuan))
    elif layout == "license_legacy":
        for i, (code, name) in enumerate(subjects):
            add({"XK_WSH": f"宁许〔2022〕{i + 1}号", "XK_XMMC": "食品经营许可", "XK_SPLB": "普通", "XK_NR": "食品销售",
                 "XK_XDR_MC": name, "XK_XDR_SHXYM": code, "XK_JDRQ": _written(days[i], i),
                 "XK_JZQ": (days[i] + dt.timedelta(days=1826)).isoformat(), "XK_XZJG": "南京市市场监督管理局",
                 "XK_ZT": "有效", "DFBM": "320100"}, "accepted", "admin_license")
    elif layout in ("list_abnormal_operation", "list_serious_dishonesty"):
        doc = "列入决定书文号" if layout == "list_abnormal_operation" else "列入严重违法失信名单决定书文号"
        reason = "列入原因" if layout == "list_abnormal_operation" else "列入严重违法失信名单原因"
        authority = "作出决定机关" if layout == "list_abnormal_operation" else "作出决定机关（列入）"
        for i, (code, name) in enumerate(subjects):
            removed = days[i] + dt.timedelta(days=200) if i % 3 == 0 else None
            add({"序号": i + 1, "企业名称": name, "统一社会信用代码": code, doc: f"宁市监异〔2024〕{i + 1}号",
                 "列入日期": _written(days[i], i), reason: "未按照规定的期限公示年度报告",
                 "移出日期": removed.isoformat() if removed else None, "移出原因": "已补报年度报告" if removed else None,
                 authority: "南京市玄武区市场监督管理局"}, "accepted", layout)
    elif layout == "list_dishonest_debtor":
        for i, (code, name) in enumerate(subjects):
            add({"被执行人姓名/名称": name, "身份证号码/组织机构代码": code, "法定代表人或者负责人姓名": "赵某",
                 "执行法院": "南京市中级人民法院", "省份": "江苏", "案号": f"（2024）苏01执{i + 1}号",
                 "立案时间": days[i].isoformat(), "失信被执行人行为具体情形": "有履行能力而拒不履行生效法律文书确定义务",
                 "发布时间": _written(days[i] + dt.timedelta(days=30), i)}, "accepted", "list_dishonest_debtor")
        for j in range(people):
            masked = ids[j][:10] + "****" + ids[j][14:]
            add({"被执行人姓名/名称": names[j], "身份证号码/组织机构代码": masked, "执行法院": "南京市玄武区人民法院",
                 "案号": f"（2024）苏0102执{j + 1}号", "发布时间": days[n + j].isoformat()}, "natural_person",
                "list_dishonest_debtor")
    elif layout == "tax_credit":
        levels = ["A", "B", "M", "C", "D"]
        for i, (code, name) in enumerate(subjects):
            level = levels[i % 5] if i % 11 != 10 else "E"
            add({"序号": i + 1, "纳税人识别号": code, "纳税人名称": name, "评价年度": 2024 - i % 2, "纳税信用级别": level,
                 "主管税务机关": "国家税务总局南京市玄武区税务局"}, "accepted" if level != "E" else "value_invalid",
                "tax_credit_rating")
    else:
        raise ValueError(f"layout {layout!r} is not one of {LAYOUTS}")
    return pd.DataFrame(rows, columns=header), pd.DataFrame(truth)


def write_table(frame: pd.DataFrame, path: Path, fmt: Format) -> Path:
    """Write ``frame`` as an office would send it; returns the path (suffix from the format)."""
    path, suffix = Path(path), _SUFFIX[fmt]
    path = path if path.suffix == suffix else path.parent / f"{path.name}{suffix}"
    text = frame.astype(object).where(frame.notna(), None)
    if fmt == "csv-gb18030":
        text.to_csv(path, index=False, encoding="gb18030")
    elif fmt == "csv-utf8-bom":
        text.to_csv(path, index=False, encoding="utf-8-sig")
    elif fmt == "xlsx":
        text.to_excel(path, index=False, engine="openpyxl")
    else:
        import xlwt  # dev-only: the .xls writer (reading .xls needs no xlwt)

        book = xlwt.Workbook(encoding="utf-8")
        sheet = book.add_sheet("Sheet1")
        for c, name in enumerate(text.columns):
            sheet.write(0, c, str(name))
        for r, values in enumerate(text.itertuples(index=False, name=None), start=1):
            for c, value in enumerate(values):
                if value is not None:
                    sheet.write(r, c, value if isinstance(value, (int, float)) else str(value))
        book.save(str(path))
    return path
