"""Migrations match the models; pipeline writes are idempotent and versioned."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from fastapi.testclient import TestClient

from serving.app import create_app
from serving.db.session import engine_for, iter_session
from serving.db.tables import Base
from serving.services.subjects import list_records, store_records
from serving.settings import Settings


def test_migrations_match_models(database_url):
    with engine_for(database_url).connect() as conn:
        def on_this_database(obj, name, type_, reflected, compare_to) -> bool:
            # an index the models make on one database only (``Index(...).ddl_if(dialect=...)``)
            ddl_if = getattr(obj, "_ddl_if", None)
            return not (type_ == "index" and ddl_if is not None and ddl_if.dialect not in (None, conn.dialect.name))

        context = MigrationContext.configure(conn, opts={"include_object": on_this_database})
        diff = compare_metadata(context, Base.metadata)
    assert diff == []


def test_records_are_versioned_not_overwritten(session, world):
    row = dict(record_id="R3", uscc=world.ent1, kind="arrears", subkind="tax", decision_date="2026-02-01",
               amount=1200, department="tax")
    assert store_records(session, [row]) == 0  # unchanged: nothing written
    assert store_records(session, [{**row, "end_date": "2026-10-01"}]) == 1  # settled: a new version
    versions = [r for r in list_records(session, world.ent1, include_history=True) if r.record_id == "R3"]
    assert sorted(r.version for r in versions) == [1, 2] and sum(r.is_current for r in versions) == 1


def test_startup_migrates_a_fresh_database(tmp_path):
    from srv_fixtures import principal

    from serving.db.tables import User
    from serving.security import create_access_token

    url = f"sqlite:///{tmp_path / 'fresh' / 'tiers.db'}"
    app = create_app(Settings(database_url=url, keys_dir=tmp_path / "keys"))
    with TestClient(app) as client:  # `with` runs the lifespan
        assert client.get("/health").json() == {"status": "degraded"}  # strangers learn no more
        session = next(iter_session(url))
        session.add(User(username="admin", password_hash="-", role="admin", active=True))
        session.commit()
        session.close()
        token, _ = create_access_token(principal("admin"), app.state.settings.jwt_key, 5)
        health = client.get("/health", headers={"Authorization": f"Bearer {token}"}).json()
    assert health["database"] and health["schema_revision"] is not None
    assert health["status"] == "degraded" and any("no grades" in r for r in health["reasons"])


def test_a_running_worker_keeps_its_startup_objects_out_of_the_cyclic_gc(tmp_path):
    import gc

    url = f"sqlite:///{tmp_path / 'tiers.db'}"
    assert gc.get_freeze_count() == 0
    with TestClient(create_app(Settings(database_url=url))):
        assert gc.get_freeze_count() > 10_000  # modules, routes, models: not walked by full collections
        with TestClient(create_app(Settings(database_url=url))):
            assert gc.get_freeze_count() > 10_000
        assert gc.get_freeze_count() > 10_000  # another app stopping does not unfreeze a running one
    assert gc.get_freeze_count() == 0  # the last one out unfreezes: collectable again


def test_a_database_from_before_the_baseline_is_refused_saying_what_to_do(tmp_path, monkeypatch):
    """A database at a revision the baseline 0020 replaced (here 0013) is left as it is: ``tiers db
    upgrade`` and the service's start-up refuse it in Chinese, then English, naming the baseline and
    the last commit that still has the old revisions (not Alembic's "Can't locate revision")."""
    import sqlite3

    import pytest
    from typer.testing import CliRunner

    from serving.cli.main import app as cli_app
    from serving.settings import get_settings

    path = tmp_path / "old.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL PRIMARY KEY)")
        db.execute("INSERT INTO alembic_version VALUES ('0013')")
    db.close()
    url = f"sqlite:///{path}"

    def said_clearly(message: str) -> bool:
        zh, en = message.find("数据库"), message.find("The database")
        return (0 <= zh < en and all(word in message for word in ("0013", "0020", "37f7e92"))
                and "Can't locate" not in message)

    monkeypatch.setenv("TIERS_DATABASE_URL", url)
    monkeypatch.setenv("TIERS_KEYS_DIR", str(tmp_path / "keys"))
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(cli_app, ["db", "upgrade"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 2 and said_clearly(result.stderr), (result.exit_code, result.stderr)

    app = create_app(Settings(database_url=url, keys_dir=tmp_path / "keys"))
    with pytest.raises(Exception) as refused, TestClient(app):  # the message is what is checked
        pass
    assert said_clearly(str(refused.value)), refused.value
    with sqlite3.connect(path) as db:  # nothing was changed
        assert db.execute("SELECT name FROM sqlite_master").fetchall() == [("alembic_version",), (
            "sqlite_autoindex_alembic_version_1",)]
        assert db.execute("SELECT version_num FROM alembic_version").fetchall() == [("0013",)]
    db.close()
