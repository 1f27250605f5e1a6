"""Alembic migrations run programmatically (at startup and by ``tiers db upgrade``)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
#: the baseline revision that replaced the pre-release history, and that history's revisions (the
#: last commit that has them: ``SQUASHED_IN``); a database at one of them cannot be upgraded here
BASELINE = "0020"
SQUASHED = frozenset({"0001", "0002", "0003", "0004", "0005", "0006", "0007", "0009", "0010", "0011", "0012",
                      "0013", "0014", "0016", "0017", "0018", "0019"})
SQUASHED_IN = "37f7e92"


class SchemaBeforeBaseline(RuntimeError):
    """The database is at a revision older than the baseline: a release that still has the old
    revisions must bring it to the baseline first. Nothing was changed."""

    def __init__(self, revision: str):
        self.revision = revision
        super().__init__(
            f"数据库的结构版本为 {revision}，早于基线版本 {BASELINE}：本版本已不含 {BASELINE} 之前的迁移，"
            f"未做任何修改。请先用仍含旧迁移的版本（提交 {SQUASHED_IN}）执行 `tiers db upgrade` 升级到 "
            f"{BASELINE}，再用本版本升级。 / The database is at schema revision {revision}, older than the "
            f"baseline {BASELINE}: this release no longer has the revisions before it, and nothing was "
            f"changed. Upgrade it to {BASELINE} first with a release that still has them (commit "
            f"{SQUASHED_IN}: `tiers db upgrade`), then with this one (docs/postgres.md, \"Upgrading from "
            f"before the baseline\").")


def alembic_config(database_url: str) -> Config:
    """An Alembic config pointing at ``serving/migrations`` and ``database_url`` (no ini file)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # '%' must be escaped for configparser interpolation (passwords in URLs)
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    """Bring the database at ``database_url`` to ``revision`` (default: the latest); raises
    :class:`SchemaBeforeBaseline`, changing nothing, when it is at a revision the baseline replaced."""
    from serving.db.session import make_engine

    engine = make_engine(database_url)  # creates the SQLite parent directory if needed
    engine.dispose()
    now = current_revision(database_url)
    if now in SQUASHED:  # Alembic would only say "Can't locate revision"
        raise SchemaBeforeBaseline(now)
    command.upgrade(alembic_config(database_url), revision)


def current_revision(database_url: str) -> str | None:
    """The revision the database is at, or None when it was never migrated."""
    from alembic.runtime.migration import MigrationContext

    from serving.db.session import make_engine

    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


def head_revision() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
