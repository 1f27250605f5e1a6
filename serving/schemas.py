"""Request and response models of the API (families: ``*In``/``*Create`` in, ``*Out`` out)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal, get_args, get_type_hints

import numpy as np
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    create_model,
    field_validator,
    model_validator,
)

from features.schema import pydantic_fields, text_type
from serving.db.tables import QueryLogEntry
from serving.errors import ErrorBody
from serving.security import PASSWORD_MIN_LENGTH, Role
from serving.validation import (
    PURPOSE_LENGTH,
    USCC_PATTERN,
    CleanText,
    OptionalVisibleText,
    Uscc,
    VisibleText,
)
from supervision.bundle import DrawCommitmentV2, PublicSalt, Text
from supervision.plan import DrawCommitment, PlanCreate
from supervision.service import PlanOut
from uscc import valid_uscc_mask, why_invalid

GradeLetter = Literal["A", "B", "C", "D"]
Severity = Literal["minor", "general", "serious"]
Purpose = Field(**PURPOSE_LENGTH, description="why the data is read (查询用途), logged")


class Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


# --- auth -----------------------------------------------------------------------------------

class TokenOut(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105  (the OAuth2 token type's name, not a secret)
    expires_at: dt.datetime


class MeOut(Out):
    username: str
    role: Role
    kind: Literal["person", "machine"]
    department: str | None = None
    section: str | None = None
    uscc: str | None = None


# --- subjects and records ---------------------------------------------------------------

# The record contract's field limits are declared once (features.schema) and derived here, so a row
# ingestion accepts is a row the service accepts, and the other way round.
_SUBJECT_IN_FIELDS = ("uscc", "name", "legal_form", "industry", "district_code", "district_name", "registered_on",
                      "status", "legal_rep_name", "legal_rep_id")
_RECORD_IN_FIELDS = ("record_id", "uscc", "kind", "subkind", "severity", "decision_date", "end_date",
                     "publicity_end", "amount", "department", "document_no", "description")

SubjectIn = create_model(
    "SubjectIn", __base__=BaseModel, __doc__="A subject as the pipeline writes it into the service (data contract: "
    "subjects; limits from features.schema.SUBJECT_FIELDS).",
    **pydantic_fields("subjects", _SUBJECT_IN_FIELDS),
)


class SubjectOut(Out):
    """A subject; legal representative fields are masked unless the caller has a legal basis."""

    uscc: str
    name: str
    legal_form: str | None = None
    industry: str | None = None
    district_code: str | None = None
    district_name: str | None = None
    status: str
    legal_rep_name: str | None = None
    legal_rep_id: str | None = None
    personal_info_masked: bool = True


RecordIn = create_model(
    "RecordIn", __base__=BaseModel, __doc__="A record as the pipeline writes it (data contract: records; limits "
    "from features.schema.RECORD_FIELDS).",
    **pydantic_fields("records", _RECORD_IN_FIELDS),
)


class RecordOut(Out):
    record_id: str
    version: int
    kind: str
    subkind: str | None = None
    severity: str | None = None
    decision_date: dt.date
    end_date: dt.date | None = None
    publicity_end: dt.date | None = None
    amount: float | None = None
    department: str
    document_no: str | None = None
    description: str | None = None
    repaired: bool
    repaired_on: dt.date | None = None
    revoked: bool
    revoked_on: dt.date | None = None


# --- grades -----------------------------------------------------------------------------

class ReasonOut(BaseModel):
    """One reason behind a score: a feature's contribution and the records behind it."""

    code: str = Field(min_length=1, max_length=80)
    label_zh: str = Field(min_length=1, max_length=200)
    label_en: str | None = Field(default=None, max_length=200)
    contribution: float = Field(description="points added to (+) or taken from (−) the score")
    value: float | str | None = None
    record_ids: list[str] = Field(default_factory=list, max_length=1000)
    override: bool = Field(default=False, description="a direct-grading rule (直接判级) applied")


