"""The record contract (docs/data-contract.md) in one place: columns, field limits, quarantine rules.

Every boundary that writes subjects or records derives its checks from the declarations here:
ingestion's vectorised checks (:mod:`features.ingest`) and the service's pydantic models
(``serving.schemas.RecordIn`` / ``SubjectIn``, through :func:`pydantic_fields`). A row one of them
accepts the other accepts too (``tests/features/test_feat_record_schema.py``).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import AfterValidator, BeforeValidator, Field, StringConstraints

from uscc import is_valid_uscc

SUBJECT_COLUMNS: tuple[str, ...] = (
    "uscc", "name", "legal_form", "industry", "district_code", "district_name", "registered_on",
    "registered_capital", "employees", "status", "status_date", "legal_rep_name", "legal_rep_id",
)
RECORD_COLUMNS: tuple[str, ...] = (
    "record_id", "uscc", "kind", "subkind", "severity", "decision_date", "end_date", "publicity_end",
    "amount", "department", "document_no", "ref_record_id", "verified", "verified_on", "exemption",
    "inspection_item", "description",
)
SUBJECT_DATE_COLUMNS = ("registered_on", "status_date")
RECORD_DATE_COLUMNS = ("decision_date", "end_date", "publicity_end", "verified_on")

# Columns the store adds to every stored row.
STORE_COLUMNS = ("version", "content_hash", "ingested_at", "batch_id", "source_file", "source_row")

# Quarantine rules in priority order: a row breaking several is reported under the first.
# Why this order: a row that cannot be split has no fields to judge; a natural person's row is set
# aside before anything of it is looked at (its personal data are not kept); undecodable or control
# text makes every other field suspect; a repeated id is rejected before its content is judged (the
# first occurrence carries the record); identity (uscc) comes before what the row says; then
# catalogue, dates, amounts, legal basis, then the plain field limits.
RULES: tuple[str, ...] = (
    "row_malformed",
    "field_count",
    "totals_row",
    "natural_person",
    "text_encoding",
    "control_character",
    "duplicate_record_id",
    "uscc_legacy_registration_number",
    "uscc_invalid",
    "unknown_subject",
    "kind_unknown",
    "severity_underivable",
    "severity_invalid",
    "date_invalid",
    "date_in_future",
    "date_order",
    "amount_negative",
    "amount_out_of_range",
    "legal_basis_missing",
    "field_missing",
    "text_too_long",
    "value_invalid",
    "ref_other_subject",  # judged on the file's accepted rows, against the store and the batch: last
)
# The contract's dirt table (docs/data-contract.md): the rules the simulator's dirt breaks.
CONTRACT_RULES = frozenset({
    "text_encoding", "duplicate_record_id", "uscc_invalid", "unknown_subject", "kind_unknown", "severity_invalid",
    "date_invalid", "date_in_future", "date_order", "amount_negative", "legal_basis_missing",
})

# What each rule means, for the person reading the quarantine (Chinese first, English available).
RULE_TEXT: dict[str, tuple[str, str]] = {
    "row_malformed": ("无法拆分为字段（引号不成对或引号后多余字符）", "cannot be split into fields (unbalanced quote or text after a closing quote)"),
    "field_count": ("字段个数与表头不符", "number of fields differs from the header"),
    "totals_row": ("合计/小计/总计行，不是一条记录", "a totals row (合计/小计/总计), not a record"),
    "natural_person": ("涉及自然人，个人信息不入库", "about a natural person: personal data are not stored"),
    "text_encoding": ("文字编码无效（非 UTF-8/GB18030 字节或替换字符）", "text is not valid in the file's encoding"),
    "control_character": ("含控制字符", "contains a control character"),
    "duplicate_record_id": ("编号在本文件前面已出现", "key already appeared in an earlier row of this file"),
    "uscc_invalid": ("统一社会信用代码无效（GB 32100-2015）", "not a valid unified social credit code (GB 32100-2015)"),
    "unknown_subject": ("主体不在本批或库中", "no such subject in this batch or in the store"),
    "ref_other_subject": ("关联记录编号指向另一主体的记录（修复/撤销只能针对本主体的记录）",
                          "ref_record_id points at a record of another subject (a repair or revocation is of "
                          "the subject's own record)"),
    "kind_unknown": ("记录类别不在目录中", "record kind is not in the catalogue"),
    "severity_invalid": ("情节等级缺失或无效", "severity missing or not one of minor/general/serious"),
    "severity_underivable": ("无法从处罚类别推定情节等级", "severity cannot be derived from the penalty type"),
    "date_invalid": ("日期无效", "not a real calendar date"),
    "date_in_future": ("日期晚于入库日期", "date is after the ingestion date"),
    "date_order": ("日期先后顺序错误", "dates out of order"),
    "uscc_legacy_registration_number": ("15 位工商注册号，不是统一社会信用代码",
                                        "a 15-digit business registration number, not a USCC"),
    "amount_negative": ("金额为负", "amount is negative"),
    "amount_out_of_range": ("数值不是有限数或超出范围", "number is not finite or out of range"),
    "legal_basis_missing": ("缺少法律依据文书号", "legal-basis document number missing"),
    "field_missing": ("必填字段为空", "required field is empty"),
    "text_too_long": ("文字超过最大长度", "text longer than the maximum"),
    "value_invalid": ("取值无效", "value not allowed"),
}

QUARANTINE_COLUMNS = ("file", "row", "line", "key", "field", "value", "rule", "message", "message_en")

LEGAL_FORMS = frozenset(
    {"llc", "joint_stock", "sole_proprietorship", "partnership", "individual_business", "farmer_coop",
     "branch", "social_org"}
)
SUBJECT_STATUSES = frozenset({"active", "deregistered", "revoked"})
SEVERITY_VALUES = ("minor", "general", "serious")
# GB/T 4754-2017 sections by name, (Chinese, English): the one map (pages, downloads, messages)
INDUSTRY_SECTION_NAMES: dict[str, tuple[str, str]] = {
    "A": ("农林牧渔业", "Agriculture, forestry, animal husbandry and fishery"), "B": ("采矿业", "Mining"),
    "C": ("制造业", "Manufacturing"), "D": ("电力热力燃气及水生产和供应业", "Electricity, heat, gas and water supply"),
    "E": ("建筑业", "Construction"), "F": ("批发和零售业", "Wholesale and retail trade"),
    "G": ("交通运输仓储和邮政业", "Transport, storage and post"), "H": ("住宿和餐饮业", "Accommodation and catering"),
    "I": ("信息传输软件和信息技术服务业", "Information transmission, software and IT services"),
    "J": ("金融业", "Finance"), "K": ("房地产业", "Real estate"), "L": ("租赁和商务服务业", "Leasing and business services"),
    "M": ("科学研究和技术服务业", "Scientific research and technical services"),
    "N": ("水利环境和公共设施管理业", "Water conservancy, environment and public facilities"),
    "O": ("居民服务修理和其他服务业", "Resident, repair and other services"), "P": ("教育", "Education"),
    "Q": ("卫生和社会工作", "Health and social work"), "R": ("文化体育和娱乐业", "Culture, sports and entertainment"),
    "S": ("公共管理社会保障和社会组织", "Public administration, social security and social organisations"),
    "T": ("国际组织", "International organisations"),
}
INDUSTRY_SECTIONS = tuple(INDUSTRY_SECTION_NAMES)

# The largest amount a record may carry, in yuan: 10 万亿 (1e13), a thousand times the largest fine
# ever imposed in China (18.228 billion yuan, 2021), and small enough that the store's amount in
# cents (BIGINT, current state) can never overflow (1e15 < 9.2e18).
AMOUNT_MAX = 1e13
EMPLOYEES_MAX = 10_000_000

# Control characters: C0 (tab, newline and carriage return allowed only in multi-line text), DEL and
# C1. Invisible, and NUL cannot be stored by PostgreSQL.
_CONTROL_SINGLE_LINE = "\x00-\x1f\x7f-\x9f"
_CONTROL_MULTI_LINE = "\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f"


def control_pattern(multiline: bool) -> str:
    """The regular expression (one character class) of the control characters a text field refuses."""
    return f"[{_CONTROL_MULTI_LINE if multiline else _CONTROL_SINGLE_LINE}]"


@dataclass(frozen=True)
class FieldRule:
    """The limits of one contract column, declared once for every boundary.

    ``kind``: text, date, number (finite, within [minimum, maximum]), integer, flag (true/false) or
    uscc. ``allowed``: the only values a text may take. ``multiline``: tab and newlines allowed.
    """

    name: str
    kind: Literal["text", "uscc", "date", "number", "integer", "flag"] = "text"
    required: bool = False
    max_length: int | None = None
    allowed: tuple[str, ...] | None = None
    pattern: str | None = None
    multiline: bool = False
    minimum: float | None = None
    maximum: float | None = None
    default: str | None = None  # what a missing value means (the service fills it in)


def _rules(*rules: FieldRule) -> dict[str, FieldRule]:
    return {r.name: r for r in rules}


# The service stores record_id, kind, subkind and department in VARCHAR(40), document_no in 120.
RECORD_FIELDS: dict[str, FieldRule] = _rules(
    FieldRule("record_id", required=True, max_length=40),
    FieldRule("uscc", "uscc", required=True, max_length=18),
    FieldRule("kind", required=True, max_length=40),
    FieldRule("subkind", max_length=40),
    FieldRule("severity", allowed=SEVERITY_VALUES),
    FieldRule("decision_date", "date", required=True),
    FieldRule("end_date", "date"),
    FieldRule("publicity_end", "date"),
    FieldRule("amount", "number", minimum=0.0, maximum=AMOUNT_MAX),
    FieldRule("department", required=True, max_length=40),
    FieldRule("document_no", max_length=120),
    FieldRule("ref_record_id", max_length=40),
    FieldRule("verified", "flag"),
    FieldRule("verified_on", "date"),
    FieldRule("exemption", max_length=40),
    FieldRule("inspection_item", max_length=40),
    FieldRule("description", max_length=2000, multiline=True),
)
SUBJECT_FIELDS: dict[str, FieldRule] = _rules(
    FieldRule("uscc", "uscc", required=True, max_length=18),
    FieldRule("name", required=True, max_length=200),
    FieldRule("legal_form", allowed=tuple(sorted(LEGAL_FORMS))),
    FieldRule("industry", required=True, allowed=INDUSTRY_SECTIONS),
    FieldRule("district_code", pattern=r"^[0-9]{6}$", max_length=6),
    FieldRule("district_name", max_length=40),
    FieldRule("registered_on", "date", required=True),
    FieldRule("registered_capital", "number", minimum=0.0, maximum=AMOUNT_MAX),  # 万元
    FieldRule("employees", "integer", minimum=0, maximum=EMPLOYEES_MAX),
    FieldRule("status", allowed=tuple(sorted(SUBJECT_STATUSES)), default="active"),
    FieldRule("status_date", "date"),
    FieldRule("legal_rep_name", max_length=60),
    FieldRule("legal_rep_id", max_length=18),
)
if tuple(RECORD_FIELDS) != RECORD_COLUMNS or tuple(SUBJECT_FIELDS) != SUBJECT_COLUMNS:
    # a check, not an assert: it must hold under `python -O` too (ruff S101)
    raise RuntimeError("features.schema: the field rules must list the contract's columns in order")
# Every field as a person calls it, (Chinese, English): the contract's columns (every Chinese ingest
# message names a field by its label; the identifier follows in brackets only where a message quotes
# it for support) and the service's form fields (its validation messages). One map: the service imports it.
FIELD_LABELS: dict[str, tuple[str, str]] = {
    "record_id": ("记录编号", "Record"), "uscc": ("统一社会信用代码", "Unified social credit code"),
    "kind": ("记录类别", "Record kind"), "subkind": ("记录子类", "Record subkind"),
    "severity": ("情节等级", "Severity"), "decision_date": ("决定日期", "Decision date"),
    "end_date": ("结束日期", "End date"), "publicity_end": ("公示截止日期", "Publicity ends"),
    "amount": ("金额（元）", "Amount (yuan)"), "department": ("部门", "Department"),
    "document_no": ("文书号", "Document no."), "ref_record_id": ("关联记录编号", "Related record"),
    "verified": ("是否核实", "Verified"), "verified_on": ("核实日期", "Verified on"),
    "exemption": ("免罚情形", "Exemption"), "inspection_item": ("抽查事项", "Inspection item"),
    "description": ("说明", "Description"), "name": ("名称", "Name"), "legal_form": ("组织形式", "Legal form"),
    "industry": ("行业门类", "Industry section"), "district_code": ("行政区划代码", "District code"),
    "district_name": ("行政区划名称", "District"), "registered_on": ("成立日期", "Registered on"),
    "registered_capital": ("注册资本（万元）", "Registered capital (10k yuan)"),
    "employees": ("从业人数", "Employees"), "status": ("登记状态", "Status"),
    "status_date": ("状态变更日期", "Status date"), "legal_rep_name": ("法定代表人姓名", "Legal representative"),
    "legal_rep_id": ("法定代表人证件号", "Legal representative's ID"),
    # the service's forms
    "username": ("用户名", "Username"), "password": ("密码", "Password"),
    "reason": ("理由", "Reason"), "statement": ("整改情况说明", "Corrective measures"),
    "decision": ("处理结果", "Decision"), "purpose": ("查询用途", "Purpose"),
    "plan_id": ("计划编号", "Plan id"), "period_start": ("检查期开始", "Period start"),
    "period_end": ("检查期结束", "Period end"), "as_of": ("等级基准日", "Grades as of"),
    "items": ("抽查事项", "Inspection items"), "tasks": ("抽查事项", "Inspection items"),
    "district_codes": ("限定区县", "Districts"), "salt_source": ("公开随机数来源", "Public salt source"),
    "salt_pattern": ("公开随机数格式", "Salt format"), "value": ("公开随机数", "Public salt"),
    "salt": ("公开随机数", "Public salt"), "known_at": ("随机数公布时间", "Published at"),
    "inspected_on": ("检查日期", "Inspected on"), "published_on": ("公示日期", "Published on"),
    "outcome": ("检查结果", "Outcome"), "correction_reason": ("更正理由", "Correction reason"),
    "basis": ("认定依据", "Basis"), "note": ("处理说明", "Note"), "breach": ("违约情形", "Breach"), "grade": ("信用等级", "Grade"), "role": ("角色", "Role"), "section": ("行业门类", "Industry section"),
    "limit": ("每页条数", "Page size"), "offset": ("起始位置", "Offset"), "csrf_token": ("表单校验码", "Form token"),
}
# the contract's columns in Chinese (ingest's messages)
FIELD_LABELS_ZH: dict[str, str] = {name: FIELD_LABELS[name][0] for name in (*RECORD_COLUMNS, *SUBJECT_COLUMNS)}
SEVERITY_NAMES_ZH: dict[str, str] = {"minor": "轻微", "general": "一般", "serious": "严重"}
# a bare identifier (not quoted in brackets), with the space that set it apart from Chinese text
_FIELD_IDENTIFIER = re.compile(
    r"(?:(?<=[\u4e00-\u9fff]) )?(?<![A-Za-z0-9_（(])(" + "|".join(sorted(FIELD_LABELS_ZH, key=len, reverse=True))
    + r")(?![A-Za-z0-9_）)])(?: (?=[\u4e00-\u9fff]))?")


def in_clerks_words(message_zh: str) -> str:
    """``message_zh`` with each bare contract identifier replaced by its Chinese label (``status_date 早于
    registered_on`` → ``状态变更日期早于成立日期``); identifiers quoted in brackets stay."""
    return _FIELD_IDENTIFIER.sub(lambda m: FIELD_LABELS_ZH[m.group(1)], message_zh)


# Personal information (DOMAIN §4): never shown in the quarantine, whatever rule the row broke.
PERSONAL_FIELDS = frozenset({"legal_rep_name", "legal_rep_id"})
SUBJECT_REQUIRED = tuple(n for n, r in SUBJECT_FIELDS.items() if r.required)
RECORD_REQUIRED = tuple(n for n, r in RECORD_FIELDS.items() if r.required)


class Verdict:
    """First failing rule per row, in :data:`RULES` priority order (rules may be added in any order).

    ``message`` holds the English detail, ``message_zh`` the Chinese one (the rule's text by default).
    """

    def __init__(self, n: int) -> None:
        self.rank = np.full(n, len(RULES), dtype=np.int16)
        self.field = np.empty(n, dtype=object)
        self.message = np.empty(n, dtype=object)  # English detail
        self.message_zh = np.empty(n, dtype=object)

    def add(self, rule: str, mask: np.ndarray | Any, field_name: str | np.ndarray, message: str | np.ndarray,
            message_zh: str | np.ndarray | None = None) -> None:
        mask = np.asarray(mask, dtype=bool)
        rank = RULES.index(rule)
        take = mask & (rank < self.rank)
        if not take.any():
            return
        self.rank[take] = rank
        self.field[take] = field_name if isinstance(field_name, str) else np.asarray(field_name)[take]
        self.message[take] = message if isinstance(message, str) else np.asarray(message)[take]
        zh = RULE_TEXT[rule][0] if message_zh is None else message_zh
        self.message_zh[take] = in_clerks_words(zh) if isinstance(zh, str) else \
            [in_clerks_words(z) for z in np.asarray(zh)[take]]

    @property
    def rejected(self) -> np.ndarray:
        return self.rank < len(RULES)


# --------------------------------------------------------------------------------------------
# the same limits as pydantic types (the service's request and load models)
# --------------------------------------------------------------------------------------------
def _no_control(multiline: bool):
    pattern = re.compile(control_pattern(multiline))

    def check(value: str) -> str:
        if pattern.search(value):
            raise ValueError("must not contain control characters (rule control_character)")
        return value

    return check


def _valid_uscc(value: str) -> str:
    if not is_valid_uscc(value):
        raise ValueError("not a valid unified social credit code (GB 32100-2015; rule uscc_invalid)")
    return value


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("must be a finite number (rule amount_out_of_range)")
    return value


def pydantic_type(rule: FieldRule) -> Any:
    """The pydantic annotation that accepts exactly what ingestion accepts for this column."""
    import datetime as dt

    if rule.kind == "date":
        base: Any = dt.date
    elif rule.kind == "flag":
        base = bool
    elif rule.kind in ("number", "integer"):
        number = float if rule.kind == "number" else int
        base = Annotated[number, Field(ge=rule.minimum, le=rule.maximum, allow_inf_nan=False),
                         AfterValidator(_finite)]
    elif rule.allowed is not None:
        base = Literal[rule.allowed]  # type: ignore[valid-type]
    else:
        base = Annotated[str, StringConstraints(min_length=1, max_length=rule.max_length, pattern=rule.pattern),
                         AfterValidator(_no_control(rule.multiline))]
        if rule.kind == "uscc":
            base = Annotated[base, AfterValidator(_valid_uscc)]
    if rule.required:
        return base
    if rule.default is not None:
        return Annotated[base, BeforeValidator(lambda v: rule.default if v is None or v == "" else v)]
    # ingestion reads an empty field as missing: so does the service
    return Annotated[base | None, BeforeValidator(_empty_is_missing)]


def _empty_is_missing(value: Any) -> Any:
    return None if isinstance(value, str) and value == "" else value


def text_type(table: Literal["records", "subjects"], name: str, *, min_length: int = 0) -> Any:
    """A column's text limits (length, control characters) as a plain ``str`` annotation, for request
    models that keep an empty string for "none" (e.g. an inspection result's document number)."""
    rule = (RECORD_FIELDS if table == "records" else SUBJECT_FIELDS)[name]
    return Annotated[str, StringConstraints(min_length=min_length, max_length=rule.max_length, pattern=rule.pattern),
                     AfterValidator(_no_control(rule.multiline))]


def pydantic_fields(table: Literal["records", "subjects"], names: tuple[str, ...]) -> dict[str, Any]:
    """``{name: (annotation, default)}`` for :func:`pydantic.create_model`: required columns have no default."""
    rules = RECORD_FIELDS if table == "records" else SUBJECT_FIELDS
    return {n: (pydantic_type(rules[n]), ... if rules[n].required else rules[n].default) for n in names}
