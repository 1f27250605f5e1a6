"""Typed SQLAlchemy models of the operational store (SQLite by default, PostgreSQL by URL).

The schema is owned by the Alembic migrations in ``serving/migrations``; these models must
match them (``tests/serving/test_srv_db.py`` checks that autogenerate finds no difference).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, object_session


class UtcDateTime(TypeDecorator[dt.datetime]):
    """Timezone-aware UTC timestamps on every backend (SQLite returns naive datetimes)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC) if value is not None else None

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return value


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Base(DeclarativeBase):
    """Declarative base of the operational store."""


# Column groups that several tables share, declared once. ``sort_order`` keeps each table's columns
# in the order its migration created them: the key first, then a request's record, the table's own
# columns, and the time a row was written last.

class SurrogateKey:
    """An autoincrementing integer ``id`` as the primary key (rows that have no natural key)."""

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True, sort_order=-2)


class CreatedAt:
    """``created_at``: when the row was written (UTC), set on insert."""

    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow, sort_order=1)


class RecordRequest:
    """What an objection or a repair application is about: a subject's record, in the version the
    request was filed against, and the department that decides it."""

    uscc: Mapped[str] = mapped_column(ForeignKey("subjects.uscc"), index=True, sort_order=-1)
    record_id: Mapped[str] = mapped_column(String(40), sort_order=-1)
    record_version: Mapped[int] = mapped_column(Integer, sort_order=-1)
    department: Mapped[str] = mapped_column(String(40), index=True, sort_order=-1)


class Subject(Base):
    __tablename__ = "subjects"
    # the lists' key orders (by name, by USCC) under each filter they offer, ending in the USCC the
    # pages break ties by (migration 0018); on PostgreSQL the search ranges' byte order
    __table_args__ = (Index("ix_subjects_name_uscc", "name", "uscc"),
                      Index("ix_subjects_district_uscc", "district_code", "uscc"),
                      Index("ix_subjects_district_name_uscc", "district_code", "name", "uscc"),
                      Index("ix_subjects_industry_uscc", "industry", "uscc"),
                      Index("ix_subjects_industry_name_uscc", "industry", "name", "uscc"),
                      # (the collation given as the "ops" alembic compares: ``uscc COLLATE "C"``)
                      Index("ix_subjects_uscc_c", "uscc", postgresql_ops={"uscc": 'COLLATE "C"'}
                            ).ddl_if(dialect="postgresql"),
                      Index("ix_subjects_name_c", "name", postgresql_ops={"name": 'COLLATE "C"'}
                            ).ddl_if(dialect="postgresql"))

    uscc: Mapped[str] = mapped_column(String(18), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), index=True)  # the lists' search by name prefix
    legal_form: Mapped[str | None] = mapped_column(String(40))
    industry: Mapped[str | None] = mapped_column(String(1), index=True)
    district_code: Mapped[str | None] = mapped_column(String(6), index=True)
    district_name: Mapped[str | None] = mapped_column(String(40))
    registered_on: Mapped[dt.date | None] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(20), default="active")
    # personal information: masked in every response unless the role has a legal basis
    legal_rep_name: Mapped[str | None] = mapped_column(String(60))
    legal_rep_id: Mapped[str | None] = mapped_column(String(18))
    updated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow)


