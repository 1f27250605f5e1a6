"""Model faults: a missing or corrupt champion artifact, or an unreachable registry, leaves the
service regrading with the last good model and ``/health`` degraded with the reason; once the
champion loads again, health is ok and the champion is served.

The registry is a real MLflow SQLite registry in tmp_path with two versions of ``tiers-general``.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from urllib.parse import unquote, urlparse

import httpx
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from srv_fixtures import ENT1, TODAY, principal, uvicorn_server
from srv_models import FEATURES, CountsModel, ingest_ent1

from serving.app import create_app
from serving.db.session import dispose_engine, iter_session
from serving.deps import get_today
from serving.errors import ModelUnavailable
from serving.keys import with_keys
from serving.security import create_access_token
from serving.services.champions import ChampionHolder
from serving.services.grades import latest_grade, store_grades
from serving.settings import Settings
from training.registry import ModelRegistry

# the module's two registered models are made once on one worker, not on both
pytestmark = pytest.mark.xdist_group("srv_model_faults")

NAME = "tiers-general"
OBJECTION = {"record_id": "R2", "reason": "该处罚已被法院撤销"}


def _register(registry: ModelRegistry, shift: float) -> int:
    example = pd.DataFrame({f: [0.0, 1.0] for f in FEATURES})
    return registry.log_model_run(NAME, CountsModel(shift=shift), params={"shift": shift}, metrics={},
                                  tags={}, input_example=example).version


def _model_file(registry: ModelRegistry, version: int) -> Path:
    run_id = registry.get_version(NAME, version).run_id
    return Path(unquote(urlparse(registry.client.get_run(run_id).info.artifact_uri).path)) / "model" / "model.pkl"


@pytest.fixture(scope="module")
def _registry(tmp_path_factory) -> tuple[ModelRegistry, Path]:
    """v1 and v2 (grades riskier) registered once, with a copy of v2's model directory."""
    root = tmp_path_factory.mktemp("model_faults")
    registry = ModelRegistry.in_directory(root / "mlflow")
    assert _register(registry, 0.0) == 1 and _register(registry, 1.0) == 2
    backup = root / "v2-model"
    shutil.copytree(_model_file(registry, 2).parent, backup)
    return registry, backup


@pytest.fixture
def two_versions(_registry) -> ModelRegistry:
    """The registry as registered: v1 champion, v2 challenger with its artifact intact."""
    registry, backup = _registry
    model_dir = _model_file(registry, 2).parent
    shutil.rmtree(model_dir, ignore_errors=True)
    shutil.copytree(backup, model_dir)
    registry.set_alias(NAME, "champion", 1)
    registry.set_alias(NAME, "challenger", 2)
    return registry


@pytest.fixture
def graded_by_v1(database_url) -> None:
    """ENT1's latest grade made by tiers-general/1 (the pipeline's job)."""
    session = next(iter_session(database_url))
    store_grades(session, [dict(uscc=ENT1, as_of="2026-10-31", score=600.0, grade="C", probability=0.3,
                                model_version=f"{NAME}/1", profile_hash="0" * 64)])
    session.close()


def _headers(settings: Settings, username: str) -> dict[str, str]:
    token, _ = create_access_token(principal(username), with_keys(settings).jwt_key, 30)
    return {"Authorization": f"Bearer {token}"}


def _uphold(client: httpx.Client | TestClient, settings: Settings, record_id: str) -> httpx.Response:
    filed = client.post(f"/api/v1/subjects/{ENT1}/objections", json=OBJECTION | {"record_id": record_id},
                        headers=_headers(settings, "ent1"))
    assert filed.status_code == 201, filed.text
    return client.post(f"/api/v1/regulator/objections/{filed.json()['id']}/decision",
                       json={"decision": "upheld", "reason": "核实无误"}, headers=_headers(settings, "reg_samr"))


def _latest_model_version(database_url: str) -> str:
    session = next(iter_session(database_url))
    try:
        return latest_grade(session, ENT1).model_version
    finally:
        session.close()


