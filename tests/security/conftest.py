"""Fixtures of the attack tests: a seeded database (the service tests' world), the app started
the way the README starts it (development, no key given: the service makes its own), a real
uvicorn started with ``tiers serve``, and the ``tiers`` CLI in-process.

The attacks are written from the outside: they use what an attacker has (the repository, the
HTTP interface, or write access to the database) and check what the service answers.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# the service tests' seeded world (three subjects, records, grades, one user per role)
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "serving"))

from sec_fixtures import server_key
from srv_fixtures import app_on, principal, seeded_template

from serving.db.session import dispose_engine
from serving.security import create_access_token
from serving.settings import Settings


@pytest.fixture(scope="session")
def _migrated_seeded_db(tmp_path_factory) -> Path:
    """The database every attack test starts from, migrated to head and seeded once per test
    process (per test: a copy, so nothing one test writes reaches another)."""
    return seeded_template(tmp_path_factory.mktemp("sec_template"))


@pytest.fixture
def database_url(_migrated_seeded_db, tmp_path) -> Iterator[str]:
    """A copy of the migrated, seeded template (the same file ``upgrade`` + ``seed`` make)."""
    shutil.copy(_migrated_seeded_db, tmp_path / "tiers.db")
    url = f"sqlite:///{tmp_path / 'tiers.db'}"
    yield url
    dispose_engine(url)


@pytest.fixture
def keys_dir(tmp_path) -> Path:
    return tmp_path / "keys"


@pytest.fixture
def settings(database_url, keys_dir, tmp_path) -> Settings:
    """As the README starts the service: development, no key given (the service makes its own in
    ``keys_dir``)."""
    return Settings(database_url=database_url, run_migrations_on_startup=False, data_dir=tmp_path / "data",
                    keys_dir=keys_dir, mlflow_tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")


@pytest.fixture
def app(settings):
    return app_on(settings)


@pytest.fixture
def client(app):
    from fastapi.testclient import TestClient

    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def auth(app):
    """``auth("reg_samr")`` (a seeded user) or ``auth(Principal(...))`` → bearer headers of a token
    the app itself would issue."""

    def headers(who) -> dict[str, str]:
        token, _ = create_access_token(principal(who) if isinstance(who, str) else who, server_key(app), 30)
        return {"Authorization": f"Bearer {token}"}

    return headers


@pytest.fixture
def tiers_cli(monkeypatch, settings, keys_dir):
    """Run ``tiers ARGS`` in-process with the test's settings in the environment; returns
    (exit code, stdout, stderr)."""
    from typer.testing import CliRunner

    from serving.cli.main import app as cli_app
    from serving.settings import get_settings

    monkeypatch.setenv("TIERS_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("TIERS_KEYS_DIR", str(keys_dir))
    monkeypatch.setenv("TIERS_DATA_DIR", str(settings.data_dir))

    def run(*args: str) -> tuple[int, str, str]:
        get_settings.cache_clear()
        result = CliRunner().invoke(cli_app, list(args))
        get_settings.cache_clear()
        return result.exit_code, result.stdout, result.stderr

    return run


@pytest.fixture
def session(database_url):
    from serving.db.session import iter_session

    s = next(iter_session(database_url))
    yield s
    s.close()