class WhatIfOut(BaseModel):
    """What the grade would be after one action (repair a record, keep a commitment...)."""

    action: str = Field(min_length=1, max_length=80)
    label_zh: str = Field(min_length=1, max_length=200)
    label_en: str | None = Field(default=None, max_length=200)
    record_id: str | None = None
    score: float
    grade: GradeLetter


class GradeIn(BaseModel):
    """A grade the pipeline stores (see ``serving.services.grades.store_grades``)."""

    uscc: Uscc
    as_of: dt.date
    score: float
    grade: GradeLetter
    probability: float = Field(ge=0, le=1)
    model_version: CleanText = Field(min_length=1, max_length=80)
    profile_hash: CleanText = Field(min_length=1, max_length=64)
    base_score: float | None = None
    reasons: list[ReasonOut] = Field(default_factory=list, max_length=200)
    what_if: list[WhatIfOut] = Field(default_factory=list, max_length=200)


class GradeOut(Out):
    uscc: str
    as_of: dt.date
    score: float
    grade: GradeLetter
    probability: float
    model_version: str
    profile_hash: str
    base_score: float | None = None
    reasons: list[ReasonOut]
    what_if: list[WhatIfOut]
    stale: bool
    stale_reason: str | None = None
    created_at: dt.datetime


GRADE_OUT_COLUMNS = tuple(GradeOut.model_fields)  # the stored columns a served grade is made of


class GradeBatchIn(BaseModel):
    usccs: list[Uscc] = Field(min_length=1, max_length=1000)
    purpose: VisibleText = Purpose


class GradeBatchOut(BaseModel):
    grades: list[GradeOut]
    # neither existence nor grade is revealed for these: not covered, unknown, or ungraded
    unavailable: list[str]


class SubjectGradeRow(BaseModel):
    uscc: str
    name: str
    industry: str | None
    district_name: str | None
    grade: GradeLetter | None
    score: float | None
    as_of: dt.date | None
    stale: bool | None


class SubjectPage(BaseModel):
    total: int = Field(description="covered subjects under the filters (now: read on every page)")
    items: list[SubjectGradeRow]
    next: str | None = Field(default=None, description="cursor of the next page (pass as `after`); none on the last")
    changed: bool = Field(default=False, description="列表已更新: grades changed since the riskiest-first cursor "
                          "was given; no rows, start again from the first page (never a subject twice or missed)")


# --- objections and repairs -------------------------------------------------------------

class ObjectionCreate(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True)  # blanks only: refused as empty

    record_id: CleanText = Field(min_length=1, max_length=40)
    reason: VisibleText = Field(min_length=5, max_length=2000, description="why the record is wrong")


class DecisionIn(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True)  # blanks only: refused as empty

    decision: Literal["upheld", "rejected"] = Field(description="upheld: the record is revoked")
    reason: VisibleText = Field(min_length=2, max_length=2000)


class ObjectionOut(Out):
    id: int
    uscc: str
    record_id: str
    record_version: int
    department: str
    reason: str
    filed_by: str
    filed_on: dt.date
    due_on: dt.date
    due_on_approximate: bool = Field(description="True: chinesecalendar has no data for the year; "
                                     "Monday–Friday counted instead of statutory working days")
    status: Literal["pending", "upheld", "rejected"]
    decided_by: str | None = None
    decided_on: dt.date | None = None
    decision_reason: str | None = None
    overdue: bool = False


class RepairCreate(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True)  # blanks only: refused as empty

    record_id: CleanText = Field(min_length=1, max_length=40)
    statement: VisibleText = Field(min_length=5, max_length=2000,
                           description="how the violation was corrected (整改情况)")


class RepairDecisionIn(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True)  # blanks only: refused as empty

    decision: Literal["approved", "rejected"]
    reason: VisibleText = Field(min_length=2, max_length=2000)


class RepairOut(Out):
    id: int
    uscc: str
    record_id: str
    record_version: int
    department: str
    statement: str
    applied_by: str
    applied_on: dt.date
    eligible_from: dt.date
    fee_cny: float
    status: Literal["pending", "approved", "rejected"]
    reviewer: str | None = None
    decided_on: dt.date | None = None
    decision_reason: str | None = None


class EligibilityOut(BaseModel):
    record_id: str
    eligible: bool
    eligible_from: dt.date | None
    rule: str


