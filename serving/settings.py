"""The one typed settings object of the service (env prefix ``TIERS_``).

Only ``serving/`` (routes, CLI) reads settings; lower packages take arguments.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# A development-only secret: refused outside development (see `_refuse_default_secret`).
DEFAULT_JWT_SECRET = "dev-only-not-a-secret-change-me-0123456789"


class Settings(BaseSettings):
    """Service configuration; every field can be set with ``TIERS_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="TIERS_", extra="ignore")

    environment: Literal["development", "production"] = "development"
    database_url: str = "sqlite:///var/tiers.db"
    mlflow_tracking_uri: str = "sqlite:///var/mlflow.db"
    data_dir: Path = Path("var/data")
    # feature store written by `tiers ingest`; when set, upheld objections and approved repairs
    # regrade the subject with its model from `mlflow_tracking_uri` (else grades are marked stale)
    store_dir: Path | None = None
    jwt_secret: SecretStr = SecretStr(DEFAULT_JWT_SECRET)
    jwt_ttl_minutes: int = Field(default=60, ge=1, le=24 * 60)
    # failed logins allowed per username+IP per minute before 429
    login_attempts_per_minute: int = Field(default=5, ge=1, le=1000)
    default_lang: Literal["zh", "en"] = "zh"
    # cookies need `Secure` behind HTTPS; plain http on 127.0.0.1 in development
    cookie_secure: bool = False
    run_migrations_on_startup: bool = True
    # SQLite durability of every commit, the query log's included. FULL (default): a commit is on
    # disk when it returns (one fsync of the WAL per commit; the query log groups concurrent reads
    # into one commit: docs/architecture.md). NORMAL: a commit survives a crash of the service but
    # the last ones may be lost on a power cut or OS crash (the WAL is synced only at checkpoints),
    # so a read could be answered whose log entry is then lost.
    sqlite_synchronous: Literal["FULL", "NORMAL"] = "FULL"
    # SQLite file only: the hot grade read checks coverage and reads on the event loop (tens of
    # microseconds from the page cache, less than a thread-pool hop) and awaits its log commit
    # without holding a thread. Off: the whole read runs in one thread-pool hop, as on PostgreSQL.
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

    @model_validator(mode="after")
    def _refuse_default_secret(self) -> Settings:
        if self.environment != "development":
            secret = self.jwt_secret.get_secret_value()
            if secret == DEFAULT_JWT_SECRET or len(secret) < 32:
                raise ValueError(
                    f"TIERS_JWT_SECRET must be set to a random value of at least 32 characters when "
                    f"TIERS_ENVIRONMENT={self.environment!r}; the development default is refused"
                )
        return self

    @property
    def is_development(self) -> bool:
        return self.environment == "development"


@lru_cache
def get_settings() -> Settings:
    """Settings read from the environment once per process; override in tests with
    ``app.dependency_overrides[get_settings]``."""
    return Settings()