class Record(SurrogateKey, CreatedAt, Base):
    """One version of a public credit record; a change (revocation, repair) is a new version."""

    __tablename__ = "records"
    __table_args__ = (
        UniqueConstraint("record_id", "version", name="uq_records_record_version"),
        Index("ix_records_uscc_current", "uscc", "is_current"),
    )

    record_id: Mapped[str] = mapped_column(String(40), index=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    is_current: Mapped[bool] = mapped_column(Boolean, default=True)
    uscc: Mapped[str] = mapped_column(ForeignKey("subjects.uscc"))
    kind: Mapped[str] = mapped_column(String(40))
    subkind: Mapped[str | None] = mapped_column(String(40))
    severity: Mapped[str | None] = mapped_column(String(10))
    decision_date: Mapped[dt.date] = mapped_column(Date)
    end_date: Mapped[dt.date | None] = mapped_column(Date)
    publicity_end: Mapped[dt.date | None] = mapped_column(Date)
    amount: Mapped[float | None] = mapped_column(Float)
    department: Mapped[str] = mapped_column(String(40), index=True)
    document_no: Mapped[str | None] = mapped_column(String(120))
    description: Mapped[str | None] = mapped_column(Text)
    repaired: Mapped[bool] = mapped_column(Boolean, default=False)
    repaired_on: Mapped[dt.date | None] = mapped_column(Date)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)
    revoked_on: Mapped[dt.date | None] = mapped_column(Date)
    change_reason: Mapped[str | None] = mapped_column(String(200))


class Grade(SurrogateKey, CreatedAt, Base):
    """A grade of one subject as of a date, reproducible from (model_version, profile_hash)."""

    __tablename__ = "grades"
    __table_args__ = (
        # also the index of a subject's grades by (uscc) and (uscc, as_of): a second one only cost
        # every stored grade one more insertion (migration 0014)
        UniqueConstraint("uscc", "as_of", "model_version", name="uq_grades_subject_asof_model"),
        Index("ix_grades_as_of", "as_of"),  # a plan's grades of one as-of date; retention
    )

    uscc: Mapped[str] = mapped_column(ForeignKey("subjects.uscc"))
    as_of: Mapped[dt.date] = mapped_column(Date)
    score: Mapped[float] = mapped_column(Float)
    grade: Mapped[str] = mapped_column(String(1))
    probability: Mapped[float] = mapped_column(Float)
    model_version: Mapped[str] = mapped_column(String(80))
    profile_hash: Mapped[str] = mapped_column(String(64))
    base_score: Mapped[float | None] = mapped_column(Float)
    # the column ``reasons`` as stored: compact (``serving.db.reason_labels``; the labels in
    # reason_labels) or, stored before migration 0020, each reason with its labels. Read and
    # written as ``reasons``.
    stored_reasons: Mapped[list[Any]] = mapped_column("reasons", JSON, default=list)
    what_if: Mapped[list[Any]] = mapped_column(JSON, default=list)
    # set when a record behind the grade changed (objection upheld, repair) until regraded
    stale: Mapped[bool] = mapped_column(Boolean, default=False)
    stale_reason: Mapped[str | None] = mapped_column(String(200))

    @property
    def reasons(self) -> list[Any]:
        """The reasons as ``ReasonOut`` dumps them (labels included), whichever form they are stored
        in; the labels of compact ones read in the row's session (once per stored value)."""
        from serving.db.reason_labels import expand, is_compact

        stored = self.stored_reasons
        if not is_compact(stored):
            return stored
        read = self.__dict__.get("_reasons_read")
        if read is None or read[0] is not stored:
            session = object_session(self)
            if session is None:
                raise RuntimeError("a grade's compact reasons are read in its session (the labels are in the database)")
            read = (stored, expand(session.connection(), [stored])[0])
            self.__dict__["_reasons_read"] = read
        return read[1]

    @reasons.setter
    def reasons(self, value: list[Any]) -> None:
        """Stored compactly when the row is in a session (else as given: a form that reads too)."""
        from serving.db.reason_labels import compact

        session = object_session(self)
        self.stored_reasons = compact(session.connection(), [value])[0] if session is not None and value else value


class ReasonLabel(Base):
    """A reason's labels (code, both languages' sentences), stored once for every grade that gives
    it (``serving.db.reason_labels``, migration 0020): never changed or deleted. ``digest`` is the
    key of the three texts (BLAKE2b, 128 bits)."""

    __tablename__ = "reason_labels"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    digest: Mapped[str] = mapped_column(String(32), unique=True)
    code: Mapped[str] = mapped_column(String(80))
    label_zh: Mapped[str] = mapped_column(String(200))
    label_en: Mapped[str | None] = mapped_column(String(200))