# --- admin, analyst, sector, health ---------------------------------------------------

class UserCreate(BaseModel):
    username: CleanText = Field(min_length=3, max_length=80, pattern=r"^[A-Za-z0-9_.@-]+$")
    # the whole policy (length, user name, guessability) is `security.password_problem`
    password: CleanText = Field(min_length=PASSWORD_MIN_LENGTH, max_length=200)
    role: Role
    department: CleanText | None = Field(default=None, min_length=1, max_length=40)
    section: CleanText | None = Field(default=None, pattern=r"^[A-T]$")
    uscc: Uscc | None = None
    display_name: CleanText | None = Field(default=None, max_length=80)


class UserUpdate(BaseModel):
    active: bool = Field(description="false: the user can no longer log in, and their access tokens and API "
                                     "keys stop working within the credential cache's TTL (10 s)")


class ApiKeyRevoked(Out):
    id: int
    name: str
    prefix: str
    revoked: bool


class UserOut(Out):
    id: int
    username: str
    role: Role
    department: str | None
    section: str | None
    uscc: str | None
    active: bool


class ApiKeyCreate(BaseModel):
    username: CleanText = Field(min_length=3, max_length=80)
    name: VisibleText = Field(min_length=1, max_length=80)


class ApiKeyOut(BaseModel):
    id: int
    name: str
    username: str
    prefix: str
    key: str = Field(description="shown once; only its hash is stored")


# a row of the query log as the admin reads it: every column of the log's table, in its order, of
# its declared type (``Mapped[T]``)
_LOG_TYPES = get_type_hints(QueryLogEntry)
QueryLogOut = create_model("QueryLogOut", __base__=Out, **{
    column.key: (get_args(_LOG_TYPES[column.key])[0], ...) for column in QueryLogEntry.__table__.columns})


class QueryLogPage(BaseModel):
    total: int
    items: list[QueryLogOut]


class ChainBreakOut(BaseModel):
    kind: Literal["missing_head", "missing_entry", "broken_link", "rewritten_row", "deleted_tail", "truncated",
                  "head_mismatch", "replaced", "bad_checkpoint"]
    seq: int | None
    detail: str


class CheckpointOut(BaseModel):
    seq: int
    mac: str
    at: str
    keyed_from: int
    signature: str
    v: int


class ChainCheckOut(BaseModel):
    ok: bool
    entries: int
    first_broken_seq: int | None = None
    problem: str | None = None
    breaks: list[ChainBreakOut] = Field(default_factory=list)
    legacy_entries: int = Field(default=0, description="chained before the keyed chain (unkeyed sha256)")
    checkpoints: int = Field(default=0, description="signed checkpoints compared")
    checkpoint: CheckpointOut | None = Field(default=None, description="the latest signed checkpoint")


class PersonalInfoOut(BaseModel):
    uscc: str
    legal_rep_name: str | None
    legal_rep_id: str | None


class AlertOut(Out):
    id: int
    severity: str
    code: str
    message: str
    model_version: str | None
    acknowledged: bool
    created_at: dt.datetime


class ModelUseOut(BaseModel):
    model_version: str
    subjects: int
    latest_as_of: dt.date


class GradeShareOut(BaseModel):
    as_of: dt.date
    grade: GradeLetter
    subjects: int


class ModelHealthOut(BaseModel):
    """One model the service regrades with: the version served and the champion it should be."""

    name: str
    alias: str
    version: int | None = Field(description="version served (the last one that loaded); None: nothing loaded")
    champion_version: int | None = Field(description="version the alias points at now; None: unknown")
    loaded_at: dt.datetime | None
    degraded: bool
    reason: str | None = None


class HealthOut(BaseModel):
    """Without an admin's credentials only ``status``; the details (reasons, schema, counts,
    model versions) are for admins."""

    status: Literal["ok", "degraded"]
    reasons: list[str] | None = None
    database: bool | None = None
    schema_revision: str | None = None
    grades: int | None = None  # subjects with a current grade
    # empty when the service does not regrade (no TIERS_STORE_DIR): it then loads no model
    models: list[ModelHealthOut] | None = None


