"""Names, not codes: what a person reads for a department, an industry section, a legal form, a status, a record
kind, an inspector or a time (Beijing time, to the minute). One place; the pages use these as Jinja
filters (``serving.pages``) and the downloads call them directly.

Department names come from the data directory's ``departments.csv`` (what the simulator and a
city's data office write, docs/data-contract.md); without one, from the bundled city configuration
(``simulation/cities/nanjing.toml``). Industry sections are GB/T 4754-2017's (``features.schema.INDUSTRY_SECTION_NAMES``).
"""

from __future__ import annotations

import csv
import datetime as dt
import re
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo

from features.schema import INDUSTRY_SECTION_NAMES
from serving.i18n import ALERT_RULE_NAMES, ENDPOINT_NAMES, PAGE_TEXTS, STATUS_NAMES, kind_name, page_text

BEIJING = ZoneInfo("Asia/Shanghai")  # the regulator's calendar and clock: the one zone of the service


def china_today() -> dt.date:
    """Today in China's calendar: deadlines, report dates, plan periods and warnings are counted in
    the regulator's days (from 16:00 to 24:00 UTC that is already UTC's tomorrow)."""
    return dt.datetime.now(BEIJING).date()



#: the registration's legal forms (``features.schema.LEGAL_FORMS``) as the registration names them
LEGAL_FORM_NAMES: dict[str, tuple[str, str]] = {
    "llc": ("有限责任公司", "Limited liability company"), "joint_stock": ("股份有限公司", "Joint-stock company"),
    "sole_proprietorship": ("个人独资企业", "Sole proprietorship"), "partnership": ("合伙企业", "Partnership"),
    "individual_business": ("个体工商户", "Individual business"), "farmer_coop": ("农民专业合作社", "Farmers' cooperative"),
    "branch": ("分支机构", "Branch"), "social_org": ("社会组织", "Social organisation"),
}


def _pick(names: tuple[str, str] | None, code: str, lang: str) -> str:
    if not names:
        return code
    return names[1] if lang == "en" and names[1] else names[0]


def _named(table: Mapping[str, tuple[str, str]], code: str | None, lang: str) -> str:
    """``code``'s name in ``table`` in ``lang``; an unknown code as it is, none as ""."""
    return _pick(table.get(code), code, lang) if code else ""


@lru_cache(maxsize=1)
def _city_departments() -> dict[str, tuple[str, str]]:
    from simulation.city import CityConfig

    return {d.code: (d.name_zh, d.name_en) for d in CityConfig.nanjing().departments}


@lru_cache(maxsize=16)
def _departments_file(path: str, mtime: float) -> dict[str, tuple[str, str]]:
    with open(path, encoding="utf-8-sig", newline="") as fh:
        return {row["code"]: (row.get("name_zh") or row["code"], row.get("name_en") or "")
                for row in csv.DictReader(fh) if row.get("code")}


def department_names(data_dir: str | Path | None = None) -> dict[str, tuple[str, str]]:
    """Department code → (Chinese name, English name): the data directory's ``departments.csv``
    over the bundled city's."""
    names = dict(_city_departments())
    path = Path(data_dir) / "departments.csv" if data_dir else None
    if path is not None and path.is_file():
        names.update(_departments_file(str(path), path.stat().st_mtime))
    return names


def department_name(code: str | None, lang: str = "zh", data_dir: str | Path | None = None) -> str:
    return _named(department_names(data_dir), code, lang)


def industry_name(section: str | None, lang: str = "zh") -> str:
    """``C`` → 制造业 (Manufacturing); an unknown value as it is."""
    return _named(INDUSTRY_SECTION_NAMES, section, lang)


def legal_form_name(form: str | None, lang: str = "zh") -> str:
    """``individual_business`` → 个体工商户 (Individual business); an unknown value as it is."""
    return _named(LEGAL_FORM_NAMES, form, lang)


def gate_check(check: dict, lang: str = "zh") -> tuple[str, str]:
    """(name, explanation) of one promotion-gate check (``training.gate.GateCheck.as_dict``) in
    ``lang``: the check's name and what it found against its limit; an unknown check keeps its code
    and the gate's own detail."""
    import re

    name, detail = str(check.get("name", "")), str(check.get("detail", ""))
    texts = PAGE_TEXTS["sector_report"]
    shown = page_text("sector_report", f"check_{name}", lang) if f"check_{name}" in texts else name
    template = texts.get(f"explain_{name}", {}).get(lang)
    if template is None:
        return shown, detail
    found = re.findall(r"\b([A-D]) (\d+(?:\.\d+)?)", detail.partition(";")[0])
    rates = ("、" if lang == "zh" else ", ").join(f"{g} {r}" for g, r in found)
    values = {k: check.get(k) if isinstance(check.get(k), int | float) else float("nan")
              for k in ("challenger", "champion", "limit")}
    return shown, template.format(rates=(f"：{rates}" if lang == "zh" else f": {rates}") if rates else "", **values)


