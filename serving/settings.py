"""The one typed settings object of the service (env prefix ``TIERS_``).

Only ``serving/`` (routes, CLI) reads settings; lower packages take arguments. The service's
keys (JWT, query-log MAC, checkpoint signing, report signing and its certificate) have no default: in development the service
makes each missing one on first start (``serving.keys``), in production each must be given.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from serving.keys import KEY_FIELDS, report_identity_problem, with_keys

if TYPE_CHECKING:
    from fastapi import Request

MIN_SECRET_LENGTH = 32
# a key zxcvbn guesses in fewer than 10^20 tries (≈ 66 bits) was typed, not generated: "0"*32,
# "ab"*16, "1234…"; a generated one of 32 characters estimates above 10^30
MIN_SECRET_GUESSES_LOG10 = 20
# the longest flush interval of the query log: beyond a second the loss a power cut may cause is
# no longer "the last moment" of reads (Settings.querylog_flush_ms)
MAX_QUERYLOG_FLUSH_MS = 1000


def _guessable(secret: str) -> bool:
    from zxcvbn import zxcvbn  # imported when a key is given, not at import time

    return zxcvbn(secret[:72])["guesses_log10"] < MIN_SECRET_GUESSES_LOG10


class Settings(BaseSettings):
    """Service configuration; every field can be set with ``TIERS_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="TIERS_", extra="ignore")

    environment: Literal["development", "production"] = "development"
    database_url: str = "sqlite:///var/tiers.db"
    mlflow_tracking_uri: str = "sqlite:///var/mlflow.db"
    data_dir: Path = Path("var/data")
    # the joint checks' measures catalogue (联合奖惩措施清单, `serving/measures`); None: the packaged default
    credit_measures_file: Path | None = None
    # feature store written by `tiers ingest`; when set, upheld objections and approved repairs
    # regrade the subject with its model from `mlflow_tracking_uri` (else grades are marked stale)
    store_dir: Path | None = None
    # The keys (docs/security.md). None: made on first start in development and kept in
    # `keys_dir` (mode 0600), reused afterwards; refused in production, where each must be set.
    jwt_secret: SecretStr | None = None  # HS256 key of access tokens (at least 32 characters)
    querylog_mac_key: SecretStr | None = None  # HMAC-SHA256 key of the query log's chain
    querylog_signing_key: SecretStr | None = None  # Ed25519 private key (64 hex digits) of its checkpoints
    # signs the credit reports (PAdES): an EC P-256 or RSA private key in PEM and its X.509
    # certificate in PEM (self-signed in development, made with the key; serving.report_pdf)
    report_signing_key: SecretStr | None = None
    report_certificate: SecretStr | None = None
    keys_dir: Path = Path("var/keys")
    # the signed checkpoints of the query log (JSON lines); default `keys_dir/querylog-checkpoints.jsonl`
    querylog_checkpoints: Path | None = None
    # under load a worker's log writer signs a checkpoint at most this often (and always when it
    # falls idle, 1 s after the last read): the log's tail is anchored outside the database
    querylog_checkpoint_interval_s: float = Field(default=10.0, gt=0, le=3600)
    jwt_ttl_minutes: int = Field(default=60, ge=1, le=24 * 60)
    # Login limits (serving.services.logins): failed logins per account (from addresses that never
    # logged into it) and per client address (over all accounts) before each further try must
    # wait, the wait doubling with every failure up to `login_backoff_max_s`
    login_free_failures_per_account: int = Field(default=5, ge=1, le=1000)
    login_free_failures_per_address: int = Field(default=20, ge=1, le=10_000)
    login_backoff_max_s: float = Field(default=900.0, ge=1, le=86_400)
    # failed API keys per client address before the same back-off: a bucket of their own, so a key
    # scanner behind a shared NAT never slows that address's password logins (nor they its keys)
    api_key_free_failures_per_address: int = Field(default=20, ge=1, le=10_000)
    # a regulator creates at most this many plans per hour (each draw costs seconds of CPU)
    plans_per_hour: int = Field(default=20, ge=1, le=10_000)
    # a city of more subjects than this is planned in a process of its own (serving.services.plan_jobs):
    # its draw holds the GIL for seconds at a time (≈ 5 s of CPU at 20 k subjects, 143 s at 2 M)
    plan_inline_subjects: int = Field(default=20_000, ge=0, le=100_000_000)
    # GET /inspection-ratios per user (or API key's user) and hour: each reads the city's grades
    ratio_reads_per_hour: int = Field(default=120, ge=1, le=100_000)
    # refusals (403s: a role's, a route rule's, a joint check's) per user (or API key's user) and
    # hour, each logged; past it 429 and one entry for the hour (deps._refusal_allowed)
    refusals_per_hour: int = Field(default=100, ge=1, le=100_000)
    # grades kept per subject history: the latest this many as-of dates (`tiers db prune-grades`);
    # none: every as-of date is kept
    grade_retention_as_of: int | None = Field(default=None, ge=1, le=1000)
    default_lang: Literal["zh", "en"] = "zh"
    # cookies are `Secure` (HTTPS only) unless this is false; None: Secure outside development
    cookie_secure: bool | None = None
    # addresses of reverse proxies whose X-Forwarded-For / -Proto `tiers serve` believes
    # (uvicorn's forwarded_allow_ips, comma-separated); empty: the client is the socket's peer
    forwarded_allow_ips: str = ""
    run_migrations_on_startup: bool = True
    # SQLite durability of every commit, the query log's included. FULL (default): a commit is on
    # disk when it returns (one fsync of the WAL per commit; the query log groups concurrent reads
    # into one commit: docs/performance-notes.md). NORMAL: a commit survives a crash of the service but
    # the last ones may be lost on a power cut or OS crash (the WAL is synced only at checkpoints),
    # so a read could be answered whose log entry is then lost.
    sqlite_synchronous: Literal["FULL", "NORMAL"] = "FULL"
    # The query log's group durability, as PostgreSQL's `synchronous_commit = off` with its WAL
    # writer (docs/security.md, "Durability of the query log"). W > 0 ms (default 10): a read is
    # answered once its log entry is committed (visible, chained and MACed, in the WAL through the
    # OS: a crash or kill of the service loses nothing) without waiting for the disk; a background
    # flusher fsyncs the WAL at most every W ms while entries are unflushed (at once when idle
    # longer), and at a graceful stop. A power cut or OS crash may lose the entries of the last W
    # ms (plus one fsync), never corrupt or reorder the chain, and no signed checkpoint anchors
    # an entry not yet flushed. 0: every log commit waits for its own fsync (SQLite's FULL). On
    # PostgreSQL W > 0 makes the log's transactions `SET LOCAL synchronous_commit = off`: the loss
    # is then bounded by the server's `wal_writer_delay` (docs/postgres.md), not by W.
    querylog_flush_ms: int = 10
    # SQLite file only. On: the hot grade read and the joint check read on the event loop (tens of
    # microseconds from the page cache, less than a thread-pool hop) and await their log commit
    # without holding a thread. Off: the grade read checks coverage, waits for its log commit and
    # reads in one hop on the pool's connections, the joint check in one hop on a session. Turn it
    # off when the database is much larger than the OS's page cache (a city on a small machine):
    # a read from disk on the loop stops every request of the worker (BENCHMARKS.md, issue 22).
    event_loop_reads: bool = True
    # `/health` asks the model registry (MLflow) for each champion at most this often; between
    # lookups it reports the last one (a liveness probe every second must not load MLflow every second)
    health_model_check_s: float = Field(default=10.0, ge=0, le=3600)
    # a worker checks each API key and access token against the database at most this often: a
    # revoked key, a deactivated user, a changed scope or a logged-out token works at most this long
    credential_cache_ttl_s: float = Field(default=10.0, ge=0, le=300)
    # Overload (per worker process). Sync routes run in a thread pool of `threadpool_size`; the
    # database pool has as many connections plus one for the query log's writer thread, so a
    # request in a thread never waits for one except when something else holds them, and then at
    # most `db_pool_timeout_s` before a 503.
    threadpool_size: int = Field(default=40, ge=1, le=1000)
    db_pool_timeout_s: float = Field(default=2.0, gt=0, le=60)
    # requests in flight beyond this get an immediate 503 `overloaded` with Retry-After, so a
    # saturated worker says so at once instead of queueing without bound. Tuned when every read
    # held a thread (at 500 req/s, 128 let answered reads take seconds, 48 served 87 %); the
    # event-loop grade read holds none and now stays far below it at 500 req/s
    max_in_flight_requests: int = Field(default=48, ge=1, le=100_000)
    # request bodies above this are refused with 413 before they are read or parsed (a 200 MB
    # JSON body cost 600 MB of memory before authentication); the largest legitimate body, a
    # batch of grade reads or a plan, is far below it
    max_request_body_bytes: int = Field(default=2 * 1024 * 1024, ge=1024, le=1024 * 1024 * 1024)
    # credit reports (公共信用信息报告): how long an issued report is valid, and the service's public
    # address, which the report's QR code points to (its verification page)
    credit_report_valid_days: int = Field(default=30, ge=1, le=366)
    # a user issues at most this many reports per hour (each costs about a second of CPU): 429 after
    credit_reports_per_hour: int = Field(default=30, ge=1, le=10_000)
    public_url: str = Field(default="http://127.0.0.1:8000", pattern=r"^https?://[^\s/]+(/[^\s]*)?$")

    @field_validator("querylog_flush_ms", mode="before")
    @classmethod
    def _flush_ms(cls, value: Any) -> int:
        text = str(value).strip()
        if isinstance(value, bool) or not (text.isascii() and text.isdigit()) or int(text) > MAX_QUERYLOG_FLUSH_MS:
            raise ValueError(f"TIERS_QUERYLOG_FLUSH_MS 须为 0 到 {MAX_QUERYLOG_FLUSH_MS} 的整数（毫秒；0 表示每次"
                             f"记录都等待写盘）；must be whole milliseconds from 0 to {MAX_QUERYLOG_FLUSH_MS} (0: "
                             f"every entry waits for its fsync), not {text[:20]!r}")
        return int(text)

    @model_validator(mode="after")
    def _check_keys(self) -> Settings:
        problems = []
        for name in KEY_FIELDS:
            value = getattr(self, name)
            env = f"TIERS_{name.upper()}"
            if value is None:
                if not self.is_development:
                    problems.append(f"{env} must be set when TIERS_ENVIRONMENT={self.environment!r} (only "
                                    "development makes its own keys)")
            elif name in ("report_signing_key", "report_certificate"):
                pass  # parsed and matched below
            elif name == "querylog_signing_key":
                text = value.get_secret_value()
                if len(text) != 64 or any(c not in "0123456789abcdefABCDEF" for c in text):
                    problems.append(f"{env} must be an Ed25519 private key as 64 hex digits")
                elif not self.is_development and _guessable(text):
                    problems.append(f"{env} is not random (repeats or a sequence); make one with "
                                    "`python -c 'import secrets; print(secrets.token_hex(32))'`")
            elif len(value.get_secret_value()) < MIN_SECRET_LENGTH:
                problems.append(f"{env} must be a random value of at least {MIN_SECRET_LENGTH} characters")
            elif not self.is_development and _guessable(value.get_secret_value()):
                problems.append(f"{env} is not random (repeats, a sequence or words); make one with "
                                "`python -c 'import secrets; print(secrets.token_urlsafe(48))'`")
        report = report_identity_problem(
            *(v.get_secret_value() if v is not None else None
              for v in (self.report_signing_key, self.report_certificate)))
        if report:
            problems.append(report)
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def is_development(self) -> bool:
        return self.environment == "development"

    @property
    def secure_cookies(self) -> bool:
        return (not self.is_development) if self.cookie_secure is None else self.cookie_secure

    @property
    def checkpoint_path(self) -> Path:
        return self.querylog_checkpoints or self.keys_dir / "querylog-checkpoints.jsonl"

    def secret(self, name: str) -> str:
        """The value of key ``name`` (one of ``KEY_FIELDS``); these settings must carry it (see
        ``serving.keys.with_keys``)."""
        value = getattr(self, name)
        if value is None:
            raise RuntimeError(f"{name} is not set: settings must pass through serving.keys.with_keys first")
        return value.get_secret_value()

    @property
    def jwt_key(self) -> str:
        return self.secret("jwt_secret")


@lru_cache
def get_settings() -> Settings:
    """Settings read from the environment once per process, with their keys (made on first start in
    development: ``serving.keys.with_keys``); override in tests with
    ``app.dependency_overrides[get_settings]``."""
    return with_keys(Settings())


def settings_of(request: Request) -> Settings:
    """The app's settings (``create_app(settings)``, else the environment's), or a test's override
    of ``get_settings``."""
    override = request.app.dependency_overrides.get(get_settings)
    if override is not None:
        return override()
    return getattr(request.app.state, "settings", None) or get_settings()