# --- joint checks (联合奖惩) ------------------------------------------------------------------

MATTER_PATTERN = r"^[a-z][a-z0-9_]{1,39}$"
MAX_CHECK_BATCH = 10_000


class CheckedRecordOut(BaseModel):
    """A record or list entry in force behind a measure (published information; no grade)."""

    record_id: str
    kind: str
    subkind: str | None = None
    severity: str | None = None
    decision_date: dt.date
    end_date: dt.date | None = None
    department: str
    document_no: str | None = None


class MeasureOut(BaseModel):
    code: str
    type: Literal["restriction", "incentive"]
    action: Literal["block", "prompt", "benefit"] = Field(
        description="block: stop the application (自动拦截); prompt: warn the officer (自动提示); benefit: incentive")
    name_zh: str
    name_en: str
    legal_basis: list[str]
    list_entries: list[CheckedRecordOut]
    records: list[CheckedRecordOut]


class CreditCheckOut(BaseModel):
    """The measures of a matter that apply to one subject, with their basis; never its grade."""

    uscc: str
    matter: str
    matter_name_zh: str
    checked_on: dt.date
    catalogue_version: str
    found: bool = Field(description="false: no subject with this code is registered (no measures)")
    blocked: bool = Field(description="a measure with action block applies")
    measures: list[MeasureOut]


class CreditCheckBatchIn(BaseModel):
    matter: str = Field(pattern=MATTER_PATTERN, description="the matter (事项) of the measures catalogue")
    usccs: list[Annotated[str, StringConstraints(pattern=USCC_PATTERN)]] = Field(
        min_length=1, json_schema_extra={"maxItems": MAX_CHECK_BATCH},
        description=f"at most {MAX_CHECK_BATCH:,} codes; repeated codes are checked once")
    purpose: VisibleText | None = Field(default=None, **PURPOSE_LENGTH,
                                      description="查询用途 besides the matter (e.g. the project number), logged")

    @field_validator("usccs", mode="before")
    @classmethod
    def _at_most_10000(cls, value: object) -> object:
        if isinstance(value, list) and len(value) > MAX_CHECK_BATCH:
            raise ValueError(f"一次最多核查 {MAX_CHECK_BATCH} 个统一社会信用代码，本次提交了 {len(value)} 个，请分批提交；"
                             f"at most {MAX_CHECK_BATCH} codes per batch")
        return value

    @field_validator("usccs")
    @classmethod
    def _check_characters(cls, value: list[str]) -> list[str]:
        # the check characters of the whole list at once (the one USCC rule, vectorised)
        bad = np.flatnonzero(~valid_uscc_mask(value))
        if len(bad):
            first = int(bad[0])
            zh, en = why_invalid(value[first])
            raise ValueError(f"第 {first + 1} 个代码 {value[first]} 不是有效的统一社会信用代码（{zh}），共 {len(bad)} 个无效；"
                             f"usccs[{first}] is not a valid unified social credit code: {en}")
        return value


class CreditCheckBatchOut(BaseModel):
    matter: str
    checked_on: dt.date
    catalogue_version: str
    results: list[CreditCheckOut] = Field(description="one per distinct code, in the order given")


# --- commitments (信用承诺) ------------------------------------------------------------------

CommitmentStatus = Literal["pending", "kept", "broken"]


class MatterOut(BaseModel):
    code: str
    kind: str
    title: str
    department: str
    due_days: int
    template: str
    kept_when: str
    breaches: dict[str, str] = Field(description="breach code → what it is")
    public: bool = Field(description="public information (主动公示型): listed without login and in the credit "
                                     "report; a commitment of any other matter is neither")


class CommitmentSign(BaseModel):
    matter_code: str = Field(min_length=2, max_length=40, pattern=r"^[a-z0-9][a-z0-9\-]{1,39}$")


class CommitmentDecisionIn(BaseModel):
    outcome: Literal["kept", "broken"]
    basis: VisibleText = Field(min_length=4, max_length=2000, description="依据: what the department found")
    document_no: VisibleText | None = Field(default=None, min_length=2, max_length=120)
    breach: str | None = Field(default=None, max_length=40, description="the breach found (required when broken)")