class CurrentGrade(Base):
    """The latest grade of each subject, kept as data (``serving.services.grades``): the row of
    ``grades`` ordered last by (as_of, created_at, id), named by its unique key. Maintained in the
    transaction that stores grades, so reads and lists never rank the whole grades table. Carries
    the list's ordering and filter columns (grade, score; the subject's industry and district) so
    every list page is an index range scan; and the subject's name, so that a search riskiest
    first reads one table (``serving.services.subject_lists``, migration 0021): its matches of one
    grade letter by the searched key (``ix_current_grades_*_search``), or the rank index in order."""

    __tablename__ = "current_grades"
    __table_args__ = (
        # (PostgreSQL: the name included, so a search walking a letter in rank order tests it on the
        # index alone; else its planner sorted the whole letter on the covering search index)
        Index("ix_current_grades_rank", "grade", "score", "uscc", postgresql_include=["name"]),
        Index("ix_current_grades_industry_rank", "industry", "grade", "score", "uscc"),
        Index("ix_current_grades_district_rank", "district_code", "grade", "score", "uscc"),
        # a search's matches of one letter, by key range, then their (score, uscc) sorted; on
        # PostgreSQL the key in byte order, as the search ranges compare (serving.db.byte_order)
        Index("ix_current_grades_name_search", "grade", "name", "score", "uscc",
              postgresql_ops={"name": 'COLLATE "C"'}),
        Index("ix_current_grades_uscc_search", "grade", "uscc", "score",
              postgresql_ops={"uscc": 'COLLATE "C"'}),
    )

    uscc: Mapped[str] = mapped_column(ForeignKey("subjects.uscc"), primary_key=True)
    as_of: Mapped[dt.date] = mapped_column(Date)
    model_version: Mapped[str] = mapped_column(String(80))
    grade: Mapped[str] = mapped_column(String(1))
    score: Mapped[float] = mapped_column(Float)
    industry: Mapped[str | None] = mapped_column(String(1))
    district_code: Mapped[str | None] = mapped_column(String(6))
    name: Mapped[str | None] = mapped_column(String(200))  # the subject's (renamed with it)


class CreditCheckBasis(Base):
    """What the joint checks (联合奖惩, ``serving.services.credit_checks``) cite for one subject: its
    records in force on ``as_of`` (``features.evidence.records_in_force``, the catalogue's one rule),
    kept so that a check is one indexed read. Valid while ``as_of`` is today, ``records_stamp``
    is still the highest id of the subject's record rows (every change of a record is a new row)
    and ``policy_version`` is the catalogue policy's for the subject's section; else recomputed."""

    __tablename__ = "credit_check_basis"

    uscc: Mapped[str] = mapped_column(ForeignKey("subjects.uscc"), primary_key=True)
    as_of: Mapped[dt.date] = mapped_column(Date)
    records_stamp: Mapped[int] = mapped_column(Integer, default=0)
    policy_version: Mapped[str] = mapped_column(String(80))
    # [{record_id, kind, subkind, severity, decision_date, end_date, department, document_no, polarity}]
    entries: Mapped[str] = mapped_column(Text, default="[]")
    computed_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow)


class ListCountsHead(Base):
    """Single row: the generation of the kept list totals (``serving.services.list_counts``),
    advanced by every change to what the lists count."""

    __tablename__ = "list_counts_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    generation: Mapped[int] = mapped_column(Integer, default=0)


class ListCount(Base):
    """The total of one list (coverage and filters), counted at ``generation``."""

    __tablename__ = "list_counts"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    generation: Mapped[int] = mapped_column(Integer)
    total: Mapped[int] = mapped_column(Integer)