# the salt-format grammar's units (``supervision.bundle.SALT_PATTERN_GRAMMAR``) and their counts
_SALT_UNIT = r"(\\d|\\.|\[[^\]]*\]|.)(?:\{([0-9]+)(?:,([0-9]+))?\})?"
_SALT_CLASSES = {" -~": ("可打印的英文字符（字母、数字、标点或空格）",
                         "printable ASCII characters (letters, digits, punctuation or spaces)"),
                 "0-9": ("数字", "digits"), "A-Z": ("大写英文字母", "capital letters"),
                 "a-z": ("小写英文字母", "small letters"), "A-Za-z": ("英文字母", "letters"),
                 "0-9A-Za-z": ("英文字母或数字", "letters or digits"), "A-Za-z0-9": ("英文字母或数字", "letters or digits")}


def _salt_unit(unit: str, lang: str) -> str:
    import re

    zh = lang != "en"
    if unit == "\\d":
        return "数字" if zh else "digit"
    if unit.startswith("["):
        inner = unit[1:-1]
        if inner in _SALT_CLASSES:
            return _pick(_SALT_CLASSES[inner], inner, lang)
        named = {"0-9": ("数字", "digits"), "A-Z": ("大写英文字母", "capital letters"), "a-z": ("小写英文字母", "small letters")}
        words = []
        for low, high, char in re.findall(r"(.)-(.)|(.)", inner):
            if low:
                words.append(_pick(named.get(f"{low}-{high}"), f"「{low}」至「{high}」" if zh else f"“{low}” to “{high}”",
                                   lang))
            else:
                words.append(_salt_unit(char, lang))
        return "或".join(words) if zh else " or ".join(words)
    char = unit[-1]
    if char == " ":
        return "空格" if zh else "a space"
    return f"「{char}」" if zh else f"“{char}”"


def salt_format(pattern: str | None, lang: str = "zh") -> str:
    """A committed salt format (docs/draw-algorithm.md §16.1) in words, never the regular
    expression: ``[ -~]{1,64}`` → 1–64 个可打印的英文字符…, ``\\d \\d \\d`` → 3 个数字，以空格分隔."""
    import re

    if not pattern:
        return ""
    zh = lang != "en"
    parts = []  # (unit, count, words)
    for unit, low, high in re.findall(_SALT_UNIT, pattern):
        count = f"{low}–{high}" if high else low
        name = _salt_unit(unit, lang)
        if not count:
            words = name
        elif unit == "\\d":
            words = f"{count} 位数字" if zh else f"{count} digit{'' if count == '1' else 's'}"
        else:
            words = f"{count} 个{name}" if zh else f"{count} {name}"
        parts.append((unit, count, words))
    units, seps = parts[0::2], parts[1::2]
    if len(parts) >= 3 and len(parts) % 2 == 1 and len(set(units)) == 1 and len(set(seps)) == 1 and not seps[0][1]:
        unit, count, one = units[0]
        sep = seps[0][2]
        if not count:
            plural = {"digit": "digits", "a space": "spaces"}.get(one, one)
            return f"{len(units)} 个{one}，以{sep}分隔" if zh else f"{len(units)} {plural} separated by {sep}"
        return f"{len(units)} 组 {one}，以{sep}分隔" if zh else f"{len(units)} groups of {one} separated by {sep}"
    if len(parts) == 1:
        return parts[0][2] if parts[0][1] or parts[0][0] != "\\d" else ("1 位数字" if zh else "1 digit")
    return ("依次为：" + "、".join(p[2] for p in parts)) if zh else "in order: " + ", ".join(p[2] for p in parts)


def alert_rule_name(rule: str | None, lang: str = "zh") -> str:
    """A monitoring alert's rule (``score_psi``, ``feature_psi`` …) by name; an unknown one as it is."""
    return _named(ALERT_RULE_NAMES, rule, lang)


def status_name(status: str | None, lang: str = "zh") -> str:
    """A plan, result, objection or repair status (``drawn``, ``published``, ``pending`` …) by name."""
    return _named(STATUS_NAMES, status, lang)


def record_kind_name(kind: str | None, lang: str = "zh") -> str:
    return kind_name(kind, lang) if kind else ""


@lru_cache(maxsize=16)
def _inspectors_file(path: str, mtime: float) -> dict[str, str]:
    with open(path, encoding="utf-8-sig", newline="") as fh:
        return {row["inspector_id"]: row.get("name") or "" for row in csv.DictReader(fh) if row.get("inspector_id")}


def inspector_names(data_dir: str | Path | None) -> dict[str, str]:
    """Inspector id → name from the data directory's ``inspectors.csv`` (empty when there is none)."""
    path = Path(data_dir) / "inspectors.csv" if data_dir else None
    if path is None or not path.is_file():
        return {}
    return _inspectors_file(str(path), path.stat().st_mtime)


def inspector_label(inspector_id: str, names: dict[str, str]) -> str:
    """``吴辉（INS000002）``: the name a person knows, the id an auditor matches."""
    name = names.get(inspector_id)
    return f"{name}（{inspector_id}）" if name else inspector_id