class CommitmentOut(Out):
    id: int
    uscc: str
    matter_code: str
    kind: str
    title: str
    department: str
    text: str
    catalogue_version: str
    public: bool
    signed_on: dt.date
    due_on: dt.date
    status: CommitmentStatus
    breach: str | None = None
    basis: str | None = None
    document_no: str | None = None
    decided_on: dt.date | None = None
    record_id: str | None = None


class PublicCommitmentOut(BaseModel):
    """What anyone sees of a 主动公示型 commitment: who committed to what, and whether it was kept."""

    uscc: str
    name: str
    kind: str
    title: str
    text: str
    department: str
    signed_on: dt.date
    due_on: dt.date
    status: CommitmentStatus


class DepartmentCommitmentOut(CommitmentOut):
    name: str


# --- early warnings (预警) -------------------------------------------------------------------

WarningCause = Literal["serious_record", "list_entry", "grade_drop", "probability_rise", "commitment_broken"]


class WarningOut(Out):
    id: int
    uscc: str
    name: str
    cause: WarningCause
    cause_zh: str
    message: str
    record_ids: list[str]
    department: str | None = None
    status: Literal["open", "acknowledged", "closed"]
    raised_on: dt.date
    acknowledged_by: str | None = None
    closed_by: str | None = None
    close_note: str | None = None


class WarningClose(BaseModel):
    note: VisibleText = Field(min_length=2, max_length=2000, description="处理说明: what was done")


# --- credit reports (信用报告) ---------------------------------------------------------------

class IssuedReportOut(BaseModel):
    """What the issuance log says of a serial (no grade, no issuer: the public may read it)."""

    serial: str
    uscc: str
    name: str
    issued_at: dt.datetime
    valid_until: dt.date
    expired: bool
    sha256: str


class ReportVerificationOut(BaseModel):
    """The check of a report file: signature, whole-file coverage, expiry, issuance."""

    valid: bool
    signature_ok: bool
    expired: bool
    intact: bool
    trusted: bool
    whole_file: bool
    serial: str | None
    uscc: str | None
    valid_until: dt.date | None
    signed_at: str | None
    checked_on: dt.date | None
    sha256: str
    issued: bool | None
    same_file_as_issued: bool | None = None
    problems: list[str]


# --- monitoring runs (analyst) ---------------------------------------------------------------

class MonitoringRunOut(BaseModel):
    """One stored monitoring run: its dates, model and headline figures."""

    id: int
    reference_as_of: dt.date
    current_as_of: dt.date
    model_version: str | None
    n_reference: int
    n_current: int
    score_psi: float | None
    n_alerts: int
    max_severity: Literal["info", "warning", "critical"] | None
    performance_provisional: bool | None
    has_report: bool
    created_at: dt.datetime


class MonitoringRunDetail(MonitoringRunOut):
    """A run with the full result JSON (drift, grade shares, migration, performance, data health,
    alerts) — the chart data of the analyst page."""

    result: dict[str, Any]


class MonitoringAlertOut(AlertOut):
    """An alert with its evidence (observed value and threshold at least) and its run."""

    subject_of_alert: str | None
    evidence: dict[str, Any]
    monitoring_id: int | None


# --- the model registry (sector, admin) -------------------------------------------------------

class ModelVersionOut(BaseModel):
    version: int = Field(ge=1)
    aliases: list[str] = Field(description="champion / challenger")
    kind: str
    sector: str | None
    candidate: str
    validate_as_of: str | None
    metrics: dict[str, float] = Field(description="OOT AUC (with 95 % interval), Brier, ECE, KS")
    cutoffs: list[float] = Field(description="upper adverse-outcome probability of grades A, B, C")


class RegisteredModelOut(BaseModel):
    name: str
    section: str | None = Field(description="GB/T 4754 section; None for the general model")
    can_promote: bool
    champion: int | None
    challenger: int | None
    versions: list[ModelVersionOut]