class SubjectTally(Base):
    """How many subjects a list of a reader who covers every subject holds, per (district, section):
    ``grade`` ``*`` counts every subject (kept by triggers on ``subjects``, migration 0016), a
    letter the current grades of that letter (kept where current grades are written,
    ``serving.services.list_counts.tally_current``). No or an empty district or section is ``''``."""

    __tablename__ = "subject_tallies"

    district_code: Mapped[str] = mapped_column(String(6), primary_key=True)
    industry: Mapped[str] = mapped_column(String(1), primary_key=True)
    grade: Mapped[str] = mapped_column(String(1), primary_key=True)
    subjects: Mapped[int] = mapped_column(Integer, default=0)


class BulkLoad(Base):
    """A bulk load into the service (``serving.services.bulk``): the batches committed so far, so
    an interrupted load resumes after the last one instead of writing a row twice."""

    __tablename__ = "bulk_loads"

    load_id: Mapped[str] = mapped_column(String(80), primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    rows_done: Mapped[int] = mapped_column(Integer, default=0)
    finished: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow)


class Plan(SurrogateKey, CreatedAt, Base):
    __tablename__ = "plans"

    name: Mapped[str] = mapped_column(String(200))
    department: Mapped[str] = mapped_column(String(40), index=True)
    created_by: Mapped[str] = mapped_column(String(80))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(20), default="draft")


class Draw(SurrogateKey, Base):
    """A verifiable draw: the seed is committed (hash) before it is revealed."""

    __tablename__ = "draws"

    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id"), index=True)
    draw_seed_commitment: Mapped[str] = mapped_column(String(64))
    draw_seed: Mapped[str | None] = mapped_column(String(128))
    inputs_hash: Mapped[str | None] = mapped_column(String(64))
    # (deferred: a city's plan is 100+ MB of JSON; a listing reads ``head``)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, deferred=True)
    head: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # what a listing shows (plans.draw_head)
    committed_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow)
    revealed_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())


class InspectionResult(SurrogateKey, CreatedAt, Base):
    __tablename__ = "inspection_results"

    draw_id: Mapped[int | None] = mapped_column(ForeignKey("draws.id"))
    uscc: Mapped[str] = mapped_column(ForeignKey("subjects.uscc"), index=True)
    inspection_item: Mapped[str] = mapped_column(String(40))
    outcome: Mapped[str] = mapped_column(String(20))
    inspected_on: Mapped[dt.date] = mapped_column(Date)
    published_on: Mapped[dt.date | None] = mapped_column(Date)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Objection(SurrogateKey, RecordRequest, CreatedAt, Base):
    __tablename__ = "objections"

    reason: Mapped[str] = mapped_column(Text)
    filed_by: Mapped[str] = mapped_column(String(80))
    filed_on: Mapped[dt.date] = mapped_column(Date)
    due_on: Mapped[dt.date] = mapped_column(Date)
    # True when chinesecalendar did not cover the year and Monday–Friday was used instead
    due_on_approximate: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(20), default="pending")
    decided_by: Mapped[str | None] = mapped_column(String(80))
    decided_on: Mapped[dt.date | None] = mapped_column(Date)
    decision_reason: Mapped[str | None] = mapped_column(Text)


class RepairApplication(SurrogateKey, RecordRequest, CreatedAt, Base):
    __tablename__ = "repair_applications"

    statement: Mapped[str] = mapped_column(Text)
    applied_by: Mapped[str] = mapped_column(String(80))
    applied_on: Mapped[dt.date] = mapped_column(Date)
    eligible_from: Mapped[dt.date] = mapped_column(Date)
    # repair is free of charge by rule; stored so an audit can show it
    fee_cny: Mapped[float] = mapped_column(Float, default=0.0)
    status: Mapped[str] = mapped_column(String(20), default="pending")
    reviewer: Mapped[str | None] = mapped_column(String(80))
    decided_on: Mapped[dt.date | None] = mapped_column(Date)
    decision_reason: Mapped[str | None] = mapped_column(Text)


