"""Feature metadata, in one place: labels (zh/en), source record kinds, monotone direction and
why, actionability, and what a missing value means.

``models`` cannot import ``features``; ``training`` passes :func:`specs_table` or the specs along.
Reason templates turn a contribution into a sentence a subject understands (no decayed weights
or codes in it). Monotone direction: +1 = more of it never lowers risk, -1 = more of it never raises risk, 0 = no
constraint. ``model_input`` False marks columns kept for reports only (fairness: see reasons).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import pandas as pd


@dataclass(frozen=True)
class FeatureSpec:
    name: str
    label_zh: str
    label_en: str
    source_kinds: tuple[str, ...]
    monotone: int
    reason: str
    actionable: bool = False
    model_input: bool = True
    categorical: bool = False
    missing_meaning: str | None = None
    # Reason sentences shown to the subject (models.FeatureMeta): {value}, {effect} (raises or
    # lowers the credit risk), {yes_no} and {percent}; None = the generic "<label> is <value>" sentence.
    template_zh: str | None = None
    template_en: str | None = None
    # The sentence for a missing value (what missing means, e.g. "no commitment fell due"); None =
    # "<label>: no data".
    missing_zh: str | None = None
    missing_en: str | None = None


_NEG = "a further counted negative record is more evidence of risk (过惩相当: weight by severity)"
_POS = "verified positive behaviour is evidence against risk; it must never raise a score"
_RATE = "a higher share of failures is more evidence of risk"
_CHECK = ("a check (行政检查) is a neutral record, not a finding; departments choose whom to check, so as a model "
          "input it would grade subjects worse for having been checked (a feedback loop they cannot act on, "
          "against 过惩相当): report only")
_ARREARS = ("a missed tax, social-insurance or utility payment is a breach of an obligation; settling it ends "
            "the open debt, not the record, which counts for 36 months unless exempted (force majeure) or repaired")

_KIND_LABELS = {
    "penalty": ("行政处罚", "administrative penalties", ("admin_penalty",), True),
    "enforcement": ("行政强制", "administrative enforcement", ("admin_enforcement",), False),
    "commitment_broken": ("违背信用承诺", "broken commitments", ("commitment_broken",), True),
    "inspection_problem": ("抽查发现问题", "inspections with problems", ("inspection",), False),
    "complaint": ("投诉举报", "complaints and reports", ("complaint",), False),
}


def _windowed() -> list[FeatureSpec]:
    specs = []
    for key, (zh, en, kinds, actionable) in _KIND_LABELS.items():
        for months in (12, 36):
            specs.append(FeatureSpec(f"n_{key}_{months}m", f"近{months}个月{zh}次数", f"{en} in last {months} months",
                                     kinds, +1, _NEG, actionable,
                                     template_zh=f"近{months}个月有{{value}}次{zh}计入评价，{{effect}}",
                                     template_en=f"{en[:1].upper()}{en[1:]} of the last {months} months still counted: {{value}}; this {{effect}}"))
            specs.append(FeatureSpec(f"w_{key}_{months}m", f"近{months}个月{zh}衰减权重",
                                     f"decayed weight of {en} in last {months} months", kinds, +1,
                                     _NEG + "; older records weigh less", actionable,
                                     template_zh=f"近{months}个月的{zh}（越近的记录影响越大），{{effect}}",
                                     template_en=f"The {en} of the last {months} months (recent ones weigh more): "
                                                 "this {effect}"))
    return specs


_ARREARS_TYPES = (
    ("tax", "欠缴税款", "tax arrears"),
    ("social_insurance", "欠缴社会保险费", "social insurance arrears"),
    ("utility", "欠缴水电气费", "water, power and gas arrears"),
)


def _arrears_by_type() -> list[FeatureSpec]:
    # kinds apart: tax and social-insurance arrears follow general risk, utility arrears mostly
    # operations (hygiene) risk, which matters in some sectors only
    return [FeatureSpec(f"n_arrears_{key}_{months}m", f"近{months}个月{zh}笔数(含已结清)",
                        f"{en} incurred in last {months} months (settled or not)", ("arrears",), +1, _ARREARS,
                        template_zh=f"近{months}个月有{{value}}笔{zh}（含已结清），{{effect}}",
                        template_en=f"{en[:1].upper()}{en[1:]} in the last {months} months, settled or not: {{value}}; this {{effect}}")
            for key, zh, en in _ARREARS_TYPES for months in (12, 36)]


_LISTS = (
    ("list_serious_dishonesty", "严重失信主体名单", "serious dishonesty list"),
    ("list_key_attention", "重点关注对象名单", "key attention list"),
    ("list_abnormal_operation", "经营异常名录", "abnormal operation list"),
    ("list_dishonest_debtor", "失信被执行人名单", "dishonest judgment debtor list"),
)

FEATURE_SPECS: tuple[FeatureSpec, ...] = (
    *_windowed(),
    FeatureSpec("n_serious_penalty_36m", "近36个月严重行政处罚次数", "serious penalties in last 36 months",
                ("admin_penalty",), +1, _NEG, True, template_zh="近36个月有{value}次严重行政处罚仍计入评价，{effect}",
                template_en="Serious penalties of the last 36 months still counted: {value}; this {effect}"),
    FeatureSpec("n_minor_penalty_12m", "近12个月计入评价的轻微行政处罚次数",
                "minor penalties counted in last 12 months", ("admin_penalty",), +1,
                _NEG + "; kept apart from general ones because the lumped weight hides how often minors recur", True,
                template_zh="近12个月有{value}次轻微行政处罚计入评价，{effect}",
                template_en="Minor penalties of the last 12 months counted: {value}; this {effect}"),
    FeatureSpec("n_general_penalty_12m", "近12个月公示期内一般行政处罚次数",
                "general penalties still counted (in their publicity period) in last 12 months", ("admin_penalty",),
                +1, _NEG, True, template_zh="近12个月有{value}次一般行政处罚仍在公示期内，{effect}",
                template_en="General penalties of the last 12 months still in their publicity period: {value}; this {effect}"),
    FeatureSpec("n_list_entry_36m", "近36个月列入名单次数", "list entries in last 36 months",
                tuple(k for k, _, _ in _LISTS), +1, _NEG, True, template_zh="近36个月列入且仍在列的名单{value}项，{effect}",
                template_en="List entries of the last 36 months still in force: {value}; this {effect}"),
    FeatureSpec("w_list_active", "在列名单衰减权重", "decayed weight of active list memberships",
                tuple(k for k, _, _ in _LISTS), +1, _NEG, True, template_zh="目前仍在名单中（列入越近影响越大），{effect}",
                template_en="Current list memberships (recent ones weigh more): this {effect}"),
    FeatureSpec("max_penalty_severity", "在公示期内最高处罚等级(0无1轻微2一般3严重)",
                "highest severity of counted penalties (0 none, 1 minor, 2 general, 3 serious)",
                ("admin_penalty",), +1, "a more severe counted penalty is more evidence of risk", True,
                template_zh="仍计入评价的处罚中最重为{value}级（1轻微、2一般、3严重），{effect}",
                template_en="The most severe penalty still counted is level {value} (1 minor, 2 general, 3 serious): "
                            "this {effect}"),
    FeatureSpec("days_since_last_negative", "距最近一次失信记录天数", "days since the last counted negative record",
                ("admin_penalty", "admin_enforcement", "commitment_broken", "inspection", "complaint", "arrears",
                 *(k for k, _, _ in _LISTS)), -1, "a longer clean period is evidence of reform",
                missing_meaning="no counted negative record at all (best case, not unknown)",
                template_zh="距最近一次计入评价的失信记录已有{value}天，{effect}",
                template_en="Days since the last counted negative record: {value}; this {effect}",
                missing_zh="没有计入评价的失信记录，{effect}", missing_en="No counted negative record: this {effect}"),
    FeatureSpec("fines_36m", "近36个月罚没金额(元)", "fines in last 36 months (CNY)", ("admin_penalty",), +1,
                "larger fines follow graver violations", True, template_zh="近36个月仍计入评价的处罚罚没金额{value}元，{effect}",
                template_en="Fines of the penalties of the last 36 months still counted: CNY {value}; this {effect}"),
    FeatureSpec("commitment_breach_rate", "信用承诺违背率", "share of resolved commitments broken (36 months)",
                ("commitment_kept", "commitment_broken"), +1, _RATE, True,
                missing_meaning="no commitment resolved in 36 months",
                template_zh="近36个月到期的信用承诺中违背的比例为{percent}，{effect}",
                template_en="Share of the commitments due in the last 36 months that were broken: {percent}; this {effect}",
                missing_zh="近36个月没有到期的信用承诺，{effect}",
                missing_en="No commitment fell due in the last 36 months: this {effect}"),
    FeatureSpec("inspection_failure_rate", "双随机抽查问题发现率", "share of inspections finding a problem (36 months)",
                ("inspection",), +1, _RATE, missing_meaning="not inspected in 36 months",
                template_zh="近36个月双随机抽查发现问题的比例为{percent}，{effect}",
                template_en="Share of inspections in the last 36 months that found a problem: {percent}; this {effect}",
                missing_zh="近36个月未被双随机抽查，{effect}", missing_en="Not inspected in the last 36 months: this {effect}"),
    FeatureSpec("n_inspection_36m", "近36个月被抽查次数", "inspections in last 36 months", ("inspection",), 0,
                "being drawn is random (双随机), not evidence either way", template_zh="近36个月被双随机抽查{value}次，{effect}",
                template_en="Random inspections in the last 36 months: {value}; this {effect}"),
    FeatureSpec("n_admin_check_12m", "近12个月行政检查次数", "administrative checks in last 12 months",
                ("admin_check",), 0, _CHECK, model_input=False),
    FeatureSpec("n_admin_check_36m", "近36个月行政检查次数", "administrative checks in last 36 months",
                ("admin_check",), 0, _CHECK, model_input=False),
    *(FeatureSpec(f"on_{k}", f"当前在{zh}", f"currently on the {en}", (k,), +1,
                  "an active list membership is a legal finding of dishonesty or risk", True,
                  template_zh=f"目前列入{zh}：{{yes_no}}，{{effect}}", template_en=f"Currently on the {en}: {{yes_no}}; this {{effect}}")
      for k, zh, en in _LISTS),
    FeatureSpec("n_repaired_36m", "近36个月已修复记录数", "records repaired in last 36 months", ("repair",), 0,
                "repaired records must not count against the subject (宁信用〔2021〕1号); report only", model_input=False),
    FeatureSpec("n_exempted_36m", "近36个月豁免记录数", "exempted records in last 36 months",
                ("admin_penalty", "commitment_broken", "inspection"), 0,
                "exempted records (豁免清单) must never count against the subject; report only", model_input=False),
    FeatureSpec("n_arrears_unsettled", "未结清欠缴笔数", "unsettled arrears (count)", ("arrears",), +1,
                "unpaid tax, social insurance or utilities signal financial distress", True,
                template_zh="尚有{value}笔欠缴未结清，{effect}", template_en="Arrears still unpaid: {value}; this {effect}"),
    FeatureSpec("amount_arrears_unsettled", "未结清欠缴金额(元)", "unsettled arrears (CNY)", ("arrears",), +1,
                "more owed is more distress", True, template_zh="未结清欠缴金额{value}元，{effect}",
                template_en="Arrears still unpaid: CNY {value}; this {effect}"),
    *_arrears_by_type(),
    FeatureSpec("n_reward_36m", "近36个月行政奖励次数", "administrative rewards in last 36 months",
                ("admin_reward",), -1, _POS, template_zh="近36个月获得行政奖励{value}次，{effect}",
                template_en="Administrative rewards in the last 36 months: {value}; this {effect}"),
    FeatureSpec("n_self_declared_verified_36m", "近36个月经核实的自主申报数",
                "verified self-declared items in last 36 months", ("self_declared",), -1, _POS,
                template_zh="近36个月经核实的自主申报{value}项，{effect}",
                template_en="Verified self-declared items in the last 36 months: {value}; this {effect}"),
    FeatureSpec("n_commitment_kept_36m", "近36个月履行承诺次数", "commitments kept in last 36 months",
                ("commitment_kept",), -1, _POS, template_zh="近36个月履行信用承诺{value}次，{effect}",
                template_en="Commitments kept in the last 36 months: {value}; this {effect}"),
    FeatureSpec("age_years", "成立年限(年)", "age (years since registration)", (), 0,
                "not constrained: youth is not a violation, and a subject cannot act on it",
                template_zh="成立{value}年，{effect}", template_en="Years since registration: {value}; this {effect}"),
    FeatureSpec("registered_capital", "注册资本(万元)", "registered capital (10k CNY)", (), 0,
                "size is context, not conduct", missing_meaning="not reported", template_zh="注册资本{value}万元，{effect}",
                template_en="Registered capital of {value} × 10,000 CNY: this {effect}",
                missing_zh="未报送注册资本，{effect}", missing_en="Registered capital not reported: this {effect}"),
    FeatureSpec("employees", "从业人数", "employees", (), 0, "size is context, not conduct",
                missing_meaning="not reported", template_zh="从业人数{value}人，{effect}",
                template_en="Employees: {value}; this {effect}",
                missing_zh="未报送从业人数，{effect}", missing_en="Employees not reported: this {effect}"),
    FeatureSpec("industry", "行业门类(GB/T 4754)", "industry section (GB/T 4754-2017)", (), 0,
                "categorical; sector models (专用) handle sector differences", categorical=True,
                template_zh="所属行业门类为{value}，{effect}", template_en="Industry section {value}: this {effect}"),
    FeatureSpec("district_code", "所属区", "district", (), 0,
                "where a subject is located must not change its grade; report only", model_input=False,
                categorical=True),
    FeatureSpec("n_records_36m", "近36个月记录总数", "records of any kind in last 36 months", (), 0,
                "data coverage, not conduct", template_zh="近36个月共有{value}条信用记录，{effect}",
                template_en="Credit records of any kind in the last 36 months: {value}; this {effect}"),
    FeatureSpec("thin_file", "数据覆盖不足", "thin file (few records or under one year old)", (), 0,
                "data coverage, not conduct: flags where a score rests on little evidence",
                template_zh="数据覆盖不足（记录少或成立不满一年）：{yes_no}，{effect}",
                template_en="Thin file (few records or under one year old): {yes_no}; this {effect}"),
)

FEATURES_BY_NAME: dict[str, FeatureSpec] = {s.name: s for s in FEATURE_SPECS}


def model_features() -> list[str]:
    """Names of the features models may use, in profile column order."""
    return [s.name for s in FEATURE_SPECS if s.model_input]


def monotone_constraints(names: list[str] | None = None) -> dict[str, int]:
    """``{feature: direction}`` for ``names`` (default: the model features)."""
    names = names or model_features()
    return {n: FEATURES_BY_NAME[n].monotone for n in names}


def specs_table() -> pd.DataFrame:
    """FEATURE_SPECS as a frame (plain data, so training can hand it to models and reports)."""
    return pd.DataFrame([asdict(s) for s in FEATURE_SPECS])