class PromoteIn(BaseModel):
    reason: Annotated[VisibleText, Field(min_length=1, max_length=2000)]
    force: bool = Field(default=False, description="admin only: promote although the gate failed (audited)")


class GateCheckOut(BaseModel):
    name: str
    passed: bool
    challenger: float | None
    champion: float | None
    limit: float | None
    detail: str


class GateOut(BaseModel):
    passed: bool
    n_subjects: int
    n_bads: int
    figures: dict[str, float | None]
    checks: list[GateCheckOut]


class PromotionOut(BaseModel):
    model: str
    from_version: int | None
    to_version: int
    user: str
    reason: str
    forced: bool
    at: str
    gate: GateOut | None


class PromotionRefusedOut(BaseModel):
    """409 body: the usual error plus the gate's checks and figures."""

    error: ErrorBody
    gate: GateOut | None = None  # absent for already_champion


class PromotionAuditOut(BaseModel):
    id: int
    model_name: str
    from_version: str | None
    to_version: str
    decided_by: str
    decision: str = Field(description="promoted, refused or forced")
    reason: str
    created_at: dt.datetime
    gate: GateOut | None


# --- inspection plans (双随机一公开) ---------------------------------------------------------------

TYPED_SALT_SOURCE = "本部门第二名人员录入 / typed in by a second person of the department"


class PoolFilter(BaseModel):
    """Optional narrowing of the pool before the draw (it changes the committed pool hash)."""

    district_codes: list[Annotated[str, Field(pattern=r"^\d{6}$")]] | None = Field(default=None, max_length=50)
    industries: list[Annotated[str, Field(pattern=r"^[A-T]$")]] | None = Field(default=None, max_length=20)


class PlanCreateIn(PlanCreate):
    """A plan task: departments/items, period, grade date, policy name, optional pool filter.

    The service draws the secret seed itself (``seed_hex`` must be absent): a caller who could
    choose the seed could choose the outcome.
    """

    policy: str = Field(default="default", pattern=r"^[A-Za-z0-9_\-]{1,60}$",
                        description="name of a bundled policy table (never a path)")
    pool_filter: PoolFilter | None = None

    @field_validator("seed_hex")
    @classmethod
    def _no_caller_seed(cls, value: str | None) -> str | None:
        if value is not None:
            raise ValueError("seed_hex is drawn by the service; rule: leave it out")
        return value

    @model_validator(mode="after")
    def _period_after_grades(self) -> PlanCreateIn:
        if self.as_of > self.period_start:
            raise ValueError(f"as_of {self.as_of} is after period_start {self.period_start}; rule: grades "
                             "must be known before the period starts")
        return self


class PlanCommitIn(PlanCreateIn):
    """A tiers-draw-v2 plan task: the commitment is published at once; the draw waits for the salt."""

    salt_source: Text = Field(default=TYPED_SALT_SOURCE, description=(
        "where the public salt will come from, named before it exists (e.g. a lottery draw); by default "
        "typed in by a second regulator of the department"))
    salt_pattern: str | None = Field(default=None, max_length=200, description=(
        "the salt's exact format, committed with it (docs/draw-algorithm.md §16.1), e.g. `\\d \\d \\d` for three "
        "digits separated by spaces; required for a named source, any printable text for a typed salt"))

    @model_validator(mode="after")
    def _named_source_commits_its_format(self) -> PlanCommitIn:
        from supervision.bundle import salt_pattern_problem

        if self.salt_pattern is None and self.salt_source != TYPED_SALT_SOURCE:
            raise ValueError("指定公开来源时须同时给出其格式（salt_pattern）；a named salt source needs its salt_pattern")
        if self.salt_pattern is not None and (problem := salt_pattern_problem(self.salt_pattern)):
            raise ValueError(f"公开随机数格式不符合规则：{problem}")
        return self


class SaltIn(BaseModel):
    """The public salt, entered by a regulator of the plan's department other than its creator."""

    value: Text
    known_at: dt.datetime | None = Field(default=None, description=(
        "when the value became public (a named source's publication time, with time zone); default: now"))


