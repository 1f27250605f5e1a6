"""Fixtures of the service tests: a migrated, seeded database per test (copied from a template),
the app on it, and credentials for every role.

Set ``TEST_DATABASE_URL`` (PostgreSQL) to run the same tests on PostgreSQL: the schema is
migrated once and every table emptied and re-seeded per test.
"""

from __future__ import annotations

import os
import shutil

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from srv_fixtures import World, app_on, principal, seed, seeded_template

from serving.db.migrate import upgrade
from serving.db.session import dispose_engine, iter_session
from serving.db.tables import Base
from serving.keys import with_keys
from serving.security import create_access_token
from serving.services.querylog import LogKeys, use_keys
from serving.settings import Settings


@pytest.fixture(scope="session")
def _template_db(tmp_path_factory) -> str | None:
    if os.environ.get("TEST_DATABASE_URL"):
        upgrade(os.environ["TEST_DATABASE_URL"])
        return None
    return str(seeded_template(tmp_path_factory.mktemp("template")))


@pytest.fixture
def database_url(_template_db, tmp_path) -> str:
    pg_url = os.environ.get("TEST_DATABASE_URL")
    if pg_url:
        session = next(iter_session(pg_url))
        names = ", ".join(t.name for t in reversed(Base.metadata.sorted_tables))
        session.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        session.execute(text("INSERT INTO query_log_head (id, seq, last_hash) VALUES (1, 0, :h)"), {"h": "0" * 64})
        session.execute(text("INSERT INTO list_counts_head (id, generation) VALUES (1, 0)"))
        session.commit()
        session.close()
        seed(pg_url)
        yield pg_url
        # a new engine for the next test, as each SQLite test has its own: the query log's group
        # writer belongs to an engine and keeps the keys it was made with (each test has its own)
        dispose_engine(pg_url)
        return
    path = tmp_path / "tiers.db"
    shutil.copy(_template_db, path)
    url = f"sqlite:///{path}"
    yield url
    dispose_engine(url)


@pytest.fixture
def settings(database_url, tmp_path) -> Settings:
    # the MLflow registry in tmp_path too: a test must never read or promote var/mlflow.db
    # the keys too: the service makes its own (development) in this test's directory
    return with_keys(Settings(database_url=database_url, run_migrations_on_startup=False, data_dir=database_url,
                              mlflow_tracking_uri=f"sqlite:///{tmp_path / 'mlflow' / 'mlflow.db'}",
                              keys_dir=tmp_path / "keys"))


@pytest.fixture(autouse=True)
def _log_keys(settings) -> None:
    """The query log of the test's database is keyed as the app keys it (tests also append
    through sessions without an app)."""
    use_keys(settings.database_url, LogKeys.of(with_keys(settings)))


@pytest.fixture
def app(settings):
    return app_on(settings)


@pytest.fixture
def client(app) -> TestClient:
    return TestClient(app)


@pytest.fixture
def world() -> World:
    return World()


@pytest.fixture
def session(database_url):
    s = next(iter_session(database_url))
    yield s
    s.close()


@pytest.fixture
def auth(app):
    """``auth("reg_samr")`` → headers with a bearer token for that seeded user (no login round trip),
    signed with the app's own key."""

    def headers(username: str) -> dict[str, str]:
        token, _ = create_access_token(principal(username), app.state.settings.jwt_key, 30)
        return {"Authorization": f"Bearer {token}"}

    return headers