def test_corrupt_or_missing_champion_keeps_the_last_good_model(tmp_path, database_url, two_versions,
                                                                graded_by_v1) -> None:
    registry = two_versions
    settings = Settings(database_url=database_url, run_migrations_on_startup=False, health_model_check_s=0,
                        mlflow_tracking_uri=registry.tracking_uri, store_dir=ingest_ent1(tmp_path))
    app = create_app(settings)
    app.dependency_overrides[get_today] = lambda: TODAY
    app.state.model_holder.retry_after = 0  # retry a failed version on every probe
    client = TestClient(app)

    ok = client.get("/health", headers=_headers(settings, "admin")).json()
    assert ok["status"] == "ok", ok
    assert ok["models"][0] | {"loaded_at": None} == {"name": NAME, "alias": "champion", "version": 1,
                                                     "champion_version": 1, "loaded_at": None,
                                                     "degraded": False, "reason": None}

    # champion → v2 with its pickle truncated: v1 stays in service, health says why
    pickle = _model_file(registry, 2)
    intact = pickle.read_bytes()
    pickle.write_bytes(intact[: len(intact) // 2])
    registry.set_alias(NAME, "champion", 2)
    degraded = client.get("/health", headers=_headers(settings, "admin")).json()
    assert degraded["status"] == "degraded"
    model = degraded["models"][0]
    assert (model["version"], model["champion_version"], model["degraded"]) == (1, 2, True)
    assert "version 2 cannot be loaded" in model["reason"] and "serving version 1" in model["reason"]
    assert any(model["reason"] in r for r in degraded["reasons"])
    assert _uphold(client, settings, "R2").status_code == 200
    assert _latest_model_version(database_url) == f"{NAME}/1"

    # restored: the champion loads, health is ok, and it regrades
    pickle.write_bytes(intact)
    restored = client.get("/health", headers=_headers(settings, "admin")).json()
    assert restored["status"] == "ok" and restored["models"][0]["version"] == 2, restored
    assert _uphold(client, settings, "R1").status_code == 200
    assert _latest_model_version(database_url) == f"{NAME}/2"

    # back to v1, then champion → v2 whose model directory is gone
    registry.set_alias(NAME, "champion", 1)
    assert client.get("/health", headers=_headers(settings, "admin")).json()["models"][0]["version"] == 1
    shutil.rmtree(pickle.parent)
    registry.set_alias(NAME, "champion", 2)
    missing = client.get("/health", headers=_headers(settings, "admin")).json()
    assert missing["status"] == "degraded" and missing["models"][0]["version"] == 1
    assert "version 2 cannot be loaded" in missing["models"][0]["reason"]
    dispose_engine(database_url)


@pytest.mark.slow
def test_uvicorn_serves_the_last_good_model_when_the_champion_is_corrupt(tmp_path, database_url, two_versions,
                                                                         graded_by_v1) -> None:
    registry = two_versions
    store = ingest_ent1(tmp_path)
    settings = Settings(database_url=database_url, keys_dir=tmp_path / "keys")  # the server's own keys (uvicorn_server)
    with (uvicorn_server(tmp_path, database_url, TIERS_STORE_DIR=str(store),
                         TIERS_MLFLOW_TRACKING_URI=registry.tracking_uri, TIERS_HEALTH_MODEL_CHECK_S="0") as base,
          httpx.Client(base_url=base, timeout=60) as client):
        assert client.get("/health", headers=_headers(settings, "admin")).json()["models"][0]["version"] == 1
        _model_file(registry, 2).write_bytes(b"\x80\x05truncated")
        registry.set_alias(NAME, "champion", 2)
        health = client.get("/health", headers=_headers(settings, "admin")).json()
        assert health["status"] == "degraded", health
        assert health["models"][0]["version"] == 1 and "version 2" in health["models"][0]["reason"]
        decided = _uphold(client, settings, "R2")
        assert decided.status_code == 200, decided.text
    assert _latest_model_version(database_url) == f"{NAME}/1"


class _FlakyRegistry:
    """Champion v1 then v2; ``down`` makes every call fail; counts loads."""

    def __init__(self) -> None:
        self.champion, self.down, self.broken, self.loads = 1, False, set(), 0

    def alias_version(self, name: str, alias: str) -> int | None:
        if self.down:
            raise ConnectionError("registry at http://mlflow:5000 refused the connection")
        return self.champion

    def load_model(self, name: str, version: int) -> CountsModel:
        self.loads += 1
        if version in self.broken:
            raise EOFError("Ran out of input")
        return CountsModel(shift=float(version))


def test_holder_keeps_the_last_good_model_and_throttles_retries() -> None:
    registry, now = _FlakyRegistry(), [0.0]
    holder = ChampionHolder(lambda: registry, names=[NAME], retry_after=30, clock=lambda: now[0])
    assert holder.get(NAME).version == 1 and not holder.health()[0].degraded
    registry.champion, registry.broken = 2, {2}
    assert holder.get(NAME).version == 1
    assert holder.get(NAME).version == 1
    assert registry.loads == 2  # the broken v2 was tried once within retry_after
    assert "EOFError" in holder.health()[0].reason
    registry.down = True
    report = holder.health()[0]
    assert report.degraded and "registry unreachable" in report.reason and report.served_version == 1
    registry.down, registry.broken = False, set()
    assert "registry unreachable" in holder.health()[0].reason  # not asked again within retry_after
    now[0] = 31.0
    assert holder.get(NAME).version == 2 and not holder.health()[0].degraded


def test_health_asks_the_registry_at_most_once_per_interval() -> None:
    registry, now = _FlakyRegistry(), [0.0]
    holder = ChampionHolder(lambda: registry, names=[NAME], clock=lambda: now[0])
    assert holder.health(max_age_s=10)[0].champion_version == 1  # never looked up: asks now
    registry.champion = 2
    now[0] = 9.0
    assert holder.health(max_age_s=10)[0].champion_version == 1  # the last lookup, reported as is
    assert registry.loads == 1
    now[0] = 10.0
    report = holder.health(max_age_s=10)[0]
    assert (report.champion_version, report.served_version, registry.loads) == (2, 2, 2)
    registry.champion = 1
    assert holder.health()[0].champion_version == 1  # max_age_s=0: every probe asks


def test_holder_without_any_good_version_raises_model_unavailable() -> None:
    registry = _FlakyRegistry()
    registry.broken = {1}
    holder = ChampionHolder(lambda: registry)
    with pytest.raises(ModelUnavailable, match="EOFError"):
        holder.get(NAME)
    assert ChampionHolder(lambda: None).health() == []
    with pytest.raises(ModelUnavailable, match="no model registry"):
        ChampionHolder(lambda: None).get(NAME)