class PlanSummaryOut(BaseModel):
    """A stored plan without subject-level data: commitment, revealed seed, per-grade summary."""

    id: int
    plan_id: str
    department: str
    created_by: str
    status: str
    created_at: dt.datetime
    committed_at: dt.datetime
    revealed_at: dt.datetime | None
    draw_seed_hex: str | None = Field(description="revealed after the draw")
    draw_algorithm: Literal["tiers-draw-v1", "tiers-draw-v2"]
    published_commitment: DrawCommitment | None = Field(
        description="written before the draw ran (v2: the plan's commitment summary, once drawn)")
    commitment_v2: DrawCommitmentV2 | None = Field(
        default=None, description="tiers-draw-v2: the commitment published before the salt and the draw")
    salt: PublicSalt | None = Field(default=None, description="tiers-draw-v2: the public salt, once entered")
    pool_filter: PoolFilter | None = None
    plan: PlanOut | None = Field(description="the drawn plan's summary; none while waiting for the salt")


class PlanJobOut(BaseModel):
    """A plan being made in the background (``POST /plan-jobs``): poll ``GET /plan-jobs/{job_id}``
    until ``done``; then ``plan_id`` (succeeded) or ``message`` (failed: nothing was stored)."""

    job_id: int
    status: Literal["queued", "running", "succeeded", "failed", "interrupted"]
    status_text: str = Field(description="the status in the reader's language (Chinese by default)")
    progress: float = Field(ge=0, le=1)
    percent: int = Field(ge=0, le=100)
    stage: str = Field(description="the step under way, in the reader's language")
    plan_name: str = Field(description="the plan_id the request gave")
    done: bool
    created_at: dt.datetime
    updated_at: dt.datetime
    plan_id: int | None = Field(description="the plan's id in the service, once made")
    plan_url: str | None = Field(description="the plan's page, once made")
    api_plan_url: str | None = Field(description="the plan in the API, once made")
    message: str | None = Field(description="why no plan was made (failed or interrupted)")


class VisitOut(BaseModel):
    visit_order: int
    uscc: str
    name: str = Field(description="masked for individual businesses (a person's name)")
    district_code: str
    district_name: str
    grade: str = Field(description="internal: grades are never published")
    items: list[str]
    departments: list[str]
    inspectors: list[str]
    unstaffed: list[str]


class ResultOut(BaseModel):
    uscc: str
    inspection_item: str
    department: str
    outcome: Literal["no_problem", "corrected", "case_opened"]
    inspected_on: dt.date
    published_on: dt.date | None
    publication_deadline: dt.date
    publication_status: Literal["published", "published_late", "pending", "overdue"]
    record_id: str
    version: int = Field(description="1, then one more per correction; results are never overwritten")
    superseded: bool = Field(description="a later version corrects this one (which stays as it was)")
    correction_reason: str = Field(description="why this version corrects the previous one")
    document_no: str = Field(default="", description="the inspection's document number (文书号), as published")


class PlanDetailOut(PlanSummaryOut):
    """A plan with its visit list (each listed subject is a logged read) and its results."""

    visits: list[VisitOut]
    results: list[ResultOut]


# a result becomes an inspection record: its texts have the record schema's limits (features.schema)
_ItemCode = text_type("records", "inspection_item", min_length=1)
_DocumentNo = text_type("records", "document_no")
_Description = text_type("records", "description")


class ResultIn(BaseModel):
    uscc: Uscc
    inspection_item: _ItemCode
    inspected_on: dt.date
    outcome: Literal["no_problem", "corrected", "case_opened"]
    document_no: _DocumentNo = ""
    description: _Description = ""
    published_on: dt.date | None = None
    correction_reason: Annotated[OptionalVisibleText, Field(max_length=500, description=(
        "更正理由: required when the visit already has a different result (it becomes a new version)"))] = ""

    @model_validator(mode="after")
    def _published_after_inspection(self) -> ResultIn:
        if self.published_on is not None and self.published_on < self.inspected_on:
            raise ValueError(f"published_on {self.published_on} is before inspected_on {self.inspected_on}")
        return self


class ResultsIn(BaseModel):
    results: list[ResultIn] = Field(min_length=1, max_length=5000)
