"""The controlled vocabularies of docs/data-contract.md (kinds, subkinds, severities, exemptions)."""

from __future__ import annotations

LEGAL_FORMS = (
    "llc", "joint_stock", "sole_proprietorship", "partnership", "individual_business", "farmer_coop",
    "branch", "social_org",
)

KINDS = (
    "admin_license", "admin_penalty", "admin_enforcement", "admin_confirmation", "admin_levy",
    "admin_payment", "admin_adjudication", "admin_compensation", "admin_reward", "admin_check",
    "list_serious_dishonesty", "list_key_attention", "list_abnormal_operation", "list_dishonest_debtor",
    "commitment_made", "commitment_kept", "commitment_broken", "self_declared", "arrears", "inspection",
    "complaint", "repair", "revocation",
)
KIND_INDEX = {k: i for i, k in enumerate(KINDS)}

#: kinds whose records need a legal basis document number (the † of the contract)
DOC_REQUIRED = frozenset({
    "admin_penalty", "admin_enforcement", "admin_adjudication", "list_serious_dishonesty", "list_key_attention",
    "list_abnormal_operation", "list_dishonest_debtor", "commitment_broken", "repair", "revocation",
})
#: kinds that carry a document number although the contract does not require one
DOC_OPTIONAL = frozenset({
    "admin_license", "admin_confirmation", "admin_levy", "admin_payment", "admin_compensation", "admin_reward",
    "admin_check", "inspection",
})
#: the character for the act in a document number (宁市监罚〔2024〕123号)
DOC_ACT = {
    "admin_license": "许", "admin_penalty": "罚", "admin_enforcement": "强", "admin_confirmation": "确",
    "admin_levy": "征", "admin_payment": "给", "admin_adjudication": "裁", "admin_compensation": "补",
    "admin_reward": "奖", "admin_check": "查", "list_serious_dishonesty": "失信", "list_key_attention": "关注",
    "list_abnormal_operation": "异", "list_dishonest_debtor": "执", "commitment_broken": "诺",
    "inspection": "抽", "repair": "修", "revocation": "撤",
}

SUBKINDS = (
    "", "application", "repair", "industry", "qualification", "contract_performance", "public_welfare", "tax",
    "social_insurance", "water", "power", "gas", "no_problem", "corrected", "case_opened", "complaint", "report",
    "court", "department", "objection",
)
SUBKIND_INDEX = {k: i for i, k in enumerate(SUBKINDS)}

SEVERITIES = ("", "minor", "general", "serious")
EXEMPTIONS = ("", "force_majeure", "minor_person", "first_minor_unintentional")

#: the kinds that count as an adverse outcome (labels of the contract), for reference in docs and tests
ADVERSE_DEFINITION = (
    "inspection with subkind corrected or case_opened; admin_penalty with severity serious; "
    "entry on list_serious_dishonesty; entry on list_abnormal_operation"
)

#: short Chinese descriptions per (kind, subkind, severity); several variants each
DESCRIPTIONS: dict[tuple[str, str, str], tuple[str, ...]] = {
    ("admin_license", "", ""): ("准予行政许可", "换发许可证", "许可事项变更"),
    # department-neutral wording: the issuing department is in `department`
    ("admin_penalty", "", "minor"): ("轻微违法行为，予以警告", "违法行为轻微，责令改正并警告"),
    ("admin_penalty", "", "general"): ("违反行政管理规定，罚款", "未依法履行法定义务，罚款并责令改正"),
    ("admin_penalty", "", "serious"): ("违法行为情节严重，从重处罚", "造成严重社会危害，从重处罚并公示"),
    ("admin_enforcement", "", ""): ("查封扣押涉案物品", "冻结存款"),
    ("admin_confirmation", "", ""): ("确认资质等级", "确认工伤"),
    ("admin_levy", "", ""): ("依法征收税费", "征收行政事业性收费"),
    ("admin_payment", "", ""): ("发放稳岗补贴", "发放就业补贴"),
    ("admin_adjudication", "", ""): ("裁决权属争议", "裁决侵权纠纷"),
    ("admin_compensation", "", ""): ("房屋征收补偿", "道路拆迁补偿"),
    ("admin_reward", "", ""): ("授予守合同重信用企业称号", "表彰纳税信用A级"),
    ("admin_check", "", ""): ("日常监督检查，未见异常", "专项检查"),
    ("list_serious_dishonesty", "", ""): ("列入严重失信主体名单",),
    ("list_key_attention", "", ""): ("列入重点关注对象名单",),
    ("list_abnormal_operation", "", ""): ("未按规定报送年度报告，列入经营异常名录", "通过登记的住所无法联系，列入经营异常名录"),
    ("list_dishonest_debtor", "", ""): ("有履行能力而拒不履行生效法律文书确定义务",),
    ("commitment_made", "application", ""): ("告知承诺制审批承诺",),
    ("commitment_made", "repair", ""): ("信用修复承诺",),
    ("commitment_made", "industry", ""): ("行业自律承诺",),
    ("commitment_kept", "", ""): ("按期履行信用承诺",),
    ("commitment_broken", "", ""): ("未履行信用承诺",),
    ("self_declared", "qualification", ""): ("申报资质证照信息",),
    ("self_declared", "contract_performance", ""): ("申报合同履约信息",),
    ("self_declared", "public_welfare", ""): ("申报社会公益信息",),
    ("arrears", "tax", ""): ("欠缴税款",),
    ("arrears", "social_insurance", ""): ("欠缴社会保险费",),
    ("arrears", "water", ""): ("欠缴水费",),
    ("arrears", "power", ""): ("欠缴电费",),
    ("arrears", "gas", ""): ("欠缴燃气费",),
    ("inspection", "no_problem", ""): ("双随机抽查未发现问题",),
    ("inspection", "corrected", ""): ("双随机抽查发现问题，已责令改正",),
    ("inspection", "case_opened", ""): ("双随机抽查发现问题，已立案查处",),
    ("complaint", "complaint", ""): ("消费者投诉", "服务质量投诉"),
    ("complaint", "report", ""): ("群众举报违法经营", "举报环境污染"),
    ("repair", "", ""): ("完成信用修复，停止公示",),
    ("revocation", "court", ""): ("原行政决定被人民法院判决撤销",),
    ("revocation", "department", ""): ("原决定机关撤销原行政决定",),
    ("revocation", "objection", ""): ("异议成立，更正信用记录",),
}
DESCRIPTION_TEXTS: tuple[str, ...] = tuple(t for v in DESCRIPTIONS.values() for t in v)