@lru_cache(maxsize=16)
def _items_file(path: str, mtime: float) -> dict[str, tuple[str, str]]:
    from supervision.tables import read_table

    return {str(r["item_code"]): (str(r.get("name_zh") or ""), str(r.get("name_en") or ""))
            for r in read_table(path, "items").to_dict("records") if r.get("item_code")}


def item_names(data_dir: str | Path | None) -> dict[str, tuple[str, str]]:
    """Inspection item code → (Chinese name, English name) from the data directory's ``items`` table
    (csv, parquet or jsonl, docs/data-contract.md); empty when there is none."""
    base = Path(data_dir) if data_dir else None
    path = next((base / f"items{s}" for s in (".csv", ".parquet", ".jsonl") if (base / f"items{s}").is_file()),
                None) if base is not None and base.is_dir() else None
    return _items_file(str(path), path.stat().st_mtime) if path is not None else {}


def item_label(code: str | None, lang: str = "zh", data_dir: str | Path | None = None) -> str:
    """``产品质量抽查（SAMR-03）``: the item's name, its code for whoever matches it; the code alone
    when the data directory does not name it."""
    if not code:
        return ""
    name = _pick(item_names(data_dir).get(code), "", lang)
    return f"{name}（{code}）" if name else code


_MODEL = re.compile(r"^(?:tiers-)?(general|sector-([A-T]))(?:(?:/|-v)(\d+))?(?:@(champion|challenger))?$")
_MODEL_ALIASES = {"champion": ("在用版本", "champion"), "challenger": ("候选版本", "challenger")}


def model_label(value: str | None, lang: str = "zh") -> str:
    """A model or model version by name: ``tiers-sector-C`` → 制造业行业模型, ``tiers-general/3`` →
    通用模型 第 3 版 (``general-v3`` too), ``tiers-general@champion`` → 通用模型（在用版本）;
    anything else as it is."""
    if value and ";" in value:  # a plan graded by several models names them all
        return ("；" if lang == "zh" else "; ").join(model_label(v.strip(), lang) for v in value.split(";") if v.strip())
    match = _MODEL.match(value or "")
    if not match:
        return value or ""
    kind, section, version, alias = match.groups()
    if lang == "en":
        name = "General model" if kind == "general" else f"{industry_name(section, 'en')} sector model"
        name = f"{name} v{version}" if version else name
        return f"{name} ({_MODEL_ALIASES[alias][1]})" if alias else name
    name = "通用模型" if kind == "general" else f"{industry_name(section)}行业模型"
    name = f"{name} 第 {version} 版" if version else name
    return f"{name}（{_MODEL_ALIASES[alias][0]}）" if alias else name


# Reads the service logs for itself are stored as ``code 中文`` (``self_view 本企业自查``).
_SYSTEM_PURPOSE = re.compile(r"^([a-z]+(?:_[a-z]+)+) (.*[\u4e00-\u9fff].*)$")


def purpose_text(value: str | None, lang: str = "zh") -> str:
    """A logged read's purpose as a person reads it: a system purpose (``self_view 本企业自查``) in
    ``lang``; one typed by a person as typed."""
    match = _SYSTEM_PURPOSE.match(value or "")
    if not match:
        return value or ""
    return match.group(1).replace("_", " ") if lang == "en" else match.group(2)


def endpoint_name(endpoint: str | None, lang: str = "zh") -> str:
    """What a logged read was for (``GET /api/v1/subjects/{uscc}/grade`` → 信用等级与信用记录（接口）);
    the endpoint itself stays in the log for whoever matches it."""
    if not endpoint:
        return ""
    via = ("接口", "API") if " /api/" in endpoint else ("页面", "page") if not endpoint.startswith("CLI ") else ("", "")
    for pattern, zh, en in ENDPOINT_NAMES:
        if re.search(pattern, endpoint):
            name = en if lang == "en" else zh
            break
    else:
        name = ("Other" if lang == "en" else "其他") if via[0] else endpoint
    channel = via[1] if lang == "en" else via[0]
    return f"{name} ({channel})" if lang == "en" and channel else f"{name}（{channel}）" if channel else name


def gate_check_name(name: str | None, lang: str = "zh") -> str:
    """A promotion gate check (``auc``, ``grade_monotonicity`` …) by name (the model report's words)."""
    return gate_check({"name": name or ""}, lang)[0]


def one_language(value: str | None, lang: str = "zh") -> str:
    """The half of a stored bilingual text (``中文 / English``, ``中文；English``) in ``lang``; any
    other text as it is (a committed value is shown, never changed)."""
    if not value:
        return value or ""
    for sep in (" / ", "；"):
        head, found, tail = value.partition(sep)
        if found and re.search("[\u3400-\u9fff]", head) and not re.search("[\u3400-\u9fff]", tail):
            return tail.strip() if lang == "en" else head.strip()
    return value


def beijing_minute(value: dt.datetime | dt.date | str | None) -> str:
    """A time as a person reads it: Beijing time to the minute (``2026-11-23 09:05``). A time without
    zone is UTC (how the database stores it); a date stays a date; empty stays empty."""
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
    if not isinstance(value, dt.datetime):
        return value.isoformat()
    moment = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    return moment.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M")