class User(SurrogateKey, CreatedAt, Base):
    __tablename__ = "users"

    username: Mapped[str] = mapped_column(String(80), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))
    # exactly one scope per role: department (regulator), section (sector), uscc (enterprise)
    department: Mapped[str | None] = mapped_column(String(40))
    section: Mapped[str | None] = mapped_column(String(1))
    uscc: Mapped[str | None] = mapped_column(String(18))
    display_name: Mapped[str | None] = mapped_column(String(80))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # access tokens issued before this are refused (set on deactivation, so reactivating a user
    # does not bring back tokens that may have leaked meanwhile)
    sessions_valid_after: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())


class ApiKey(SurrogateKey, CreatedAt, Base):
    __tablename__ = "api_keys"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    name: Mapped[str] = mapped_column(String(80))
    prefix: Mapped[str] = mapped_column(String(12), unique=True)
    key_hash: Mapped[str] = mapped_column(String(64))
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)


class LoginAttempt(SurrogateKey, Base):
    """Login tries, kept in the database so the limits hold across workers
    (``serving.services.logins``): ``pending`` while the password is checked, then ``failed`` or
    ``succeeded`` (successes mark the addresses an account is known to log in from)."""

    __tablename__ = "login_attempts"
    __table_args__ = (Index("ix_login_attempts_user_at", "username", "attempted_at"),
                      Index("ix_login_attempts_ip_at", "client_ip", "attempted_at"),
                      Index("ix_login_attempts_at", "attempted_at"))

    username: Mapped[str] = mapped_column(String(80))
    client_ip: Mapped[str] = mapped_column(String(64))  # the address key (an IPv6 /64 as a network)
    attempted_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow)
    outcome: Mapped[str] = mapped_column(String(10), default="failed", server_default="failed")


class RateEvent(SurrogateKey, Base):
    """One costly request by one user (``serving.services.rates``), refused or not, kept an hour
    so that the limits hold across workers."""

    __tablename__ = "rate_events"
    __table_args__ = (Index("ix_rate_events_action_actor_at", "action", "actor", "at"),)

    action: Mapped[str] = mapped_column(String(40))
    actor: Mapped[str] = mapped_column(String(80))
    at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow)


class RevokedToken(Base):
    """Access tokens ended before their expiry (logout): refused by every worker within the
    credential cache's TTL. Rows past ``expires_at`` no longer matter and are purged on insert."""

    __tablename__ = "revoked_tokens"

    token_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    username: Mapped[str] = mapped_column(String(80))
    expires_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), index=True)
    revoked_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow)


class PromotionAudit(SurrogateKey, CreatedAt, Base):
    __tablename__ = "promotion_audit"

    model_name: Mapped[str] = mapped_column(String(120))
    from_version: Mapped[str | None] = mapped_column(String(80))
    to_version: Mapped[str] = mapped_column(String(80))
    decided_by: Mapped[str] = mapped_column(String(80))
    decision: Mapped[str] = mapped_column(String(20))
    evidence: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Job(SurrogateKey, Base):
    """Work that outlives its request, run in the background (``serving.services.jobs``): its
    progress (0–1, a stage), then its outcome or why not. ``kind``: ``sector_fit`` (a sector
    department's uploaded labelled file fitted into a registered model version,
    ``serving.services.sector_fit``) or ``plan`` (an inspection plan for a pool too big to draw
    inside a request, ``serving.services.plan_jobs``)."""

    __tablename__ = "fit_jobs"  # (named for its first kind)
    __table_args__ = (Index("ix_fit_jobs_section", "section", "id"),
                      Index("ix_fit_jobs_kind_department", "kind", "department", "id"))

    kind: Mapped[str] = mapped_column(String(20), default="sector_fit", server_default="sector_fit")
    requested_by: Mapped[str] = mapped_column(String(80))
    status: Mapped[str] = mapped_column(String(20), default="queued")  # queued | running | succeeded | failed
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    stage: Mapped[str] = mapped_column(String(200), default="")
    message: Mapped[str | None] = mapped_column(Text)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow)  # (not CreatedAt: before updated_at)
    updated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow)
    # sector fits
    section: Mapped[str | None] = mapped_column(String(1))
    file_name: Mapped[str | None] = mapped_column(String(200))
    rows: Mapped[int | None] = mapped_column(Integer)
    model_name: Mapped[str | None] = mapped_column(String(120))
    version: Mapped[int | None] = mapped_column(Integer)
    # plans
    department: Mapped[str | None] = mapped_column(String(40))
    request: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    plan_id: Mapped[int | None] = mapped_column(Integer)


