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