FitJob = Job  # the name of its first kind


class MonitoringResult(SurrogateKey, CreatedAt, Base):
    __tablename__ = "monitoring_results"

    kind: Mapped[str] = mapped_column(String(40))
    as_of: Mapped[dt.date] = mapped_column(Date)
    model_version: Mapped[str | None] = mapped_column(String(80))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Alert(SurrogateKey, CreatedAt, Base):
    __tablename__ = "alerts"

    severity: Mapped[str] = mapped_column(String(10))
    code: Mapped[str] = mapped_column(String(60))
    message: Mapped[str] = mapped_column(Text)
    model_version: Mapped[str | None] = mapped_column(String(80))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    acknowledged: Mapped[bool] = mapped_column(Boolean, default=False)


class QueryLogHead(Base):
    """Single row serialising appends to the query log (its UPDATE takes the write lock)."""

    __tablename__ = "query_log_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, default=0)
    last_hash: Mapped[str] = mapped_column(String(64))
    # the first entry chained with the HMAC key; those before it (written before migration 0003)
    # keep the unkeyed sha256 chain. Signed into every checkpoint, so it cannot be moved unseen.
    keyed_from: Mapped[int] = mapped_column(Integer, default=1, server_default="1")


class QueryLogEntry(Base):
    """查询使用登记: one read of a subject's credit data; hash-chained to the previous entry."""

    __tablename__ = "query_log"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    actor: Mapped[str] = mapped_column(String(80), index=True)
    actor_role: Mapped[str] = mapped_column(String(20))
    actor_kind: Mapped[str] = mapped_column(String(10))  # person | machine
    uscc: Mapped[str] = mapped_column(String(18), index=True)
    purpose: Mapped[str] = mapped_column(String(200))
    endpoint: Mapped[str] = mapped_column(String(200))
    outcome: Mapped[str] = mapped_column(String(10))  # allowed | denied
    personal_info_unmasked: Mapped[bool] = mapped_column(Boolean, default=False)
    prev_hash: Mapped[str] = mapped_column(String(64))
    entry_hash: Mapped[str] = mapped_column(String(64))


class QueryLogOffer(Base):
    """A group offered between workers (``serving.services.querylog_spool``) and chained: recorded
    in the transaction that chains it, so that a copy of the offer is never chained again. Pruned
    once older than twice an offer's lifetime (an older offer is refused anyway)."""

    __tablename__ = "query_log_offers"

    group_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    made_at: Mapped[float] = mapped_column(Float, index=True)  # the offer's time.time()


class CreditReport(SurrogateKey, Base):
    """One issued credit report (公共信用信息报告, ``serving.services.credit_reports``): who issued
    which report of which subject, when, until when it is valid, and the SHA-256 of the signed file,
    so that a verification can say whether a serial was issued and whether a file is the one issued."""

    __tablename__ = "credit_reports"

    serial: Mapped[str] = mapped_column(String(40), unique=True)
    uscc: Mapped[str] = mapped_column(ForeignKey("subjects.uscc"), index=True)
    issuer: Mapped[str] = mapped_column(String(80))
    issued_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow)
    valid_until: Mapped[dt.date] = mapped_column(Date)
    sha256: Mapped[str] = mapped_column(String(64))


class Commitment(SurrogateKey, CreatedAt, Base):
    """信用承诺: a commitment an enterprise signed from the catalogue (``features.commitments``),
    its text as signed, and the department's finding: kept or broken, with its basis and the
    record the finding wrote into the credit file. ``open_key`` is set while pending, so a subject
    holds at most one pending commitment per matter."""

    __tablename__ = "commitments"
    __table_args__ = (Index("ix_commitments_department_status", "department", "status", "due_on"),
                      Index("ix_commitments_public", "public", "signed_on"))

    uscc: Mapped[str] = mapped_column(ForeignKey("subjects.uscc"), index=True)
    matter_code: Mapped[str] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(10))
    title: Mapped[str] = mapped_column(String(100))
    department: Mapped[str] = mapped_column(String(40))
    text: Mapped[str] = mapped_column(Text)
    catalogue_version: Mapped[str] = mapped_column(String(60))
    public: Mapped[bool] = mapped_column(Boolean, default=False)
    signed_by: Mapped[str] = mapped_column(String(80))
    signed_on: Mapped[dt.date] = mapped_column(Date)
    due_on: Mapped[dt.date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(20), default="pending")
    breach: Mapped[str | None] = mapped_column(String(40))
    basis: Mapped[str | None] = mapped_column(Text)
    document_no: Mapped[str | None] = mapped_column(String(120))
    decided_by: Mapped[str | None] = mapped_column(String(80))
    decided_on: Mapped[dt.date | None] = mapped_column(Date)
    record_id: Mapped[str | None] = mapped_column(String(40))
    open_key: Mapped[str | None] = mapped_column(String(80), unique=True)


class RiskWarning(SurrogateKey, Base):
    """预警: a rise in a subject's risk (``supervision.warnings``), with its cause and the records
    behind it, shown to the staff who cover the subject. ``open_key`` (uscc:cause) is set until the
    warning is closed, so a subject has at most one open warning per cause."""

    __tablename__ = "risk_warnings"
    # the list's pages by key, newest first (serving.services.warning_lists; migration 0017)
    __table_args__ = (Index("ix_risk_warnings_status_raised", "status", "raised_at", "id"),
                      Index("ix_risk_warnings_status_cause", "status", "cause", "raised_at", "id"))

    uscc: Mapped[str] = mapped_column(ForeignKey("subjects.uscc"), index=True)
    cause: Mapped[str] = mapped_column(String(30))
    department: Mapped[str | None] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(20), default="open")
    message: Mapped[str] = mapped_column(Text)
    record_ids: Mapped[list[Any]] = mapped_column(JSON, default=list)
    evidence: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    raised_on: Mapped[dt.date] = mapped_column(Date)
    raised_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow)
    acknowledged_by: Mapped[str | None] = mapped_column(String(80))
    acknowledged_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())
    closed_by: Mapped[str | None] = mapped_column(String(80))
    closed_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())
    close_note: Mapped[str | None] = mapped_column(Text)
    open_key: Mapped[str | None] = mapped_column(String(60), unique=True)


class GateDecision(SurrogateKey, Base):
    """A batch held by a data-quality gate (``features.gates``), released or rejected by a person:
    who, when, what (the batch, its store, the rules that held it) and why. Written by the one
    service (``serving.services.gate_decisions``) that the CLI and the page both call."""

    __tablename__ = "gate_decisions"
    __table_args__ = (Index("ix_gate_decisions_batch_id", "batch_id"),)

    batch_id: Mapped[str] = mapped_column(String(80))
    decision: Mapped[str] = mapped_column(String(20))  # released | rejected
    actor: Mapped[str] = mapped_column(String(80))
    reason: Mapped[str] = mapped_column(Text)
    rules: Mapped[str] = mapped_column(String(400))  # the holding rules, comma-separated
    store: Mapped[str] = mapped_column(String(500))
    at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow)
